namespace Attribution.Tracing;

using static TorchSharp.torch;

/// <summary>
/// The one plan of attribution rounds, run by both executors — in process (<see cref="Attributor"/>)
/// and as a Durable orchestration (GraphOrchestrator and its activities), so they cannot drift:
/// logit rows first; then rounds until <see cref="MaxFeatures"/> features have rows. When every
/// active feature is wanted, one round takes them all in node order, without ranking; otherwise
/// each round ranks the unvisited features by partial influence (docs/algorithm.md §6) and takes
/// the best <c>update_interval × batch_size</c>, reordered by node index so that batches group by
/// layer (a batch's backward pass runs only as deep as its deepest target). A round runs in
/// batches of <see cref="BatchSize"/>, several batches per unit of work (a Durable activity).
/// </summary>
public sealed record AttributionPlan(int ActiveFeatures, int MaxFeatures, int BatchSize, int UpdateInterval)
{
    public const string PreparePhase = "prepare";
    public const string LogitRowsPhase = "logit rows";
    public const string RankPhase = "rank";
    public const string FeatureRowsPhase = "feature rows";
    public const string AssemblePhase = "assemble";

    public static AttributionPlan For(int activeFeatures, int? maxFeatureNodes, int batchSize, int updateInterval) =>
        new(activeFeatures, Math.Min(maxFeatureNodes ?? activeFeatures, activeFeatures), batchSize, updateInterval);

    /// <summary>Whether rounds rank features; false when every active feature gets a row.</summary>
    public bool Ranks => MaxFeatures < ActiveFeatures;

    /// <summary>How many features the next round takes, with <paramref name="visited"/> already done.</summary>
    public int QueueSize(int visited) => Ranks ? Math.Min(UpdateInterval * BatchSize, MaxFeatures - visited) : MaxFeatures - visited;

    /// <summary>The round's queue when nothing is ranked: every active feature, in node order.</summary>
    public long[] EveryFeature() => [.. Enumerable.Range(0, ActiveFeatures).Select(i => (long)i)];

    /// <summary>A ranked round's queue: the best <paramref name="count"/> unvisited features, in batch (node) order.</summary>
    public static long[] RankedQueue(Tensor rows, long[] rowNodes, float[] logitProbabilities, bool[] visited, int count) =>
        FeatureRanking.InBatchOrder(FeatureRanking.NextQueue(rows, rowNodes, logitProbabilities, visited, count));

    /// <summary>A queue of <paramref name="queueCount"/> cut into units of <paramref name="batchesPerUnit"/> batches: (offset, count) each.</summary>
    public IReadOnlyList<(int Offset, int Count)> Units(int queueCount, int batchesPerUnit)
    {
        int unit = BatchSize * Math.Max(1, batchesPerUnit);
        return [.. Enumerable.Range(0, (queueCount + unit - 1) / unit).Select(i => (i * unit, Math.Min(unit, queueCount - i * unit)))];
    }
}
