namespace Attribution.Steering;

using Attribution.Requests;

/// <summary>
/// One feature to steer (docs/algorithm.md §9). Positions count the BOS as 0. The target is 0 when
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

/// <summary>How to generate: n_tokens new tokens, top_k probabilities per position, the sampler, freezing (defaults: <see cref="RequestSchema"/>).</summary>
public sealed record GenerationOptions
{
    public int NTokens { get; init; } = RequestSchema.NTokens.DefaultValue;
    public int TopK { get; init; } = RequestSchema.TopK.DefaultValue;
    public double Temperature { get; init; } = RequestSchema.Temperature.DefaultValue;
    public double FreqPenalty { get; init; } = RequestSchema.FreqPenalty.DefaultValue;
    public long? Seed { get; init; }
    public bool FreezeAttention { get; init; } = RequestSchema.FreezeAttention.Default;
}

/// <summary>
/// The rules a steer request's features obey beyond their field types (the reference server's,
/// plus the model's ranges), each failure a message naming the field.
/// </summary>
public static class SteeringValidation
{
    public static IReadOnlyList<string> Validate(IReadOnlyList<FeatureSteer> features, int promptLength, int nLayers, int dTranscoder)
    {
        var errors = new List<string>();
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
        }
        return errors;
    }
}
