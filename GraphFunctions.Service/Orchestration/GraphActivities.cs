namespace GraphFunctions.Orchestration;

using System.Runtime.InteropServices;
using Attribution.Graphs;
using Attribution.Pipeline;
using Attribution.Tracing;
using GraphFunctions.Storage;
using GraphFunctions.Workers;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;

/// <summary>
/// The run's first step, in one activity: every hand-off between activities is a queue round trip
/// (0.2–0.5 s on Azurite, up to the polling cap — 2 s in host.json — in Azure), and these parts
/// are short and need nothing from each other's results but the prepared state. In order:
/// the job's files become this run's alone (what an earlier run of the slug left is removed,
/// and the request is written from this run's input, so the stored request and the graph always
/// agree, whichever host started the run); the clean and frozen forward passes; the logit rows,
/// stored as the job's first row block; and, when features are ranked, the first round's queue.
/// A retry redoes all of it from the start.
/// </summary>
public class BeginGraphActivity(JobStates states, GpuGate gpu, IWorkspaceStore workspace) : TaskActivity<GraphJob, PreparedGraph>
{
    public override async Task<PreparedGraph> RunAsync(TaskActivityContext context, GraphJob input)
    {
        await workspace.DeletePrefixAsync(JobKeys.Prefix(input.JobId));
        await JobStates.WriteJobAsync(workspace, input);
        using var slot = await gpu.EnterAsync();
        var state = await states.GetAsync(input.JobId);
        using (var rows = AttributionPlan.LogitRows(state.Context, state.Targets))
            await RowBlocks.WriteAsync(workspace, JobKeys.Rows(input.JobId, JobKeys.LogitBlock), rows);
        var plan = state.Job.Plan(state.Prompt.Active.Count);
        var firstQueue = plan.Ranks
            ? await RankFeaturesActivity.RankAsync(workspace, state, new RankInput(input.JobId, [], plan.QueueSize(0), Round: 0))
            : null;
        return new PreparedGraph(state.Prompt.Active.Count, state.Targets.Count, state.RowLength, firstQueue);
    }
}

/// <summary>
/// Ranks the unvisited features by partial influence from every row stored so far (docs/algorithm.md §6)
/// and stores the next queue. Ranking runs here, from stored rows, so the orchestrator stays
/// deterministic on replay.
/// </summary>
public class RankFeaturesActivity(JobStates states, GpuGate gpu, IWorkspaceStore workspace) : TaskActivity<RankInput, RankedFeatures>
{
    public override async Task<RankedFeatures> RunAsync(TaskActivityContext context, RankInput input)
    {
        using var slot = await gpu.EnterAsync();
        return await RankAsync(workspace, await states.GetAsync(input.JobId), input);
    }

    /// <summary>The ranking itself, shared with <see cref="BeginGraphActivity"/> (the first round's).</summary>
    public static async Task<RankedFeatures> RankAsync(IWorkspaceStore workspace, JobState state, RankInput input)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(input);
        using var logitRows = await RowBlocks.ReadAsync(workspace, JobKeys.Rows(input.JobId, JobKeys.LogitBlock));
        var featureRows = new List<StoredRows>();
        try
        {
            foreach (var block in input.Blocks) featureRows.Add(await RowBlocks.ReadAsync(workspace, JobKeys.Rows(input.JobId, block)));
            var queue = state.Job.Plan(state.Prompt.Active.Count).RankedQueue(logitRows, featureRows, state.Targets.Probabilities, input.Count);
            string key = JobKeys.Queue(input.JobId, input.Round);
            await RowBlocks.WriteQueueAsync(workspace, key, queue);
            return new RankedFeatures(key, queue.Length);
        }
        finally
        {
            foreach (var rows in featureRows) rows.Dispose();
        }
    }
}

/// <summary>
/// One batch of feature rows (one backward pass per batch_size targets), stored as a row block.
/// A batch that runs out of memory stores nothing and says so; the orchestrator halves it.
/// </summary>
public class FeatureRowsActivity(JobStates states, GpuGate gpu, IWorkspaceStore workspace, ModelHost models, JobWatch watch, ILogger<FeatureRowsActivity>? log = null)
    : TaskActivity<FeatureBatch, RowBlock>
{
    public override async Task<RowBlock> RunAsync(TaskActivityContext context, FeatureBatch input)
    {
        using var slot = await gpu.EnterAsync();
        // Durable still runs the slices a terminated job had scheduled: skip them, and free the slot.
        if (await SkipFinishedAsync(context, input)) return new RowBlock(input.Block, 0);
        // Which process ran which slice: how scale-out over several workers shows in the logs.
        log?.LogInformation("Feature rows {Block} of job {Job} in process {Process}", input.Block, input.JobId, Environment.ProcessId);
        var state = await states.GetAsync(input.JobId);
        var plan = state.Job.Plan(state.Prompt.Active.Count);
        var queue = input.QueueKey is null ? plan.EveryFeature() : await RowBlocks.ReadQueueAsync(workspace, input.QueueKey);
        var features = queue[input.Offset..(input.Offset + input.Count)];
        using var graphColumns = plan.GraphColumnsFor(queue, state.RowLength);
        StoredRows rows;
        try
        {
            if (input.Shrunk)
            {
                // The frozen forward pass holds batch_size copies of the prompt: a smaller one for a split batch.
                var model = await models.GetAsync();
                using var small = new AttributionContext(model.Replacement, state.Prompt, input.Count);
                rows = AttributionPlan.FeatureRows(small, features, graphColumns);
            }
            else
            {
                rows = AttributionPlan.FeatureRows(state.Context, features, graphColumns);
            }
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            return new RowBlock(input.Block, 0, OutOfMemory: true);
        }
        using (rows)
        {
            if (await SkipFinishedAsync(context, input)) return new RowBlock(input.Block, 0);   // terminated while this batch ran
            await RowBlocks.WriteAsync(workspace, JobKeys.Rows(input.JobId, input.Block), rows);
        }
        return new RowBlock(input.Block, features.Length);
    }

    /// <summary>Whether the job has finished; its rows are then released (a terminated job keeps none).</summary>
    private async Task<bool> SkipFinishedAsync(TaskActivityContext context, FeatureBatch input)
    {
        if (!await watch.HasFinishedAsync(context.InstanceId)) return false;
        log?.LogInformation("Skipped feature rows {Block} of finished job {Job}", input.Block, input.JobId);
        await states.ReleaseRowsAsync(workspace, input.JobId);
        return true;
    }

    /// <summary>libtorch reports exhausted (GPU) memory as an error whose message says so.</summary>
    public static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || (e is ExternalException && e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase));
}

