namespace Attribution.Pipeline;

using Attribution.Loading;
using Attribution.Requests;
using Attribution.Tracing;

/// <summary>One graph to make: the prompt, the generation and pruning settings, who asked (defaults: <see cref="RequestSchema"/>).</summary>
public sealed record GraphRequest
{
    public required string Prompt { get; init; }
    public required string Slug { get; init; }
    public int MaxNLogits { get; init; } = RequestSchema.MaxNLogits.DefaultValue;
    public double DesiredLogitProb { get; init; } = RequestSchema.DesiredLogitProb.DefaultValue;
    public int BatchSize { get; init; } = RequestSchema.BatchSize.DefaultValue;
    public int MaxFeatureNodes { get; init; } = RequestSchema.MaxFeatureNodes.DefaultValue;
    public double NodeThreshold { get; init; } = RequestSchema.NodeThreshold.DefaultValue;
    public double EdgeThreshold { get; init; } = RequestSchema.EdgeThreshold.DefaultValue;
    public int UpdateInterval { get; init; } = RequestSchema.UpdateInterval.DefaultValue;
    public string? UserId { get; init; }

    /// <summary>Whether every kept link gets its head loadings (docs/algorithm.md §10): off by default, it costs a pass per batch of targets.</summary>
    public bool HeadLoadings { get; init; }

    /// <summary>Whether the most influential nodes get QK tracing results (docs/algorithm.md §11); it needs, and so computes, head loadings.</summary>
    public bool QkTracing { get; init; }

    public double QkTopFraction { get; init; } = RequestSchema.QkTopFraction.DefaultValue;

    /// <summary>Whether the graph's links or nodes are traced through attention after attribution (head loadings, QK tracing).</summary>
    public bool TracesAttention => HeadLoadings || QkTracing;

    public int QkTopK { get; init; } = RequestSchema.QkTopK.DefaultValue;

    /// <summary>This request's estimated peak memory on <paramref name="model"/> for a prompt of <paramref name="positions"/> tokens: the one place that says which of its options add terms.</summary>
    public MemoryEstimate EstimateMemory(LoadedModel model, int positions)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.EstimateMemory(positions, Attribution, TracesAttention, QkTracing);
    }

    /// <summary>The attribution targets asked for (token ids, resolved by <see cref="TargetResolution"/>); null: the salient logits.</summary>
    public IReadOnlyList<TargetRequest>? Targets { get; init; }

    /// <summary>
    /// A request whose <see cref="RequestSchema.GraphSettings"/> come from one source (a request
    /// body, command-line options): the one mapping from those fields to this record.
    /// </summary>
    public static GraphRequest FromSettings(string prompt, string slug, Func<IntegerField, int> whole, Func<NumberField, double> real) => new()
    {
        Prompt = prompt,
        Slug = slug,
        BatchSize = whole(RequestSchema.BatchSize),
        MaxNLogits = whole(RequestSchema.MaxNLogits),
        DesiredLogitProb = real(RequestSchema.DesiredLogitProb),
        NodeThreshold = real(RequestSchema.NodeThreshold),
        EdgeThreshold = real(RequestSchema.EdgeThreshold),
        MaxFeatureNodes = whole(RequestSchema.MaxFeatureNodes),
        UpdateInterval = whole(RequestSchema.UpdateInterval),
        QkTopFraction = real(RequestSchema.QkTopFraction),
        QkTopK = whole(RequestSchema.QkTopK),
    };

    public AttributionSettings Attribution => new()
    {
        MaxNLogits = MaxNLogits,
        DesiredLogitProb = DesiredLogitProb,
        BatchSize = BatchSize,
        MaxFeatureNodes = MaxFeatureNodes,
        UpdateInterval = UpdateInterval,
        Targets = Targets,
    };
}

/// <summary>This program, as named in every graph's info.generator; <see cref="Url"/> is written only when there is one.</summary>
public sealed record GeneratorInfo(string Name, string Version, string? Url = null)
{
    /// <summary>No URL: the project has no public address, and the schema's generator.url is optional.</summary>
    public static GeneratorInfo Default { get; } = new("GraphFunctions",
        typeof(GeneratorInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0");
}
