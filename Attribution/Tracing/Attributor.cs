namespace Attribution.Tracing;

using System.Diagnostics;
using Attribution.Graphs;
using static Attribution.Tracing.AttributionPlan;
using static TorchSharp.torch;

/// <summary>Progress of a running attribution: the phase and, for feature rows, features visited of those to visit.</summary>
public sealed record AttributionProgress(string Phase, int Done, int Total);

/// <summary>Wall-clock seconds per phase, in the order the phases ran.</summary>
public sealed class PhaseTimings
{
    private readonly List<(string Phase, double Seconds)> phases = [];

    public IReadOnlyList<(string Phase, double Seconds)> Phases => phases;

    public double Total => phases.Sum(p => p.Seconds);

    public double this[string phase] => phases.Where(p => p.Phase == phase).Sum(p => p.Seconds);

    public T Time<T>(string phase, Func<T> work)
    {
        var clock = Stopwatch.StartNew();
        var result = work();
        phases.Add((phase, clock.Elapsed.TotalSeconds));
        return result;
    }

    public void Add(string phase, double seconds) => phases.Add((phase, seconds));
}

/// <summary>The unpruned graph, with what it took to make it and the order features were attributed in.</summary>
public sealed record AttributionResult(AttributionGraph Graph, PhaseTimings Timings, IReadOnlyList<long> VisitOrder) : IDisposable
{
    public void Dispose() => Graph.Dispose();
}

/// <summary>
/// Attribution of one prompt, in process: circuit-tracer's `attribute` (docs/algorithm.md), in the
/// phases of <see cref="AttributionPlan"/> that the Durable orchestration also runs: prepare (clean
/// forward pass, logit targets, the frozen pass's context), logit rows, rounds of (rank, feature
/// rows), assemble.
/// </summary>
public static class Attributor
{
    public static AttributionResult Attribute(ReplacementModel replacement, int[] tokens, AttributionSettings settings, IProgress<AttributionProgress>? progress = null)
    {
        var timings = new PhaseTimings();
        progress?.Report(new(PreparePhase, 0, 0));
        var (preparedPrompt, preparedTargets) = timings.Time(PreparePhase, () => Prepare(replacement, tokens, settings));
        using var prompt = preparedPrompt;
        using var targets = preparedTargets;
        using var context = timings.Time(PreparePhase, () => new AttributionContext(replacement, prompt, settings.BatchSize));

        int nLogits = targets.Count;
        var plan = For(prompt.Active.Count, settings);
        progress?.Report(new(LogitRowsPhase, 0, nLogits));
        using var logitRows = timings.Time(LogitRowsPhase, () => AttributionPlan.LogitRows(context, targets));
        progress?.Report(new(LogitRowsPhase, nLogits, nLogits));

        // Rows in blocks, as the Durable activities store them: one block per batch.
        var blocks = new List<StoredRows>();
        var visitOrder = new List<long>();
        Tensor? graphColumns = null;
        // Compact rows (the whole selection known up front) go into one allocation made once: a
        // long-lived block per batch, placed among each batch's freed temporaries, fragments the
        // heap (resident memory grew ~0.7 GB over a 5000-feature graph of a 12-layer model).
        Tensor? rowStore = null;
        try
        {
            foreach (var (count, _) in plan.Rounds(() => visitOrder.Count))
            {
                var queue = plan.Ranks
                    ? timings.Time(RankPhase, () => plan.RankedQueue(logitRows, blocks, targets.Probabilities, count))
                    : plan.EveryFeature();
                if (queue.Length == 0) break;
                graphColumns ??= plan.GraphColumnsFor(queue, context.RowLength);
                if (graphColumns is not null)
                    rowStore ??= empty(plan.MaxFeatures, graphColumns.shape[0], StoredRows.CompactValueType(context.ComputeType));
                timings.Time(FeatureRowsPhase, () =>
                {
                    foreach (var batch in queue.Chunk(settings.BatchSize))
                    {
                        var block = AttributionPlan.FeatureRows(context, batch, graphColumns);
                        blocks.Add(rowStore is null ? block : block.MovedInto(rowStore, visitOrder.Count));
                        visitOrder.AddRange(batch);
                        progress?.Report(new(FeatureRowsPhase, visitOrder.Count, plan.MaxFeatures));
                    }
                    return 0;
                });
            }

            progress?.Report(new(AssemblePhase, 0, 0));
            var graph = timings.Time(AssemblePhase, () => GraphAssembly.Assemble(tokens, replacement.NLayers, prompt.Active, targets.TokenIds,
                targets.Probabilities, logitRows, blocks));
            return new AttributionResult(graph, timings, visitOrder);
        }
        finally
        {
            foreach (var block in blocks) block.Dispose();
            rowStore?.Dispose();
            graphColumns?.Dispose();
        }
    }
}