/// <summary>Assemble, prune and write the graph JSON into the workspace (docs/algorithm.md §7, docs/graph-format.md).</summary>
public class AssembleGraphActivity(JobStates states, GpuGate gpu, IWorkspaceStore workspace, ModelHost models) : TaskActivity<AssembleInput, GraphOutput>
{
    public override async Task<GraphOutput> RunAsync(TaskActivityContext context, AssembleInput input)
    {
        using var slot = await gpu.EnterAsync();
        var state = await states.GetAsync(input.JobId);
        // Every row is stored: the frozen forward pass is not needed for assembly, pruning and the JSON.
        state.ReleaseContext();
        var model = await models.GetAsync();
        // Rows stream in block by block: the assembly holds the adjacency and one block.
        var featureNodes = new List<long>();
        foreach (var block in input.Blocks) featureNodes.AddRange(await RowBlocks.ReadNodesAsync(workspace, JobKeys.Rows(input.JobId, block)));
        AttributionGraph graph;
        using (var assembly = new GraphAssembly(state.Job.Tokens, model.Replacement.NLayers, state.Prompt.Active,
            state.Targets.TokenIds, state.Targets.Probabilities, featureNodes, state.RowLength))
        {
            using (var logitRows = await RowBlocks.ReadAsync(workspace, JobKeys.Rows(input.JobId, JobKeys.LogitBlock)))
                assembly.AddLogitRows(logitRows);
            foreach (var block in input.Blocks)
            {
                using var rows = await RowBlocks.ReadAsync(workspace, JobKeys.Rows(input.JobId, block));
                assembly.AddFeatureRows(rows);
            }
            graph = assembly.Build();
        }
        using (graph)
        {
            string key = JobKeys.Graph(input.JobId);
            GraphSummary? summary = null;
            await workspace.WriteAsync(key, (stream, _) =>
            {
                summary = GraphPipeline.WriteGraph(model, graph, state.Job.Request, stream);
                return Task.CompletedTask;
            });
            return new GraphOutput(key, summary!.ActiveFeatures, summary.SelectedFeatures, summary.KeptNodes, summary.Logits,
                summary.Scores.Replacement, summary.Scores.Completeness);
        }
    }
}

/// <summary>Uploads the finished graph where the request asked: an S3 presigned URL or the graph blob container.</summary>
public class DeliverGraphActivity(IWorkspaceStore workspace, GraphDelivery delivery, JobWatch watch, DeliverySlots slots) : TaskActivity<string, DeliveryOutcome>
{
    public override async Task<DeliveryOutcome> RunAsync(TaskActivityContext context, string input)
    {
        // Uploads never take the worker's last activity slot: without a free delivery slot, the orchestration waits on a timer instead.
        using var slot = slots.TryTake();
        if (slot is null) return DeliveryOutcome.NoFreeSlot(slots.Capacity);
        var job = await JobStates.ReadJobAsync(workspace, input);
        // A terminated job's upload stops (a slow host would otherwise hold this worker until the deadline).
        using var running = watch.WhileRunning(context.InstanceId);
        return await delivery.DeliverAsync(job, JobKeys.Graph(job.JobId), running.Token);
    }
}

/// <summary>Removes the job's row blocks and queues and this worker's prepared state of it; the job and its graph stay for the result route.</summary>
public class CleanupJobActivity(IWorkspaceStore workspace, JobStates states) : TaskActivity<string, bool>
{
    public override async Task<bool> RunAsync(TaskActivityContext context, string input)
    {
        await states.ReleaseRowsAsync(workspace, input);
        return true;
    }
}

/// <summary>
/// A failed job: its reason kept with it (<see cref="JobFailure"/>), and its row blocks released
/// at once; a full disk must not stay full until the retention purges the job.
/// </summary>
public class RecordFailureActivity(IWorkspaceStore workspace, JobStates states) : TaskActivity<FailedJob, bool>
{
    public override async Task<bool> RunAsync(TaskActivityContext context, FailedJob input)
    {
        await states.ReleaseRowsAsync(workspace, input.JobId);   // first: the reason is small, the rows may be what filled the disk
        await JobStates.WriteFailureAsync(workspace, input.JobId, input.Failure);
        return true;
    }
}
