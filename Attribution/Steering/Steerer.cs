namespace Attribution.Steering;

using Attribution.Tracing;
using static TorchSharp.torch;

/// <summary>The default and the steered continuation of one prompt.</summary>
public sealed record SteeringResult(GenerationTrace Default, GenerationTrace Steered);

/// <summary>
/// Steering (SPEC 2 /steer): read each feature's clean activation at its token_active_position,
/// turn the request into feature settings (0 when ablating, activation + delta otherwise), then
/// generate twice with the same sampler seed: plainly, and with the settings applied.
/// </summary>
public static class Steerer
{
    public static SteeringResult Steer(ReplacementModel replacement, int[] prompt, IReadOnlyList<FeatureSteer> features, GenerationOptions options, IReadOnlyCollection<int> stopTokens, bool useCache = true)
    {
        var transcoders = replacement.Transcoders;
        var model = replacement.Model;
        using var ids = tensor(prompt.Select(t => (long)t).ToArray(), device: model.Device).unsqueeze(0);
        var (clean, logits) = CleanRecording.Record(model, transcoders.ReadAt, transcoders.WriteAt, ids);
        using (clean)
        using (logits)
        {
            var settings = features.Select(f => new FeatureSetting(
                f.Layer, f.Index,
                f.Ablate ? 0 : CleanActivation(replacement, clean, f) + (f.Delta ?? 0),
                f.SteerGeneratedTokens ? null : f.SteerPosition,
                FromPosition: f.SteerGeneratedTokens ? prompt.Length : int.MaxValue)).ToList();

            // Frozen patterns equal the clean ones when nothing is steered, so the default run is plain.
            var plain = TextGeneration.Generate(model, prompt, options, () => Models.RunPolicy.Plain, stopTokens, useCache);
            var steered = TextGeneration.Generate(model, prompt, options, () => new InterventionRun(transcoders, settings, options.FreezeAttention ? clean : null, prompt.Length), stopTokens, useCache);
            return new SteeringResult(plain, steered);
        }
    }

    /// <summary>The feature's activation on the clean prompt at its token_active_position.</summary>
    private static double CleanActivation(ReplacementModel replacement, CleanRecording clean, FeatureSteer feature)
    {
        using var scope = NewDisposeScope();
        var read = clean.Reads[feature.Layer][0][feature.TokenActivePosition].unsqueeze(0);
        return replacement.Transcoders.Encode(feature.Layer, read)[0][feature.Index].to(ScalarType.Float64).item<double>();
    }
}
