namespace Attribution.Pipeline;

using Attribution.Tracing;

/// <summary>One graph to make: the prompt, the generation and pruning settings, who asked (SPEC 2).</summary>
public sealed record GraphRequest
{
    public required string Prompt { get; init; }
    public required string Slug { get; init; }
    public int MaxNLogits { get; init; } = 10;
    public double DesiredLogitProb { get; init; } = 0.95;
    public int BatchSize { get; init; } = 48;
    public int MaxFeatureNodes { get; init; } = 10000;
    public double NodeThreshold { get; init; } = 0.8;
    public double EdgeThreshold { get; init; } = 0.98;
    public int UpdateInterval { get; init; } = 4;
    public string? UserId { get; init; }

    public AttributionSettings Attribution => new()
    {
        MaxNLogits = MaxNLogits,
        DesiredLogitProb = DesiredLogitProb,
        BatchSize = BatchSize,
        MaxFeatureNodes = MaxFeatureNodes,
        UpdateInterval = UpdateInterval,
    };
}

/// <summary>This program, as named in every graph's info.generator.</summary>
public sealed record GeneratorInfo(string Name, string Version, string Url)
{
    public static GeneratorInfo Default { get; } = new("GraphFunctions",
        typeof(GeneratorInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0",
        "https://github.com/graphfunctions/graphfunctions");
}
