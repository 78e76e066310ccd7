namespace Attribution.Tracing;

using Attribution.Requests;

/// <summary>Generation settings of one graph, defaulting as the request schema says.</summary>
public sealed record AttributionSettings
{
    public int MaxNLogits { get; init; } = RequestSchema.MaxNLogits.DefaultValue;
    public double DesiredLogitProb { get; init; } = RequestSchema.DesiredLogitProb.DefaultValue;
    public int BatchSize { get; init; } = RequestSchema.BatchSize.DefaultValue;

    /// <summary>At most this many features get rows; null means all active features.</summary>
    public int? MaxFeatureNodes { get; init; } = RequestSchema.MaxFeatureNodes.DefaultValue;

    /// <summary>Batches between re-rankings of the unvisited features (circuit-tracer's default is 4).</summary>
    public int UpdateInterval { get; init; } = RequestSchema.UpdateInterval.DefaultValue;

    /// <summary>The targets to attribute from; null: the salient next tokens (<see cref="MaxNLogits"/>, <see cref="DesiredLogitProb"/>).</summary>
    public IReadOnlyList<TargetRequest>? Targets { get; init; }
}
