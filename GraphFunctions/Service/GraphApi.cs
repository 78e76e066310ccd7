namespace GraphFunctions.Service;

using System.Text.Json;
using System.Text.RegularExpressions;
using Attribution.Pipeline;
using GraphFunctions.Configuration;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

/// <summary>
/// POST /generate-graph and the job routes (SPEC 2, Durable adaptation): validate, store the job,
/// start (or find) its orchestration, answer 202 with the status-query payload, or wait and
/// answer as the seed does.
/// </summary>
public sealed partial class GraphApi(ServiceOptions options, ModelHost models, SecretCheck secret, SignedUrlPolicy signedUrls,
    GraphDelivery delivery, IWorkspaceStore workspace)
{
    public const int MaxWaitSeconds = 3600;

    public async Task<IResult> GenerateGraphAsync(HttpRequest request, DurableTaskClient client, CancellationToken cancellation)
    {
        var (begun, refusal) = await ApiRequests.BeginAsync(request, secret, models, modelIdRequired: true, cancellation);
        if (begun is null) return refusal!;
        var (fields, model, prompt) = begun;
        var graphRequest = new GraphRequest
        {
            Prompt = prompt ?? "",
            Slug = fields.Text("slug_identifier", maxLength: 128) ?? NewSlug(),
            BatchSize = fields.WholeNumber("batch_size", 48, 1, 1024),
            MaxNLogits = fields.WholeNumber("max_n_logits", 10, 1, 1000),
            DesiredLogitProb = fields.Number("desired_logit_prob", 0.95, 0, 1),
            NodeThreshold = fields.Number("node_threshold", 0.8, 0, 1),
            EdgeThreshold = fields.Number("edge_threshold", 0.98, 0, 1),
            MaxFeatureNodes = fields.WholeNumber("max_feature_nodes", 10000, 1, 1_000_000),
            UpdateInterval = options.UpdateInterval,
            UserId = fields.Text("user_id", maxLength: 256),
        };
        if (!SlugPattern().IsMatch(graphRequest.Slug))
            fields.Fail("slug_identifier may only use letters, digits, '.', '_' and '-', starting with a letter or digit");
        string? signedUrl = fields.Text("signed_url", maxLength: 8192);
        if (signedUrl is not null && !signedUrls.TryValidate(signedUrl, out _, out string? urlError)) fields.Fail(urlError);
        bool compress = fields.Flag("compress", false);
        bool toBlob = fields.Flag("blob", false);
        if (toBlob && signedUrl is not null) fields.Fail("blob and signed_url cannot both be set: choose one destination");
        if (toBlob && !delivery.BlobConfigured) fields.Fail($"blob delivery is not configured on this server ({SettingNames.GraphBlobContainer} is empty)");
        int waitSeconds = WaitSeconds(request, fields);
        int[]? tokens = prompt is null ? null : ApiRequests.Tokenize(fields, model, prompt, options.TokenLimit);
        if (!fields.Valid) return ApiResults.BadRequest(fields.ErrorMessage);

        var job = new GraphJob(graphRequest.Slug, graphRequest, tokens!, signedUrl, compress, toBlob, options.BatchesPerActivity);
        await StartOrFindAsync(client, job, cancellation);
        if (waitSeconds > 0 && await WaitAsync(client, job.JobId, waitSeconds, cancellation) is { } finished)
            return await ResultOfAsync(finished, cancellation);
        return Accepted(request, job.JobId);
    }

    public async Task<IResult> StatusAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var instance = await client.GetInstanceAsync(id, getInputsAndOutputs: true, cancellation);
        if (instance is null) return ApiResults.Error(StatusCodes.Status404NotFound, $"no graph job '{id}'");
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

    public async Task<IResult> ResultAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var instance = await client.GetInstanceAsync(id, getInputsAndOutputs: true, cancellation);
        if (instance is null) return ApiResults.Error(StatusCodes.Status404NotFound, $"no graph job '{id}'");
        if (!instance.IsCompleted) return Accepted(request, id);
        return await ResultOfAsync(instance, cancellation);
    }

    public async Task<IResult> TerminateAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var instance = await client.GetInstanceAsync(id, cancellation);
        if (instance is null) return ApiResults.Error(StatusCodes.Status404NotFound, $"no graph job '{id}'");
        if (instance.IsCompleted) return ApiResults.Error(StatusCodes.Status409Conflict, $"graph job '{id}' has already finished ({instance.RuntimeStatus})");
        await client.TerminateInstanceAsync(id, request.Query["reason"].ToString(), cancellation);
        return Results.Accepted();
    }

    public async Task<IResult> PurgeAsync(HttpRequest request, DurableTaskClient client, string id, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var instance = await client.GetInstanceAsync(id, cancellation);
        if (instance is null) return ApiResults.Error(StatusCodes.Status404NotFound, $"no graph job '{id}'");
        if (!instance.IsCompleted) return ApiResults.Error(StatusCodes.Status409Conflict, $"graph job '{id}' is still running: terminate it first");
        await client.PurgeInstanceAsync(id, cancellation: cancellation);
        await workspace.DeletePrefixAsync(JobKeys.Prefix(id), cancellation);
        return Results.Ok(new { instancesDeleted = 1 });
    }

    public async Task<IResult> RaiseEventAsync(HttpRequest request, DurableTaskClient client, string id, string eventName, CancellationToken cancellation)
    {
        if (secret.Refusal(request) is { } refused) return refused;
        var instance = await client.GetInstanceAsync(id, cancellation);
        if (instance is null) return ApiResults.Error(StatusCodes.Status404NotFound, $"no graph job '{id}'");
        using var reader = new StreamReader(request.Body);
        string payload = await reader.ReadToEndAsync(cancellation);
        await client.RaiseEventAsync(id, eventName, payload, cancellation);
        return Results.Accepted();
    }

    /// <summary>The same slug while its job runs returns that job; a finished one is replaced by a new run.</summary>
    private async Task StartOrFindAsync(DurableTaskClient client, GraphJob job, CancellationToken cancellation)
    {
        var existing = await client.GetInstanceAsync(job.JobId, cancellation);
        if (existing is { IsCompleted: false }) return;
        if (existing is not null)
        {
            await client.PurgeInstanceAsync(job.JobId, cancellation: cancellation);
            await workspace.DeletePrefixAsync(JobKeys.Prefix(job.JobId), cancellation);
        }
        await JobStates.WriteJobAsync(workspace, job, cancellation);
        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(nameof(GraphOrchestrator), job, new StartOrchestrationOptions(job.JobId), cancellation);
        }
        catch (Exception) when (!cancellation.IsCancellationRequested)
        {
            // A concurrent request with the same slug may have started it first: that run is the answer.
            if (await client.GetInstanceAsync(job.JobId, cancellation) is not { IsCompleted: false }) throw;
        }
    }

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

    /// <summary>The seed's response: the graph itself, or the upload's success/error message.</summary>
    private async Task<IResult> ResultOfAsync(OrchestrationMetadata instance, CancellationToken cancellation)
    {
        if (instance.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
        {
            string reason = instance.FailureDetails?.ErrorMessage ?? instance.RuntimeStatus.ToString();
            return ApiResults.Error(StatusCodes.Status500InternalServerError, $"graph generation did not complete: {reason}");
        }
        var result = instance.ReadOutputAs<GraphJobResult>()!;
        if (result.Delivery is { } delivered)
            return delivered.Success ? Results.Json(new { success = delivered.Message }) : ApiResults.Error(StatusCodes.Status502BadGateway, delivered.Message);
        var graph = await workspace.OpenReadAsync(result.Graph.GraphKey, cancellation);
        return ApiResults.Stream(async body =>
        {
            await using (graph) await graph.CopyToAsync(body, cancellation);
        });
    }

    /// <summary>202 with the status-query payload of Durable's HTTP API, pointing at this app's job routes.</summary>
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
        return Results.Json(payload, ApiResults.Json, statusCode: StatusCodes.Status202Accepted);
    }

    private static int WaitSeconds(HttpRequest request, RequestFields fields)
    {
        if (request.Query.TryGetValue("wait_seconds", out var query))
        {
            if (int.TryParse(query, out int seconds) && seconds is >= 0 and <= MaxWaitSeconds) return seconds;
            fields.Fail($"wait_seconds must be between 0 and {MaxWaitSeconds}, got '{query}'");
            return 0;
        }
        return fields.WholeNumber("wait_seconds", 0, 0, MaxWaitSeconds);
    }

    private static JsonElement? Parse(string? json)
    {
        if (json is null) return null;
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static string NewSlug() => $"graph-{DateTime.UtcNow:yyyyMMddHHmmss}-{Guid.NewGuid():N}"[..40];

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex SlugPattern();
}
