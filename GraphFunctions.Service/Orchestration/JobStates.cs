namespace GraphFunctions.Orchestration;

using System.Text.Json;
using Attribution.Tracing;
using GraphFunctions.Storage;
using GraphFunctions.Workers;

/// <summary>
/// The prepared state of one job on this worker: what its activities compute rows from. The
/// frozen forward pass (<see cref="Context"/>, batch_size copies of the prompt's pass: the
/// largest part) is made on first use and can be released once no more rows are needed.
/// </summary>
public sealed class JobState(GraphJob job, PreparedPrompt prompt, LogitTargets targets, ReplacementModel replacement) : IDisposable
{
    private readonly Lock gate = new();
    private AttributionContext? context;

    public GraphJob Job { get; } = job;
    public PreparedPrompt Prompt { get; } = prompt;
    public LogitTargets Targets { get; } = targets;

    /// <summary>The frozen forward pass, made now if this worker has none (again, after <see cref="ReleaseContext"/>).</summary>
    public AttributionContext Context
    {
        get
        {
            lock (gate) return context ??= new AttributionContext(replacement, Prompt, Job.Request.BatchSize);
        }
    }

    public int RowLength => AttributionContext.RowLengthFor(Prompt, replacement.NLayers);

    /// <summary>Frees the frozen forward pass (assembly needs none); a later row activity would make it again.</summary>
    public void ReleaseContext()
    {
        lock (gate)
        {
            context?.Dispose();
            context = null;
        }
    }

    public void Dispose()
    {
        ReleaseContext();
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

    /// <summary>
    /// Drops a finished job's states (every run of its id): its frozen forward pass is the largest
    /// thing a job holds, and keeping it until two newer jobs push it out would hold it during the next.
    /// </summary>
    public void Forget(string jobId)
    {
        lock (gate)
        {
            for (var node = recent.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Job.JobId == jobId)
                {
                    node.Value.Dispose();
                    recent.Remove(node);
                }
                node = next;
            }
        }
    }

    /// <summary>Whether this worker holds a prepared state of <paramref name="jobId"/>.</summary>
    public bool Holds(string jobId)
    {
        lock (gate) return recent.Any(s => s.Job.JobId == jobId);
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
        var (prompt, targets) = AttributionPlan.Prepare(model.Replacement, job.Tokens, job.Request.Attribution);
        model.ObserveActivity(prompt.Active, prompt.NPos);   // later jobs' memory estimates
        var state = new JobState(job, prompt, targets, model.Replacement);
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

    /// <summary>Deletes the job's row blocks and queues and forgets its prepared state on this worker.</summary>
    public async Task ReleaseRowsAsync(IWorkspaceStore workspace, string jobId)
    {
        await DeleteRowsAsync(workspace, jobId);
        Forget(jobId);   // its freed memory stays for the next job until the worker is idle (GpuGate)
    }

    /// <summary>Deletes the job's row blocks and queues from the workspace (its request, graph and failure stay).</summary>
    public static async Task DeleteRowsAsync(IWorkspaceStore workspace, string jobId, CancellationToken cancellation = default)
    {
        await workspace.DeletePrefixAsync(JobKeys.RowsPrefix(jobId), cancellation);
        await workspace.DeletePrefixAsync(JobKeys.QueuesPrefix(jobId), cancellation);
    }

    public static Task WriteFailureAsync(IWorkspaceStore workspace, string jobId, JobFailure failure, CancellationToken cancellation = default) =>
        workspace.WriteAsync(JobKeys.Failure(jobId), (stream, ct) => JsonSerializer.SerializeAsync(stream, failure, cancellationToken: ct), cancellation);

    /// <summary>The failure the orchestrator recorded for the job, or null when it recorded none.</summary>
    public static async Task<JobFailure?> ReadFailureAsync(IWorkspaceStore workspace, string jobId, CancellationToken cancellation = default)
    {
        try
        {
            await using var stream = await workspace.OpenReadAsync(JobKeys.Failure(jobId), cancellation);
            return await JsonSerializer.DeserializeAsync<JobFailure>(stream, cancellationToken: cancellation);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
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
