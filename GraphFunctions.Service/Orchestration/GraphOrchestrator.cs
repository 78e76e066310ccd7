namespace GraphFunctions.Orchestration;

using Attribution.Tracing;
using Microsoft.DurableTask;

/// <summary>
/// One attribution graph as a Durable orchestration (docs/architecture.md, "Data flow"):
/// begin (store the job, prepare, logit rows, first ranking) → rounds of (rank, but the first →
/// fan out one activity per unit of batches → fan in) → assemble, prune and write the JSON → deliver → clean up. It only orchestrates: every
/// computation and all I/O happen in activities, rows live in the workspace, and what it
/// decides depends only on activity results, so replays take the same path.
/// </summary>
public sealed class GraphOrchestrator : TaskOrchestrator<GraphJob, GraphJobResult>
{
    /// <summary>The phases of the custom status after the engine's (docs/api.md).</summary>
    public const string DeliverPhase = "deliver", WaitingForDeliverySlotPhase = "deliver: waiting for a delivery slot",
        DeliveryFailedPhase = "delivery failed", DonePhase = "done";

    private static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(new RetryPolicy(maxNumberOfAttempts: 3, firstRetryInterval: TimeSpan.FromSeconds(1)));

    public override async Task<GraphJobResult> RunAsync(TaskOrchestrationContext context, GraphJob job)
    {
        try
        {
            return await RunJobAsync(context, job);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The reason is kept with the job (not every provider keeps Durable's failure details), and the rows go now.
            await context.CallActivityAsync<bool>(nameof(RecordFailureActivity), new FailedJob(job.JobId, JobFailure.Of(e)), Retry);
            throw;
        }
    }

    private static async Task<GraphJobResult> RunJobAsync(TaskOrchestrationContext context, GraphJob job)
    {
        var started = context.CurrentUtcDateTime;
        void Report(string phase, int visited, int toVisit) =>
            context.SetCustomStatus(new GraphJobStatus(phase, visited, toVisit, (context.CurrentUtcDateTime - started).TotalSeconds, job.MemoryEstimateGb));

        Report(AttributionPlan.PreparePhase, 0, 0);
        var prepared = await context.CallActivityAsync<PreparedGraph>(nameof(BeginGraphActivity), job, Retry);
        var plan = job.Plan(prepared.ActiveFeatures);
        Report(AttributionPlan.FeatureRowsPhase, 0, plan.MaxFeatures);

        var blocks = new List<string>();
        int visited = 0;
        foreach (var (count, round) in plan.Rounds(() => visited))
        {
            var queue = !plan.Ranks ? new RankedFeatures(null, count)   // every feature, node order
                : round == 0 ? prepared.FirstQueue!
                : await context.CallActivityAsync<RankedFeatures>(nameof(RankFeaturesActivity), new RankInput(job.JobId, blocks, count, round), Retry);
            if (queue.Count == 0) break;

            // One activity per unit of BatchesPerActivity batches: Durable's per-activity latency is
            // paid once per unit, and the units still spread over every GPU instance.
            var slices = plan.Units(queue.Count, job.BatchesPerActivity)
                .Select((unit, i) => RowsHalvingOnOutOfMemory(context, new FeatureBatch(job.JobId, queue.Key, unit.Offset, unit.Count, $"r{round}-b{i}"), plan.BatchSize))
                .ToList();
            // Progress moves as slices finish (Durable replays WhenAny in history order, so this stays deterministic).
            int rowsDone = 0;
            for (var pending = slices.ToList(); pending.Count > 0;)
            {
                var finished = await Task.WhenAny(pending);
                pending.Remove(finished);
                rowsDone += (await finished).Sum(block => block.Rows);
                Report(AttributionPlan.FeatureRowsPhase, visited + rowsDone, plan.MaxFeatures);
            }
            blocks.AddRange(slices.SelectMany(slice => slice.Result).Select(block => block.Block));   // in queue order
            visited += queue.Count;
        }

        Report(AttributionPlan.AssemblePhase, visited, plan.MaxFeatures);
        var graph = await context.CallActivityAsync<GraphOutput>(nameof(AssembleGraphActivity), new AssembleInput(job.JobId, blocks), Retry);
        DeliveryOutcome? delivery = null;
        if (job.Delivers)
        {
            delivery = await DeliverAsync(context, job.JobId, phase => Report(phase, visited, plan.MaxFeatures));
            if (!delivery.Success)
            {
                // The job failed: its status names the reason, and the waiting client gets it as {"error": ...}.
                Report(DeliveryFailedPhase, visited, plan.MaxFeatures);
                throw new GraphDeliveryFailedException(delivery.Message);
            }
        }
        await context.CallActivityAsync<bool>(nameof(CleanupJobActivity), job.JobId, Retry);
        Report(DonePhase, visited, plan.MaxFeatures);
        return new GraphJobResult(graph, delivery);
    }

    /// <summary>Waits for a free delivery slot before a job fails: at 30 s each after the first few, about an hour.</summary>
    public const int DeliveryDeferrals = 125;

    /// <summary>
    /// Delivers the graph. While the workers' delivery slots are all taken (by uploads to slow
    /// hosts), it waits on durable timers, 1 s doubling to 30 s, which hold no activity slot.
    /// </summary>
    private static async Task<DeliveryOutcome> DeliverAsync(TaskOrchestrationContext context, string jobId, Action<string> report)
    {
        var pause = TimeSpan.FromSeconds(1);
        for (int deferrals = 0; ; deferrals++)
        {
            report(DeliverPhase);
            var outcome = await context.CallActivityAsync<DeliveryOutcome>(nameof(DeliverGraphActivity), jobId, Retry);
            if (!outcome.Deferred) return outcome;
            if (deferrals == DeliveryDeferrals)
                return outcome with { Message = $"{GraphDelivery.UploadFailed}: {outcome.Message} after {DeliveryDeferrals} tries over about an hour" };
            report(WaitingForDeliverySlotPhase);
            await context.CreateTimer(context.CurrentUtcDateTime + pause, CancellationToken.None);
            pause = TimeSpan.FromSeconds(Math.Min(30, pause.TotalSeconds * 2));
        }
    }

    /// <summary>Runs a batch; if it does not fit in memory, runs its two halves instead (down to single rows).</summary>
    private static async Task<IReadOnlyList<RowBlock>> RowsHalvingOnOutOfMemory(TaskOrchestrationContext context, FeatureBatch batch, int batchSize)
    {
        var block = await context.CallActivityAsync<RowBlock>(nameof(FeatureRowsActivity), batch, Retry);
        if (!block.OutOfMemory) return [block];
        if (batch.Count == 1) throw new InvalidOperationException($"a single feature row of job {batch.JobId} does not fit in memory");
        int half = batch.Count / 2;
        // Halves of at least a batch still run with the full frozen pass; smaller ones shrink it.
        bool shrink = batch.Shrunk || half < batchSize;
        var first = await RowsHalvingOnOutOfMemory(context, batch with { Count = half, Block = batch.Block + "a", Shrunk = shrink }, batchSize);
        var second = await RowsHalvingOnOutOfMemory(context, batch with { Offset = batch.Offset + half, Count = batch.Count - half, Block = batch.Block + "b", Shrunk = shrink }, batchSize);
        return [.. first, .. second];
    }
}

/// <summary>A graph was made but could not be delivered; the message says where and why.</summary>
public sealed class GraphDeliveryFailedException : Exception
{
    public GraphDeliveryFailedException()
    {
    }

    public GraphDeliveryFailedException(string message)
        : base(message)
    {
    }

    public GraphDeliveryFailedException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
