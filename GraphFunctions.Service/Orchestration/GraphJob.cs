namespace GraphFunctions.Orchestration;

using System.Text.Json.Serialization;
using Attribution.Pipeline;
using Attribution.Tracing;

/// <summary>
/// One graph job: the orchestration's input. The HTTP starter also stores it in the workspace.
/// Each feature-rows activity computes <see cref="BatchesPerActivity"/> backward-pass batches.
/// <see cref="RunId"/> names this run of the slug: a resubmitted slug is a new run, and nothing
/// a worker prepared for an earlier run may serve it.
/// </summary>
public sealed record GraphJob(string JobId, GraphRequest Request, int[] Tokens, string? SignedUrl, bool Compress, bool ToBlob, int BatchesPerActivity = 1,
    string RunId = "", double? MemoryEstimateGb = null)
{
    public bool Delivers => SignedUrl is not null || ToBlob;

    /// <summary>The job's attribution plan, once preparing it found <paramref name="activeFeatures"/>; the orchestrator and activities make the same.</summary>
    public AttributionPlan Plan(int activeFeatures) =>
        AttributionPlan.For(activeFeatures, Request.Attribution);

    /// <summary>Whether <paramref name="other"/> asks for the same graph delivered the same way (a client's retry).</summary>
    public bool SameWorkAs(GraphJob other) =>
        JobId == other.JobId && Request == other.Request && Tokens.AsSpan().SequenceEqual(other.Tokens)
        && SignedUrl == other.SignedUrl && Compress == other.Compress && ToBlob == other.ToBlob;
}

/// <summary>Where a job keeps its artifacts in the workspace store.</summary>
public static class JobKeys
{
    /// <summary>Where every job's folder lives.</summary>
    public const string AllJobs = "jobs/";

    public static string Prefix(string jobId) => $"{AllJobs}{jobId}/";
    public static string Job(string jobId) => $"jobs/{jobId}/job.json";
    public static string Graph(string jobId) => $"jobs/{jobId}/graph.json";
    public static string Rows(string jobId, string block) => $"jobs/{jobId}/rows/{block}";
    public static string RowsPrefix(string jobId) => $"jobs/{jobId}/rows/";
    public static string Queue(string jobId, int round) => $"jobs/{jobId}/queues/{round}";
    public static string QueuesPrefix(string jobId) => $"jobs/{jobId}/queues/";
    public static string Failure(string jobId) => $"jobs/{jobId}/failure.json";
    public static string Annotations(string jobId) => $"jobs/{jobId}/annotations.json";
    public const string LogitBlock = "logits";
}

/// <summary>
/// What beginning a job found: the sizes that drive the orchestration (its rounds: <see cref="AttributionPlan"/>),
/// and the first round's queue when features are ranked (null: every feature, node order).
/// </summary>
public sealed record PreparedGraph(int ActiveFeatures, int Logits, int RowLength, RankedFeatures? FirstQueue);

/// <summary>A stored block of attribution rows; <see cref="OutOfMemory"/> when the batch did not fit and nothing was stored.</summary>
public sealed record RowBlock(string Block, int Rows, bool OutOfMemory = false);

/// <summary>Which features to rank next: the job, the feature blocks so far, how many to queue, the round.</summary>
public sealed record RankInput(string JobId, IReadOnlyList<string> Blocks, int Count, int Round);

/// <summary>A stored queue of feature nodes (null key: every feature in node order).</summary>
public sealed record RankedFeatures(string? Key, int Count);

/// <summary>
/// Rows for queue entries [Offset, Offset + Count), computed batch_size at a time and stored as
/// <see cref="Block"/>. A batch split below batch_size after running out of memory is
/// <see cref="Shrunk"/>: it runs with a frozen forward pass as small as itself.
/// </summary>
public sealed record FeatureBatch(string JobId, string? QueueKey, int Offset, int Count, string Block, bool Shrunk = false);

public sealed record AssembleInput(string JobId, IReadOnlyList<string> Blocks);

/// <summary>A failed job and why, for the activity that records it.</summary>
public sealed record FailedJob(string JobId, JobFailure Failure);

/// <summary>The finished graph in the workspace, with what a caller may want to know about it.</summary>
public sealed record GraphOutput(string GraphKey, int ActiveFeatures, int SelectedFeatures, int KeptNodes, int Logits, double ReplacementScore, double CompletenessScore);

/// <summary>
/// The upload's outcome, worded as the Neuronpedia graph server's responses; <see cref="Deferred"/>:
/// not tried, every delivery slot of the worker was taken (<see cref="Workers.DeliverySlots"/>).
/// </summary>
public sealed record DeliveryOutcome(bool Success, string Message, string? Location, bool Deferred = false)
{
    public static DeliveryOutcome NoFreeSlot(int slots) => new(false, $"all {slots} delivery slots of the worker are taken", null, Deferred: true);
}

public sealed record GraphJobResult(GraphOutput Graph, DeliveryOutcome? Delivery);

/// <summary>The custom status after every round (docs/api.md): phase, features visited / to visit, elapsed seconds, the peak memory estimated before the start.</summary>
public sealed record GraphJobStatus(
    [property: JsonPropertyName("phase")] string Phase,
    [property: JsonPropertyName("features_visited")] int FeaturesVisited,
    [property: JsonPropertyName("features_to_visit")] int FeaturesToVisit,
    [property: JsonPropertyName("elapsed_s")] double ElapsedSeconds,
    [property: JsonPropertyName("memory_estimate_gb")] double? MemoryEstimateGb);
