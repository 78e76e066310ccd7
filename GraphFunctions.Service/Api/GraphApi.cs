namespace GraphFunctions.Api;

using System.Text.Json;
using System.Text.RegularExpressions;
using Attribution.Loading;
using Attribution.Pipeline;
using Attribution.Requests;
using Attribution.Tracing;
using GraphFunctions.Configuration;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using GraphFunctions.Workers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

/// <summary>
/// POST /generate-graph and the job routes (docs/api.md): validate, start (or find) the job's
/// orchestration, then wait for it as the Neuronpedia webapp expects — it calls synchronously
/// and downloads the graph as soon as it gets an OK answer — and answer as the reference server
/// does. A job still running after the wait, or a client that asks with
/// <c>Prefer: respond-async</c>, gets 202 with Durable's status-query payload.
/// </summary>
public sealed partial class GraphApi(ServiceOptions options, ModelHost models, SecretCheck secret, SignedUrlPolicy signedUrls,
    GraphDelivery delivery, IWorkspaceStore workspace)
{
    /// <summary>Seconds a Durable-aware client should wait before polling the status URL (Durable's own value).</summary>
    public const int RetryAfterSeconds = 10;

    /// <summary>Jobs GET /jobs lists, newest first.</summary>
    public const int ListedJobs = 50;

    /// <summary>The most instances one scan of the task hub reads (<see cref="NewestJobsAsync"/>).</summary>
    public const int ScannedJobs = 1000;

    /// <summary>
    /// The service's memory beyond the CLI's for the same graph, added to every job's estimate: ASP.NET,
    /// the Durable worker and its sidecar, the storage clients, row blocks passing through the workspace
    /// (docs/performance.md, "Memory estimate": the service's peak was 0.15–0.29 GB above the CLI's).
    /// </summary>
    public const long ServiceHostBytes = 400_000_000;

    private static readonly string[] RunningStatuses =
        [nameof(OrchestrationRuntimeStatus.Pending), nameof(OrchestrationRuntimeStatus.Running), nameof(OrchestrationRuntimeStatus.Suspended)];

    private readonly KeyedLock slugLocks = new();

    /// <summary>The window (log2 of seconds back from now) that last listed the newest jobs of a large hub; NaN: none.</summary>
    private double listWindow = double.NaN;

    /// <summary>Slugs whose lock is held or awaited now (0 when no request is in flight).</summary>
    public int HeldSlugLocks => slugLocks.HeldKeys;

    public async Task<IResult> GenerateGraphAsync(HttpRequest request, DurableTaskClient client, CancellationToken cancellation)
    {
        var (begun, refusal) = await ApiRequests.BeginAsync(request, secret, models, RequestSchema.ModelId, cancellation);
        if (begun is null) return refusal!;
        var (fields, model, prompt) = begun;
        // An empty slug gets a generated one, as from the reference server. The update interval is the service's setting.
        string slug = fields.Read(RequestSchema.SlugIdentifier) is { Length: > 0 } given ? given : NewSlug();
        var graphRequest = GraphRequest.FromSettings(prompt ?? "", slug,
            whole: field => field == RequestSchema.UpdateInterval ? options.UpdateInterval : fields.Read(field),
            real: fields.Read) with { UserId = fields.Read(RequestSchema.UserId), Targets = Targets(fields, model), HeadLoadings = fields.Read(RequestSchema.HeadLoadings),
                QkTracing = fields.Read(RequestSchema.EnableQkTracing) };
        if (!SlugPattern().IsMatch(graphRequest.Slug))
            fields.Fail("slug_identifier may only use letters, digits, '.', '_' and '-', and may not start with '.'");
        string? signedUrl = fields.Read(RequestSchema.SignedUrl);
        if (signedUrl is not null && !signedUrls.TryValidate(signedUrl, out _, out string? urlError)) fields.Fail(urlError);
        bool compress = fields.Read(RequestSchema.Compress);
        bool toBlob = fields.Read(RequestSchema.Blob);
        if (toBlob && signedUrl is not null) fields.Fail("blob and signed_url cannot both be set: choose one destination");
        if (toBlob && !delivery.BlobConfigured) fields.Fail($"blob delivery is not configured on this server ({SettingNames.GraphBlobContainer} is empty)");
        int waitSeconds = WaitSeconds(request, fields);
        int[]? tokens = prompt is null ? null : ApiRequests.Tokenize(fields, model, prompt, options.TokenLimit);
        if (!fields.Valid) return ApiResults.BadRequest(fields.ErrorMessage);

        // Before any work: a job that cannot fit is refused with its estimate, not run out of memory.
        var estimate = graphRequest.EstimateMemory(model, tokens!.Length).With("service host", ServiceHostBytes);
        if (options.MemoryLimit?.Refusal(estimate) is { } tooLarge) return ApiResults.Error(StatusCodes.Status413PayloadTooLarge, tooLarge);

        var job = new GraphJob(graphRequest.Slug, graphRequest, tokens, signedUrl, compress, toBlob, options.BatchesPerActivity, RunId: Guid.NewGuid().ToString("N"),
            MemoryEstimateGb: Math.Round(estimate.PeakGb, 2));
        try
        {
            if (await StartOrFindAsync(client, job, cancellation) is { } refused) return refused;
        }
        catch (Exception e) when (JobFailure.Of(e) is { Kind: JobFailure.Storage or JobFailure.Disk } fault)
        {
            return ApiResults.Error(fault.StatusCode, $"graph job '{job.JobId}' could not be started: {fault.Message}");
        }
        if (waitSeconds > 0 && await WaitAsync(client, job.JobId, waitSeconds, cancellation) is { } finished)
            return await ResultOfAsync(finished, cancellation);
        return Accepted(request, job.JobId);
    }

    /// <summary>The request's attribution_targets as the served model's token ids; null when absent (or wrong, with the problems noted).</summary>
    private static List<TargetRequest>? Targets(RequestFields fields, LoadedModel model)
    {
        if (!fields.Has(RequestSchema.AttributionTargets)) return null;
        var specs = fields.Read(RequestSchema.AttributionTargets, item => new TargetSpec(item.Read(RequestSchema.TargetToken), item.ReadOptional(RequestSchema.TargetTokenId),
            item.Read(RequestSchema.TargetMinus), item.ReadOptional(RequestSchema.TargetMinusId)));
        if (!fields.Valid) return null;
        var targets = TargetResolution.Resolve(model, specs, RequestSchema.AttributionTargets.Name, out var problems);
        problems.ForEach(fields.Fail);
        return targets;
    }

    /// <summary>What every /jobs/{id} route does first: check the secret, find the job (404 without one), then answer.</summary>
    private async Task<IResult> ForJobAsync(HttpRequest request, DurableTaskClient client, string id, bool withInputsAndOutputs,
        Func<OrchestrationMetadata, Task<IResult>> answer, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var instance = await client.GetInstanceAsync(id, withInputsAndOutputs, cancellation);
        return instance is null ? ApiResults.Error(StatusCodes.Status404NotFound, $"no graph job '{id}'") : await answer(instance);
    }

    public Task<IResult> StatusAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: true, async instance => StatusOf(instance, await FailureOfAsync(instance, cancellation)), cancellation);

    /// <summary>
    /// Why a failed job failed: what the orchestrator recorded with it, else Durable's own details
    /// (null for a job that did not fail).
    /// </summary>
    private async Task<JobFailure?> FailureOfAsync(OrchestrationMetadata instance, CancellationToken cancellation)
    {
        if (instance.RuntimeStatus != OrchestrationRuntimeStatus.Failed) return null;
        return await JobStates.ReadFailureAsync(workspace, instance.InstanceId, cancellation)
            ?? (instance.FailureDetails is { } details ? JobFailure.Of(details) : new JobFailure(JobFailure.Other, "the job failed and recorded no reason"));
    }

    private static IResult StatusOf(OrchestrationMetadata instance, JobFailure? failure)
    {
        var body = new
        {
            name = instance.Name,
            instanceId = instance.InstanceId,
            runtimeStatus = instance.RuntimeStatus.ToString(),
            customStatus = Parse(instance.SerializedCustomStatus),
            output = Parse(instance.SerializedOutput),
            failure = failure?.Message,
            createdTime = instance.CreatedAt,
            lastUpdatedTime = instance.LastUpdatedAt,
        };
        bool finished = instance.IsCompleted;
        return Results.Json(body, ApiResults.Json, statusCode: finished ? StatusCodes.Status200OK : StatusCodes.Status202Accepted);
    }

    /// <summary>GET /jobs: the newest <see cref="ListedJobs"/> graph jobs (the viewer's jobs page).</summary>
    public async Task<IResult> ListAsync(HttpRequest request, DurableTaskClient client, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var newest = await NewestJobsAsync(client, DateTimeOffset.UtcNow, cancellation);
        var failures = new Dictionary<string, JobFailure?>();
        foreach (var i in newest) failures[i.InstanceId] = await FailureOfAsync(i, cancellation);
        var jobs = newest.Select(i => new
        {
            id = i.InstanceId,
            prompt = i.ReadInputAs<GraphJob>()?.Request.Prompt,
            runtimeStatus = i.RuntimeStatus.ToString(),
            customStatus = Parse(i.SerializedCustomStatus),
            delivered = i.RuntimeStatus == OrchestrationRuntimeStatus.Completed && i.ReadOutputAs<GraphJobResult>()?.Delivery is not null,
            failure = failures[i.InstanceId]?.Message,
            createdTime = i.CreatedAt,
            lastUpdatedTime = i.LastUpdatedAt,
        });
        return Results.Json(new { jobs }, ApiResults.Json);
    }

    /// <summary>
    /// The newest graph jobs, newest first. The task hub lists instances in id order, not by time,
    /// and a scan reads at most <see cref="ScannedJobs"/>: so the search looks back from now over
    /// a window, bisected (in log time, 1/16 s to 2^24 s) between one that holds too few jobs and
    /// one too many to scan, until one holds <see cref="ListedJobs"/> or more and can be read whole.
    /// One scan when the hub is small, or when the window found last time still serves (the jobs
    /// page polls every half second while a job runs).
    /// </summary>
    private async Task<List<OrchestrationMetadata>> NewestJobsAsync(DurableTaskClient client, DateTimeOffset now, CancellationToken cancellation)
    {
        DateTimeOffset Since(double log2Seconds) => now - TimeSpan.FromSeconds(Math.Pow(2, log2Seconds));
        double lastWindow = Volatile.Read(ref listWindow);
        if (!double.IsNaN(lastWindow) && await ScanAsync(client, Since(lastWindow), cancellation) is (var recent, true) && recent.Count >= ListedJobs)
            return Newest(recent);
        var (jobs, whole) = await ScanAsync(client, createdFrom: null, cancellation);
        if (whole) return Newest(jobs);
        double tooFew = -4, tooMany = 24;   // log2 of the window in seconds
        List<OrchestrationMetadata>? newestWhole = null;   // the jobs of the widest window read whole that held too few
        while (!whole && tooMany - tooFew > 0.25)
        {
            double middle = (tooFew + tooMany) / 2;
            var (inWindow, read) = await ScanAsync(client, Since(middle), cancellation);
            if (read && inWindow.Count >= ListedJobs)
            {
                (jobs, whole) = (inWindow, true);
                Volatile.Write(ref listWindow, middle);
            }
            else if (read) (tooFew, newestWhole) = (middle, inWindow);
            else tooMany = middle;
        }
        // Without a window of enough jobs that fits a scan (thousands within a fraction of a second), the newest read whole.
        if (!whole && newestWhole is not null) jobs = newestWhole;
        return Newest(jobs);
    }

    private static List<OrchestrationMetadata> Newest(List<OrchestrationMetadata> jobs) => [.. jobs.OrderByDescending(i => i.CreatedAt).Take(ListedJobs)];

    /// <summary>The graph jobs created since <paramref name="createdFrom"/> (null: ever), and whether the scan read them all.</summary>
    private static async Task<(List<OrchestrationMetadata> Jobs, bool Whole)> ScanAsync(DurableTaskClient client, DateTimeOffset? createdFrom,
        CancellationToken cancellation)
    {
        var query = new OrchestrationQuery { CreatedFrom = createdFrom, PageSize = 100, FetchInputsAndOutputs = true };
        var found = new List<OrchestrationMetadata>();
        int read = 0;
        await foreach (var instance in client.GetAllInstancesAsync(query).WithCancellation(cancellation))
        {
            if (++read > ScannedJobs) return (found, false);
            if (instance.Name == nameof(GraphOrchestrator)) found.Add(instance);
        }
        return (found, true);
    }

    public Task<IResult> ResultAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: true,
            async instance => instance.IsCompleted ? await ResultOfAsync(instance, cancellation) : Accepted(request, id), cancellation);

    /// <summary>GET /jobs/{id}/annotations: what was saved with the job's graph (empty lists when nothing was).</summary>
    public Task<IResult> AnnotationsAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: true, async instance =>
        {
            if (GraphServedHere(instance) is { } refused) return refused;
            if (!await workspace.ExistsAsync(JobKeys.Annotations(id), cancellation)) return Results.Json(GraphAnnotations.Empty, ApiResults.Json);
            var saved = await workspace.OpenReadAsync(JobKeys.Annotations(id), cancellation);
            return ApiResults.Stream(async body =>
            {
                await using (saved) await saved.CopyToAsync(body, cancellation);
            });
        }, cancellation);

    /// <summary>
    /// PUT /jobs/{id}/annotations: replaces what is saved with the job's graph (labels, pins,
    /// supernodes); it goes with the job when the job is purged.
    /// </summary>
    public Task<IResult> SaveAnnotationsAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: true, async instance =>
        {
            if (GraphServedHere(instance) is { } refused) return refused;
            var (fields, bodyRefusal) = await ApiRequests.ReadBodyAsync(request, cancellation);
            if (fields is null) return bodyRefusal!;
            if (GraphAnnotations.Parse(fields.Body, out string? problem) is not { } annotations) return ApiResults.BadRequest(problem!);
            await workspace.WriteAsync(JobKeys.Annotations(id), (stream, ct) => JsonSerializer.SerializeAsync(stream, annotations, ApiResults.Json, ct), cancellation);
            return Results.Json(annotations, ApiResults.Json);
        }, cancellation);

    /// <summary>Null when the job finished with its graph here (not delivered elsewhere); else the 409 saying why it has none to annotate.</summary>
    private static IResult? GraphServedHere(OrchestrationMetadata instance) =>
        instance.RuntimeStatus == OrchestrationRuntimeStatus.Completed && instance.ReadOutputAs<GraphJobResult>()?.Delivery is null ? null
            : ApiResults.Error(StatusCodes.Status409Conflict, instance.RuntimeStatus == OrchestrationRuntimeStatus.Completed
                ? $"graph job '{instance.InstanceId}' delivered its graph elsewhere: there is none here to annotate"
                : $"graph job '{instance.InstanceId}' has no graph to annotate ({instance.RuntimeStatus})");

    public Task<IResult> TerminateAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: false, async instance =>
        {
            if (instance.IsCompleted) return ApiResults.Error(StatusCodes.Status409Conflict, $"graph job '{id}' has already finished ({instance.RuntimeStatus})");
            await client.TerminateInstanceAsync(id, request.Query["reason"].ToString(), cancellation);
            // A terminated job keeps no rows (a batch still running releases what it would have added).
            await JobStates.DeleteRowsAsync(workspace, id, cancellation);
            return Results.Accepted();
        }, cancellation);

    public Task<IResult> PurgeAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: false, async instance =>
        {
            if (!instance.IsCompleted) return ApiResults.Error(StatusCodes.Status409Conflict, $"graph job '{id}' is still running: terminate it first");
            await client.PurgeInstanceAsync(id, cancellation: cancellation);
            await workspace.DeletePrefixAsync(JobKeys.Prefix(id), cancellation);
            return Results.Ok(new { instancesDeleted = 1 });
        }, cancellation);

    /// <summary>
    /// POST /jobs/{id}/raiseEvent/{eventName}: refused with 409. The graph orchestration waits for no
    /// event, and events it never reads still travel with every work item of its job: a few hundred
    /// large ones once outgrew the worker's message limit and stopped every graph on the host.
    /// </summary>
    public async Task<IResult> RaiseEventAsync(HttpRequest request, DurableTaskClient client, string id, string eventName, CancellationToken cancellation)
    {
        // A client sends its whole body before it reads the answer: read and drop it (for clients with
        // the secret), or the answer is a broken connection.
        if (secret.Refusal(request) is { } refused) return refused;
        if (!await DrainedAsync(request, cancellation))
            return ApiResults.Error(StatusCodes.Status413PayloadTooLarge, $"event bodies beyond {EventDrainLimit} bytes are not read (and graph jobs take no events)");
        return await ForJobAsync(request, client, id, withInputsAndOutputs: false, _ => Task.FromResult(ApiResults.Error(StatusCodes.Status409Conflict,
            $"graph job '{id}' takes no events: its orchestration waits for none, so event '{eventName}' is refused")), cancellation);
    }

    /// <summary>The most of a refused event's body that is read (and dropped) so that its client gets the answer.</summary>
    public const long EventDrainLimit = 64L * 1024 * 1024;

    /// <summary>Reads the request body to its end and drops it; false when it runs past <see cref="EventDrainLimit"/>.</summary>
    private static async Task<bool> DrainedAsync(HttpRequest request, CancellationToken cancellation)
    {
        if (request.ContentLength > EventDrainLimit) return false;
        // The server's own limit (30 MB in Kestrel) would break the connection first.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = EventDrainLimit;
        var buffer = new byte[64 * 1024];
        long total = 0;
        for (int read; (read = await request.Body.ReadAsync(buffer, cancellation)) > 0;)
            if ((total += read) > EventDrainLimit) return false;
        return true;
    }

    /// <summary>
    /// Starts the job's run, or finds the run of its slug that is already going: null when this
    /// request's work runs (started here, or the same work joined), else the refusal. Hosts share
    /// nothing but Durable storage, so Durable decides which run a slug has: the instance id is the
    /// slug, a start is refused or dropped while a run of it goes, and the run Durable keeps is the
    /// one read back. The job's files are written by that run itself (<see cref="BeginGraphActivity"/>),
    /// so no host can overwrite the request a graph is computed from.
    /// </summary>
    private async Task<IResult?> StartOrFindAsync(DurableTaskClient client, GraphJob job, CancellationToken cancellation)
    {
        using var held = await slugLocks.EnterAsync(job.JobId, cancellation);   // one decision at a time per slug in this process
        var existing = await client.GetInstanceAsync(job.JobId, getInputsAndOutputs: true, cancellation);
        if (existing is { IsCompleted: false }) return JoinOrRefuse(existing, job);
        if (existing is not null) await PurgeFinishedRunAsync(client, job.JobId, cancellation);
        Exception? refused = null;
        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(nameof(GraphOrchestrator), job, new StartOrchestrationOptions(job.JobId) { DedupeStatuses = RunningStatuses }, cancellation);
        }
        catch (Exception e) when (!cancellation.IsCancellationRequested)
        {
            refused = e;   // another host's start of this slug came first, or storage failed: the read-back tells which
        }
        var kept = await KeptRunAsync(client, job.JobId, cancellation)
            ?? throw refused ?? new InvalidOperationException($"graph job '{job.JobId}' was started but never became visible");
        return kept.ReadInputAs<GraphJob>()?.RunId == job.RunId ? null : JoinOrRefuse(kept, job);
    }

    /// <summary>Purges a finished run of the slug before a new one; another host resubmitting it may have purged it first.</summary>
    private static async Task PurgeFinishedRunAsync(DurableTaskClient client, string id, CancellationToken cancellation)
    {
        try
        {
            await client.PurgeInstanceAsync(id, cancellation: cancellation);
        }
        catch (Exception) when (!cancellation.IsCancellationRequested)
        {
            // Already purged, or replaced by another host's new run: the start below and its read-back decide.
        }
    }

    /// <summary>
    /// The run of the slug that Durable stored, once its start is visible (the Azure Storage provider
    /// drops a duplicate start silently); null when none shows within <see cref="StartVisibleWithin"/>.
    /// </summary>
    private static async Task<OrchestrationMetadata?> KeptRunAsync(DurableTaskClient client, string id, CancellationToken cancellation)
    {
        var deadline = DateTime.UtcNow + StartVisibleWithin;
        for (var wait = TimeSpan.FromMilliseconds(20); DateTime.UtcNow < deadline; wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, TimeSpan.FromSeconds(1).Ticks)))
        {
            if (await client.GetInstanceAsync(id, getInputsAndOutputs: true, cancellation) is { } stored && stored.ReadInputAs<GraphJob>() is not null) return stored;
            await Task.Delay(wait, cancellation);
        }
        return null;
    }

    private static readonly TimeSpan StartVisibleWithin = TimeSpan.FromSeconds(30);

    private static IResult? JoinOrRefuse(OrchestrationMetadata running, GraphJob job) =>
        running.ReadInputAs<GraphJob>() is { } runningJob && runningJob.SameWorkAs(job)
            ? null
            : ApiResults.Error(StatusCodes.Status409Conflict,
                $"graph job '{job.JobId}' is already running with a different request; wait for it (GET /jobs/{job.JobId}) or terminate it (POST /jobs/{job.JobId}/terminate)");

    /// <summary>How often a waiting /generate-graph looks at its job (one status read; only while a client waits).</summary>
    public static readonly TimeSpan CompletionPoll = TimeSpan.FromMilliseconds(100);

    private static async Task<OrchestrationMetadata?> WaitAsync(DurableTaskClient client, string id, int seconds, CancellationToken cancellation)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        try
        {
            // Polled here rather than with WaitForInstanceCompletionAsync, whose wait on the Azure Storage
            // provider answered a finished job late (~0.9 s a graph; docs/performance.md, "The host's overhead").
            while (true)
            {
                var instance = await client.GetInstanceAsync(id, getInputsAndOutputs: false, timeout.Token);
                if (instance is null || instance.IsCompleted) return await client.GetInstanceAsync(id, getInputsAndOutputs: true, timeout.Token);
                await Task.Delay(CompletionPoll, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>The Neuronpedia graph server's response: the graph itself, or the upload's success/error message.</summary>
    private async Task<IResult> ResultOfAsync(OrchestrationMetadata instance, CancellationToken cancellation)
    {
        switch (instance.RuntimeStatus)
        {
            case OrchestrationRuntimeStatus.Terminated:
                return ApiResults.Error(StatusCodes.Status410Gone,
                    $"graph job '{instance.InstanceId}' was terminated{(Parse(instance.SerializedOutput) is { } why ? $": {why}" : "")}");
            case OrchestrationRuntimeStatus.Failed:
                var failure = (await FailureOfAsync(instance, cancellation))!;
                return ApiResults.Error(failure.StatusCode,
                    failure.Kind == JobFailure.Other ? $"graph generation did not complete: {failure.Message}" : failure.Message);
            case not OrchestrationRuntimeStatus.Completed:
                return ApiResults.Error(StatusCodes.Status500InternalServerError, $"graph generation did not complete: {instance.RuntimeStatus}");
        }
        var result = instance.ReadOutputAs<GraphJobResult>()!;
        if (result.Delivery is { } delivered) return Results.Json(new { success = delivered.Message });
        var graph = await workspace.OpenReadAsync(result.Graph.GraphKey, cancellation);
        return ApiResults.Stream(async body =>
        {
            await using (graph) await graph.CopyToAsync(body, cancellation);
        });
    }

    /// <summary>
    /// 202 with the status-query payload of Durable's HTTP API, pointing at this app's job routes,
    /// with <c>Location</c> (the status URL) and <c>Retry-After</c> as Durable sets them.
    /// </summary>
    public static IResult Accepted(HttpRequest request, string id)
    {
        string jobs = $"{request.Scheme}://{request.Host}{request.PathBase}/jobs/{Uri.EscapeDataString(id)}";
        var payload = new
        {
            id,
            statusQueryGetUri = jobs,
            sendEventPostUri = $"{jobs}/raiseEvent/{{eventName}}",
            terminatePostUri = $"{jobs}/terminate?reason={{text}}",
            purgeHistoryDeleteUri = jobs,
            resultGetUri = $"{jobs}/result",
        };
        return new AcceptedJob(Results.Json(payload, ApiResults.Json, statusCode: StatusCodes.Status202Accepted), jobs);
    }

    /// <summary>
    /// How long this request waits for its job: 0 when the client prefers an asynchronous answer
    /// (RFC 7240 <c>Prefer: respond-async</c>), else wait_seconds (query or body), else the setting.
    /// </summary>
    private int WaitSeconds(HttpRequest request, RequestFields fields)
    {
        var field = RequestSchema.WaitSeconds;
        if (request.Query.TryGetValue(field.Name, out var query))
        {
            if (int.TryParse(query, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int seconds)
                && seconds >= field.Minimum && seconds <= field.Maximum) return seconds;
            fields.Fail($"{field.Name} must be between {field.Minimum} and {field.Maximum}, got '{query}'");
            return 0;
        }
        if (fields.ReadOptional(field) is int body) return body;
        return PrefersAsync(request) ? 0 : options.GraphWaitSeconds;
    }

    private static bool PrefersAsync(HttpRequest request) =>
        request.Headers["Prefer"].SelectMany(v => (v ?? "").Split(',')).Any(p => p.Trim().Equals("respond-async", StringComparison.OrdinalIgnoreCase));

    private sealed class AcceptedJob(IResult payload, string statusUri) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.Location = statusUri;
            httpContext.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return payload.ExecuteAsync(httpContext);
        }
    }

    /// <summary>A serialized Durable value as JSON; text that is not JSON (a failed run's output may be) as a string.</summary>
    private static JsonElement? Parse(string? json)
    {
        if (json is null) return null;
        try
        {
            using var document = JsonDocument.Parse(json);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(json);
        }
    }

    private static string NewSlug() => $"graph-{DateTime.UtcNow:yyyyMMddHHmmss}-{Guid.NewGuid():N}"[..40];

    // \z, not $: $ also matches before a final newline. The webapp makes slugs of [A-Za-z0-9_-] from the prompt.
    [GeneratedRegex(@"\A[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\z")]
    private static partial Regex SlugPattern();
}
