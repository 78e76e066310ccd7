namespace Attribution.Tracing;

/// <summary>Generation settings of one graph (SPEC 2 defaults are the Neuronpedia server's).</summary>
public sealed record AttributionSettings
{
    public int MaxNLogits { get; init; } = 10;
    public double DesiredLogitProb { get; init; } = 0.95;
    public int BatchSize { get; init; } = 48;

    /// <summary>At most this many features get rows; null means all active features.</summary>
    public int? MaxFeatureNodes { get; init; } = 10000;

    /// <summary>Batches between re-rankings of the unvisited features (circuit-tracer's default is 4).</summary>
    public int UpdateInterval { get; init; } = 4;
}
