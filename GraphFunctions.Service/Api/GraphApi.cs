namespace GraphFunctions.Api;

using System.Text.Json;
using System.Text.RegularExpressions;
using Attribution.Pipeline;
using Attribution.Requests;
using GraphFunctions.Configuration;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using GraphFunctions.Workers;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

/// <summary>
/// POST /generate-graph and the job routes (docs/api.md): validate, store the job, start (or find)
/// its orchestration, then wait for it as the Neuronpedia webapp expects — it calls synchronously
/// and downloads the graph as soon as it gets an OK answer — and answer as the reference server
/// does. A job still running after the wait, or a client that asks with
/// <c>Prefer: respond-async</c>, gets 202 with Durable's status-query payload.
/// </summary>
public sealed partial class GraphApi(ServiceOptions options, ModelHost models, SecretCheck secret, SignedUrlPolicy signedUrls,
    GraphDelivery delivery, IWorkspaceStore workspace)
{
    /// <summary>Seconds a Durable-aware client should wait before polling the status URL (Durable's own value).</summary>
    public const int RetryAfterSeconds = 10;

    /// <summary>The most an external event may carry: events steer a job, they do not carry data.</summary>
    public const int MaxEventBytes = 64 * 1024;

    /// <summary>Jobs GET /jobs lists, newest first, of at most <see cref="ScannedJobs"/> read.</summary>
    public const int ListedJobs = 50;

    public const int ScannedJobs = 1000;

    private static readonly string[] RunningStatuses =
        [nameof(OrchestrationRuntimeStatus.Pending), nameof(OrchestrationRuntimeStatus.Running), nameof(OrchestrationRuntimeStatus.Suspended)];

    private readonly KeyedLock slugLocks = new();

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
            real: fields.Read) with { UserId = fields.Read(RequestSchema.UserId) };
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

        var job = new GraphJob(graphRequest.Slug, graphRequest, tokens!, signedUrl, compress, toBlob, options.BatchesPerActivity, RunId: Guid.NewGuid().ToString("N"));
        if (await StartOrFindAsync(client, job, cancellation) is { } refused) return refused;
        if (waitSeconds > 0 && await WaitAsync(client, job.JobId, waitSeconds, cancellation) is { } finished)
            return await ResultOfAsync(finished, cancellation);
        return Accepted(request, job.JobId);
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
        ForJobAsync(request, client, id, withInputsAndOutputs: true, instance => Task.FromResult(StatusOf(instance)), cancellation);

    private static IResult StatusOf(OrchestrationMetadata instance)
    {
        var body = new
        {
            name = instance.Name,
            instanceId = instance.InstanceId,
            runtimeStatus = instance.RuntimeStatus.ToString(),
            customStatus = Parse(instance.SerializedCustomStatus),
            output = Parse(instance.SerializedOutput),
            failure = instance.FailureDetails?.ErrorMessage,
            createdTime = instance.CreatedAt,
            lastUpdatedTime = instance.LastUpdatedAt,
        };
        bool finished = instance.IsCompleted;
        return Results.Json(body, ApiResults.Json, statusCode: finished ? StatusCodes.Status200OK : StatusCodes.Status202Accepted);
    }

    /// <summary>
    /// GET /jobs: the newest graph jobs (the viewer's jobs page), at most <see cref="ListedJobs"/>
    /// of the first <see cref="ScannedJobs"/> the task hub returns; retention bounds the rest.
    /// </summary>
    public async Task<IResult> ListAsync(HttpRequest request, DurableTaskClient client, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var query = new OrchestrationQuery { PageSize = ListedJobs, FetchInputsAndOutputs = true };
        var found = new List<OrchestrationMetadata>();
        await foreach (var instance in client.GetAllInstancesAsync(query).WithCancellation(cancellation))
        {
            if (instance.Name == nameof(GraphOrchestrator)) found.Add(instance);
            if (found.Count == ScannedJobs) break;
        }
        var jobs = found.OrderByDescending(i => i.CreatedAt).Take(ListedJobs).Select(i => new
        {
            id = i.InstanceId,
            prompt = i.ReadInputAs<GraphJob>()?.Request.Prompt,
            runtimeStatus = i.RuntimeStatus.ToString(),
            customStatus = Parse(i.SerializedCustomStatus),
            delivered = i.RuntimeStatus == OrchestrationRuntimeStatus.Completed && i.ReadOutputAs<GraphJobResult>()?.Delivery is not null,
            failure = i.FailureDetails?.ErrorMessage,
            createdTime = i.CreatedAt,
            lastUpdatedTime = i.LastUpdatedAt,
        });
        return Results.Json(new { jobs }, ApiResults.Json);
    }

    public Task<IResult> ResultAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: true,
            async instance => instance.IsCompleted ? await ResultOfAsync(instance, cancellation) : Accepted(request, id), cancellation);

    public Task<IResult> TerminateAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: false, async instance =>
        {
            if (instance.IsCompleted) return ApiResults.Error(StatusCodes.Status409Conflict, $"graph job '{id}' has already finished ({instance.RuntimeStatus})");
            await client.TerminateInstanceAsync(id, request.Query["reason"].ToString(), cancellation);
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

    public Task<IResult> RaiseEventAsync(HttpRequest request, DurableTaskClient client, string id, string eventName, CancellationToken cancellation) =>
        ForJobAsync(request, client, id, withInputsAndOutputs: false, _ => RaiseAsync(request, client, id, eventName, cancellation), cancellation);

    private static async Task<IResult> RaiseAsync(HttpRequest request, DurableTaskClient client, string id, string eventName, CancellationToken cancellation)
    {
        if (request.ContentLength > MaxEventBytes) return EventTooLarge();
        var body = new MemoryStream();
        var chunk = new byte[8192];
        for (int read; (read = await request.Body.ReadAsync(chunk, cancellation)) > 0;)
        {
            if (body.Length + read > MaxEventBytes) return EventTooLarge();
            body.Write(chunk, 0, read);
        }
        string payload = System.Text.Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length);
        await client.RaiseEventAsync(id, eventName, payload, cancellation);
        return Results.Accepted();
    }

    /// <summary>
    /// Job identity: one run of a slug at a time. Under the slug's lock (every request on this
    /// host), a running job asked for again with the same work is joined (a client's retry), with
    /// other work it is a 409; a finished one is purged and replaced by a new run with a fresh run
    /// id. A start racing in from another host loses at the provider's instance-id check and is
    /// judged against the winner the same way. Null: the job runs (or ran) and may be waited for.
    /// </summary>
    private async Task<IResult?> StartOrFindAsync(DurableTaskClient client, GraphJob job, CancellationToken cancellation)
    {
        using var held = await slugLocks.EnterAsync(job.JobId, cancellation);
        var existing = await client.GetInstanceAsync(job.JobId, getInputsAndOutputs: true, cancellation);
        if (existing is { IsCompleted: false }) return JoinOrRefuse(existing, job);
        if (existing is not null)
        {
            await client.PurgeInstanceAsync(job.JobId, cancellation: cancellation);
            await workspace.DeletePrefixAsync(JobKeys.Prefix(job.JobId), cancellation);
        }
        await JobStates.WriteJobAsync(workspace, job, cancellation);
        try
        {
            // Dedupe: a provider that sees the slug running keeps that run (the Azure Storage provider drops the duplicate start).
            await client.ScheduleNewOrchestrationInstanceAsync(nameof(GraphOrchestrator), job, new StartOrchestrationOptions(job.JobId) { DedupeStatuses = RunningStatuses }, cancellation);
            return null;
        }
        catch (Exception) when (!cancellation.IsCancellationRequested)
        {
            if (await client.GetInstanceAsync(job.JobId, getInputsAndOutputs: true, cancellation) is not { IsCompleted: false } winner) throw;
            return JoinOrRefuse(winner, job);
        }
    }

    private static IResult? JoinOrRefuse(OrchestrationMetadata running, GraphJob job) =>
        running.ReadInputAs<GraphJob>() is { } runningJob && runningJob.SameWorkAs(job)
            ? null
            : ApiResults.Error(StatusCodes.Status409Conflict,
                $"graph job '{job.JobId}' is already running with a different request; wait for it (GET /jobs/{job.JobId}) or terminate it (POST /jobs/{job.JobId}/terminate)");

    private static async Task<OrchestrationMetadata?> WaitAsync(DurableTaskClient client, string id, int seconds, CancellationToken cancellation)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        try
        {
            return await client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, timeout.Token);
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
            case OrchestrationRuntimeStatus.Failed when instance.FailureDetails?.IsCausedBy<GraphDeliveryFailedException>() == true:
                return ApiResults.Error(StatusCodes.Status502BadGateway, instance.FailureDetails.ErrorMessage);
            case not OrchestrationRuntimeStatus.Completed:
                string reason = instance.FailureDetails?.ErrorMessage ?? instance.RuntimeStatus.ToString();
                return ApiResults.Error(StatusCodes.Status500InternalServerError, $"graph generation did not complete: {reason}");
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

    private static IResult EventTooLarge() =>
        ApiResults.Error(StatusCodes.Status413PayloadTooLarge, $"event payload exceeds {MaxEventBytes} bytes");

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
