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
/// Feature rows are kept whole for ranking, or compact when no round ranks from them.
/// </summary>
public sealed record AttributionPlan(int ActiveFeatures, int MaxFeatures, int BatchSize, int UpdateInterval)
{
    public const string PreparePhase = "prepare";
    public const string LogitRowsPhase = "logit rows";
    public const string RankPhase = "rank";
    public const string FeatureRowsPhase = "feature rows";
    public const string AssemblePhase = "assemble";

    public static AttributionPlan For(int activeFeatures, AttributionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        int maxFeatures = Math.Min(settings.MaxFeatureNodes ?? activeFeatures, activeFeatures);
        return new(activeFeatures, maxFeatures, settings.BatchSize, settings.UpdateInterval);
    }

    /// <summary>
    /// The prepare phase of both executors: the clean forward pass of the prompt (its active features,
    /// errors and token vectors) and the logit targets the rows are attributed from.
    /// </summary>
    public static (PreparedPrompt Prompt, LogitTargets Targets) Prepare(ReplacementModel replacement, int[] tokens, AttributionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        ArgumentNullException.ThrowIfNull(settings);
        var prompt = PreparedPrompt.Prepare(replacement, tokens);
        return (prompt, LogitTargets.For(prompt.LastLogits, replacement.Model.Unembedding, settings));
    }

    /// <summary>
    /// The rounds of feature rows, as both executors loop over them: each gives how many features the
    /// round queues (<see cref="QueueSize"/>) and its number, until <see cref="MaxFeatures"/> have rows.
    /// The executor stops early when a round's queue comes back empty.
    /// </summary>
    public IEnumerable<(int Count, int Round)> Rounds(Func<int> visited)
    {
        ArgumentNullException.ThrowIfNull(visited);
        for (int round = 0; visited() < MaxFeatures; round++)
            yield return (QueueSize(visited()), round);
    }

    /// <summary>Whether rounds rank features; false when every active feature gets a row.</summary>
    public bool Ranks => MaxFeatures < ActiveFeatures;

    /// <summary>
    /// Whether the first round takes the whole selection (always when nothing is ranked, and with
    /// Neuronpedia's update_interval 1000): then no later round ranks from feature rows, and they
    /// are stored compact (<see cref="StoredRows"/>), cut to the selected features' columns.
    /// </summary>
    public bool SelectsInFirstRound => QueueSize(0) == MaxFeatures;

    /// <summary>How many features the next round takes, with <paramref name="visited"/> already done.</summary>
    public int QueueSize(int visited) => Ranks ? Math.Min(UpdateInterval * BatchSize, MaxFeatures - visited) : MaxFeatures - visited;

    /// <summary>The round's queue when nothing is ranked: every active feature, in node order.</summary>
    public long[] EveryFeature() => [.. Enumerable.Range(0, ActiveFeatures).Select(i => (long)i)];

    /// <summary>
    /// A ranked round's queue: the best <paramref name="count"/> features without rows, by partial
    /// influence from the logit rows and the (whole) feature rows so far, in batch (node) order.
    /// </summary>
    public long[] RankedQueue(StoredRows logitRows, IReadOnlyList<StoredRows> featureRows, float[] logitProbabilities, int count)
    {
        var visited = new bool[ActiveFeatures];
        foreach (long feature in featureRows.SelectMany(b => b.Nodes)) visited[feature] = true;
        using var rows = cat([logitRows.Values, .. featureRows.Select(b => b.Values)], 0);
        long[] rowNodes = [.. logitRows.Nodes, .. featureRows.SelectMany(b => b.Nodes)];
        return FeatureRanking.InBatchOrder(FeatureRanking.NextQueue(rows, rowNodes, logitProbabilities, visited, count));
    }

    /// <summary>The logit targets' rows, whole (ranking reads them), each keyed by its logit node (RowLength + i).</summary>
    public static StoredRows LogitRows(AttributionContext context, LogitTargets targets) =>
        StoredRows.Whole([.. Enumerable.Range(0, targets.Count).Select(i => (long)(context.RowLength + i))], context.LogitRows(targets));

    /// <summary>
    /// The rows of one unit of features, stored as the plan keeps them: compact, cut to
    /// <paramref name="graphColumns"/> on the device, when given; whole otherwise.
    /// </summary>
    public static StoredRows FeatureRows(AttributionContext context, long[] features, Tensor? graphColumns)
    {
        var rows = context.FeatureRows(features, graphColumns);
        if (graphColumns is null) return StoredRows.Whole(features, rows);
        using (rows) return StoredRows.Compact(features, rows, context.ComputeType);
    }

    /// <summary>The graph's columns when the first round's queue is the whole selection (compact rows), else null (whole rows).</summary>
    public Tensor? GraphColumnsFor(long[] firstQueue, int rowLength) =>
        SelectsInFirstRound ? StoredRows.GraphColumns(firstQueue, ActiveFeatures, rowLength) : null;

    /// <summary>A queue of <paramref name="queueCount"/> cut into units of <paramref name="batchesPerUnit"/> batches: (offset, count) each.</summary>
    public IReadOnlyList<(int Offset, int Count)> Units(int queueCount, int batchesPerUnit)
    {
        int unit = BatchSize * Math.Max(1, batchesPerUnit);
        return [.. Enumerable.Range(0, (queueCount + unit - 1) / unit).Select(i => (i * unit, Math.Min(unit, queueCount - i * unit)))];
    }
}
