namespace GraphFunctions.Orchestration;

using System.Text.Json;
using Attribution.Tracing;
using GraphFunctions.Service;
using GraphFunctions.Storage;

/// <summary>The prepared forward state of one job on this worker: what its activities compute rows from.</summary>
public sealed class JobState(GraphJob job, PreparedPrompt prompt, AttributionContext context, LogitTargets targets) : IDisposable
{
    public GraphJob Job { get; } = job;
    public PreparedPrompt Prompt { get; } = prompt;
    public AttributionContext Context { get; } = context;
    public LogitTargets Targets { get; } = targets;

    public void Dispose()
    {
        Context.Dispose();
        Targets.Dispose();
        Prompt.Dispose();
    }
}

/// <summary>
/// Prepared states of the most recent jobs on this worker, keyed by run (job id and run id: a
/// resubmitted slug never sees the state of an earlier request). An activity that lands on a
/// worker without its run's state rebuilds it from the job stored in the workspace:
/// preparation is deterministic, so every worker computes identical rows.
/// </summary>
public sealed class JobStates(ModelHost models, IWorkspaceStore workspace) : IDisposable
{
    private const int Capacity = 2;
    private readonly Lock gate = new();
    private readonly LinkedList<JobState> recent = new();
    private int rebuilds;

    /// <summary>Forgets every prepared state (what a fresh worker looks like).</summary>
    public void Clear()
    {
        lock (gate)
        {
            foreach (var state in recent) state.Dispose();
            recent.Clear();
        }
    }

    /// <summary>How many states this worker has prepared (not found in its cache).</summary>
    public int Rebuilds => Volatile.Read(ref rebuilds);

    public async Task<JobState> GetAsync(string jobId, CancellationToken cancellation = default)
    {
        // The stored job names the current run; it is small, and reading it is what keeps a cache honest across workers.
        var job = await ReadJobAsync(workspace, jobId, cancellation);
        lock (gate)
        {
            var found = recent.FirstOrDefault(s => s.Job.JobId == jobId && s.Job.RunId == job.RunId);
            if (found is not null)
            {
                recent.Remove(found);
                recent.AddFirst(found);
                return found;
            }
        }
        Interlocked.Increment(ref rebuilds);
        var model = await models.GetAsync();
        var prompt = PreparedPrompt.Prepare(model.Replacement, job.Tokens);
        var context = new AttributionContext(model.Replacement, prompt, job.Request.BatchSize);
        var targets = LogitTargets.Select(prompt.LastLogits, model.Replacement.Model.Unembedding, job.Request.MaxNLogits, job.Request.DesiredLogitProb);
        var state = new JobState(job, prompt, context, targets);
        lock (gate)
        {
            recent.AddFirst(state);
            while (recent.Count > Capacity)
            {
                recent.Last!.Value.Dispose();
                recent.RemoveLast();
            }
        }
        return state;
    }

    public static Task WriteJobAsync(IWorkspaceStore workspace, GraphJob job, CancellationToken cancellation = default) =>
        workspace.WriteAsync(JobKeys.Job(job.JobId), (stream, ct) => JsonSerializer.SerializeAsync(stream, job, cancellationToken: ct), cancellation);

    public static async Task<GraphJob> ReadJobAsync(IWorkspaceStore workspace, string jobId, CancellationToken cancellation = default)
    {
        await using var stream = await workspace.OpenReadAsync(JobKeys.Job(jobId), cancellation);
        return await JsonSerializer.DeserializeAsync<GraphJob>(stream, cancellationToken: cancellation)
            ?? throw new InvalidDataException($"job {jobId} is empty in the workspace");
    }

    public void Dispose() => Clear();
}
