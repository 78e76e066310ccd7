namespace Attribution.Steering;

using Attribution.Tracing;
using static TorchSharp.torch;

/// <summary>The default and the steered continuation of one prompt.</summary>
public sealed record SteeringResult(GenerationTrace Default, GenerationTrace Steered);

/// <summary>The tokens steering treats specially: the BOS (never steered) and those that end a generation.</summary>
public sealed record SteeringVocabulary(int BosId, IReadOnlyCollection<int> StopIds);

/// <summary>
/// Steering (docs/algorithm.md §9), as the reference server drives circuit-tracer's
/// feature_intervention_generate:
/// 1. features that would steer a BOS position are dropped (the BOS carries no features);
/// 2. each feature's target is 0 when ablating, else its clean activation at
///    token_active_position plus delta — where the clean activations of the silenced positions
///    (the BOS) read as 0, as in attribution;
/// 3. the same sampler seed generates twice: plainly, and with the targets applied. With no
///    features left the steered generation is the default one.
/// </summary>
public static class Steerer
{
    public static SteeringResult Steer(ReplacementModel replacement, int[] prompt, IReadOnlyList<FeatureSteer> features, GenerationOptions options,
        SteeringVocabulary vocabulary, bool useCache = true, CancellationToken cancellation = default)
    {
        var model = replacement.Model;
        var plain = TextGeneration.Generate(model, prompt, options, () => Models.RunPolicy.Plain, vocabulary.StopIds, useCache, cancellation);
        var steerable = features.Where(f => f.SteerPosition is not int p || prompt[p] != vocabulary.BosId).ToList();
        if (steerable.Count == 0) return new SteeringResult(plain, plain);

        var transcoders = replacement.Transcoders;
        using var ids = tensor(prompt.Select(t => (long)t).ToArray(), device: model.Device).unsqueeze(0);
        var (clean, logits) = CleanRecording.Record(model, transcoders.ReadAt, transcoders.WriteAt, ids);
        using (clean)
        using (logits)
        {
            var settings = steerable.Select(f => new FeatureSetting(
                f.Layer, f.Index,
                f.Ablate ? 0 : CleanActivation(replacement, clean, f) + (f.Delta ?? 0),
                f.SteerGeneratedTokens ? null : f.SteerPosition,
                FromPosition: f.SteerGeneratedTokens ? prompt.Length : int.MaxValue)).ToList();
            var steered = TextGeneration.Generate(model, prompt, options,
                () => new InterventionRun(transcoders, settings, options.FreezeAttention ? clean : null, prompt.Length), vocabulary.StopIds, useCache, cancellation);
            return new SteeringResult(plain, steered);
        }
    }

    /// <summary>The feature's activation on the clean prompt at its token_active_position (0 at a silenced position).</summary>
    private static double CleanActivation(ReplacementModel replacement, CleanRecording clean, FeatureSteer feature)
    {
        if (feature.TokenActivePosition < replacement.SilencedPositions) return 0;
        using var scope = NewDisposeScope();
        var read = clean.Reads[feature.Layer][0][feature.TokenActivePosition].unsqueeze(0);
        return replacement.Transcoders.Encode(feature.Layer, read)[0][feature.Index].to(ScalarType.Float64).item<double>();
    }
}
