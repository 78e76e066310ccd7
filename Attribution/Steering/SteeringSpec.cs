namespace Attribution.Steering;

/// <summary>
/// One feature to steer (SPEC 2 /steer). Positions count the BOS as 0. The target is 0 when
/// ablating, else the clean activation at <see cref="TokenActivePosition"/> plus <see cref="Delta"/>.
/// </summary>
public sealed record FeatureSteer(
    int Layer,
    int Index,
    int TokenActivePosition,
    int? SteerPosition = null,
    bool SteerGeneratedTokens = false,
    double? Delta = null,
    bool Ablate = false);

/// <summary>How to generate: n_tokens new tokens, top_k probabilities per position, the sampler, freezing.</summary>
public sealed record GenerationOptions(
    int NTokens = 10,
    int TopK = 5,
    double Temperature = 0,
    double FreqPenalty = 0,
    long? Seed = null,
    bool FreezeAttention = false);

/// <summary>The request rules of SPEC 2, each failure a message naming the field.</summary>
public static class SteeringValidation
{
    public static IReadOnlyList<string> Validate(IReadOnlyList<FeatureSteer> features, GenerationOptions options, int promptLength, int nLayers, int dTranscoder)
    {
        var errors = new List<string>();
        if (features.Count == 0) errors.Add("features must list at least one feature");
        for (int i = 0; i < features.Count; i++)
        {
            var f = features[i];
            string at = $"features[{i}]";
            if (f.Ablate && f.Delta is not null) errors.Add($"{at}: ablate and delta cannot both be set");
            if (!f.Ablate && f.Delta is null) errors.Add($"{at}: set either ablate or delta");
            if (f.SteerGeneratedTokens && f.SteerPosition is not null) errors.Add($"{at}: steer_position and steer_generated_tokens cannot both be set");
            if (!f.SteerGeneratedTokens && f.SteerPosition is null) errors.Add($"{at}: set either steer_position or steer_generated_tokens");
            if (f.SteerPosition is int p && (p < 0 || p >= promptLength))
                errors.Add($"{at}.steer_position {p} is outside the prompt's positions [0, {promptLength})");
            if (f.TokenActivePosition < 0 || f.TokenActivePosition >= promptLength)
                errors.Add($"{at}.token_active_position {f.TokenActivePosition} is outside the prompt's positions [0, {promptLength})");
            if (f.Layer < 0 || f.Layer >= nLayers) errors.Add($"{at}.layer {f.Layer} is outside [0, {nLayers})");
            if (f.Index < 0 || f.Index >= dTranscoder) errors.Add($"{at}.index {f.Index} is outside [0, {dTranscoder})");
            if (f.Delta is double d && !double.IsFinite(d)) errors.Add($"{at}.delta must be a finite number");
        }
        if (options.NTokens < 1) errors.Add("n_tokens must be at least 1");
        if (options.TopK < 1) errors.Add("top_k must be at least 1");
        if (options.Temperature < 0 || !double.IsFinite(options.Temperature)) errors.Add("temperature must be a finite number ≥ 0");
        if (options.FreqPenalty < 0 || !double.IsFinite(options.FreqPenalty)) errors.Add("freq_penalty must be a finite number ≥ 0");
        return errors;
    }
}
