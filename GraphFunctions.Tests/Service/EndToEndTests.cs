namespace GraphFunctions.Tests.Service;

using System.IO.Compression;
using System.Net;
using System.Text.Json;
using Amazon.S3;
using Amazon.S3.Model;
using Attribution.Tests.Support;
using GraphFunctions.Api;
using GraphFunctions.Orchestration;
using GraphFunctions.Tests.Storage;
using GraphFunctions.Tests.Support;
using GraphFunctions.Workers;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

/// <summary>The local host over real HTTP on 127.0.0.1: the Neuronpedia graph server's requests, the Durable routes and every delivery target.</summary>
[Collection(UsesLocalService.Name)]
public sealed class EndToEndTests(LocalServiceFixture fixture) : IClassFixture<LocalServiceFixture>
{
    private readonly LocalService service = fixture.Service;

    private const string ModelId = "graphfunctions/tiny-gemma-2";


    private static string GraphBody(string slug, string extra = "") =>
        $$"""{"prompt": "1 2 ", "model_id": "{{ModelId}}", "batch_size": 48, "max_n_logits": 10, "desired_logit_prob": 0.95, "node_threshold": 0.8, "edge_threshold": 0.85, "slug_identifier": "{{slug}}", "max_feature_nodes": 5000{{extra}}}""";

    [Fact]
    public async Task Asked_to_respond_async_generate_graph_answers_202_then_status_then_the_graph()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/generate-graph") { Content = LocalService.Json(GraphBody("e2e-count-1-2")) };
        request.Headers.Add("Prefer", "respond-async");
        using var started = await service.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        using var payload = await LocalService.JsonOf(started);
        Assert.Equal(payload.RootElement.GetProperty("statusQueryGetUri").GetString(), started.Headers.Location?.ToString());
        Assert.Equal(TimeSpan.FromSeconds(GraphApi.RetryAfterSeconds), started.Headers.RetryAfter?.Delta);
        Assert.Equal("e2e-count-1-2", payload.RootElement.GetProperty("id").GetString());
        foreach (var uri in new[] { "statusQueryGetUri", "sendEventPostUri", "terminatePostUri", "purgeHistoryDeleteUri" })
            Assert.StartsWith(service.Address.ToString().TrimEnd('/'), payload.RootElement.GetProperty(uri).GetString(), StringComparison.Ordinal);

        var statusUri = payload.RootElement.GetProperty("statusQueryGetUri").GetString()!;
        JsonDocument? status = null;
        for (int i = 0; i < 300; i++)
        {
            using var poll = await service.Http.GetAsync(statusUri);
            status = await LocalService.JsonOf(poll);
            if (poll.StatusCode == HttpStatusCode.OK) break;
            Assert.Equal(HttpStatusCode.Accepted, poll.StatusCode);
            await Task.Delay(100);
        }
        Assert.Equal("Completed", status!.RootElement.GetProperty("runtimeStatus").GetString());
        Assert.Equal("done", status.RootElement.GetProperty("customStatus").GetProperty("phase").GetString());
        // The peak memory estimated before the start: the weights alone are more than 1 MB.
        Assert.InRange(status.RootElement.GetProperty("customStatus").GetProperty("memory_estimate_gb").GetDouble(), 0.001, 24);

        using var result = await service.Http.GetAsync(payload.RootElement.GetProperty("resultGetUri").GetString());
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        using var graph = await LocalService.JsonOf(result);
        GraphSchema.AssertValid(graph);
        Assert.Equal("e2e-count-1-2", graph.RootElement.GetProperty("metadata").GetProperty("slug").GetString());
        Assert.Equal("tiny-gemma-2", graph.RootElement.GetProperty("metadata").GetProperty("scan").GetString());
    }

    [Fact]
    public async Task Wait_mode_returns_the_seed_response_the_graph_itself()
    {
        using var response = await service.Http.PostAsync("/generate-graph?wait_seconds=120", LocalService.Json(GraphBody("e2e-wait")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var graph = await LocalService.JsonOf(response);
        GraphSchema.AssertValid(graph);
        Assert.True(graph.RootElement.GetProperty("links").GetArrayLength() > 0);
        Assert.False(graph.RootElement.GetProperty("metadata").TryGetProperty("warnings", out _), "a model without training_tokens.json never warns");
        // The generator is named truthfully: no URL, since the project has none (the schema makes it optional).
        var generator = graph.RootElement.GetProperty("metadata").GetProperty("info").GetProperty("generator");
        Assert.Equal("GraphFunctions", generator.GetProperty("name").GetString());
        Assert.False(generator.TryGetProperty("url", out _));
    }

    [Fact]
    public async Task The_same_slug_while_running_returns_the_running_job_and_another_request_for_it_is_a_409()
    {
        var gpu = service.Services.GetRequiredService<GpuGate>();
        var held = await gpu.EnterAsync();   // the job cannot progress while the accelerator is held
        try
        {
            using var first = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(GraphBody("e2e-same")));
            using var retry = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(GraphBody("e2e-same")));
            // A request for the same slug with other settings while the first still runs.
            using var other = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(GraphBody("e2e-same").Replace("5000", "7", StringComparison.Ordinal)));
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
            Assert.Equal(HttpStatusCode.Accepted, retry.StatusCode);
            Assert.Equal(HttpStatusCode.Conflict, other.StatusCode);
            using var refusal = await LocalService.JsonOf(other);
            Assert.Contains("graph job 'e2e-same' is already running with a different request", refusal.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
            var running = await service.Durable.GetInstanceAsync("e2e-same", getInputsAndOutputs: true);
            Assert.False(running!.IsCompleted);
            Assert.Equal(5000, running.ReadInputAs<GraphJob>()!.Request.MaxFeatureNodes);
            Assert.Equal(5000, (await JobStates.ReadJobAsync(service.Workspace, "e2e-same")).Request.MaxFeatureNodes);
        }
        finally
        {
            held.Dispose();
        }
        for (int i = 0; i < 300 && (await service.Durable.GetInstanceAsync("e2e-same"))!.IsCompleted is false; i++) await Task.Delay(100);
        Assert.True((await service.Durable.GetInstanceAsync("e2e-same"))!.IsCompleted);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Graph_is_uploaded_to_a_presigned_s3_url(bool compress)
    {
        using var s3 = await Emulators.S3rverAsync();
        string key = $"e2e/{Guid.NewGuid():N}.json";
        string url = await s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = Emulators.S3Bucket, Key = key, Verb = HttpVerb.PUT, Expires = DateTime.UtcNow.AddMinutes(10), Protocol = Protocol.HTTP,
        });
        string slug = compress ? "e2e-s3-gzip" : "e2e-s3";
        using var response = await service.Http.PostAsync("/generate-graph?wait_seconds=120",
            LocalService.Json(GraphBody(slug, $", \"signed_url\": {JsonSerializer.Serialize(url)}, \"compress\": {(compress ? "true" : "false")}")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var answer = await LocalService.JsonOf(response);
        Assert.Equal($"Graph uploaded successfully to url: {url}", answer.RootElement.GetProperty("success").GetString());

        using var stored = await s3.GetObjectAsync(Emulators.S3Bucket, key);
        var body = new MemoryStream();
        await stored.ResponseStream.CopyToAsync(body);
        body.Position = 0;
        Stream json = compress ? new GZipStream(body, CompressionMode.Decompress) : body;
        Assert.Equal(compress ? "gzip" : null, string.IsNullOrEmpty(stored.Headers.ContentEncoding) ? null : stored.Headers.ContentEncoding);
        using var graph = JsonDocument.Parse(json);
        GraphSchema.AssertValid(graph);
        Assert.Equal(slug, graph.RootElement.GetProperty("metadata").GetProperty("slug").GetString());
    }

    [Fact]
    public async Task Graph_is_uploaded_to_azure_blob_storage()
    {
        var blobs = await Emulators.AzuriteAsync();
        using var response = await service.Http.PostAsync("/generate-graph?wait_seconds=120", LocalService.Json(GraphBody("e2e-blob", ", \"blob\": true")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var answer = await LocalService.JsonOf(response);
        Assert.StartsWith("Graph uploaded successfully to url: ", answer.RootElement.GetProperty("success").GetString(), StringComparison.Ordinal);

        var blob = blobs.GetBlobContainerClient("graphs-e2e").GetBlobClient("e2e-blob.json");
        var content = await blob.DownloadContentAsync();
        using var graph = JsonDocument.Parse(content.Value.Content.ToMemory());
        GraphSchema.AssertValid(graph);
    }

    [Fact]
    public async Task Steer_answers_in_the_reference_servers_shape()
    {
        const string prompt = "Fait: Michael Jordan joue au";
        const string body = $$"""
            {"model_id": "{{ModelId}}", "prompt": "{{prompt}}",
             "features": [
               {"layer": 2, "index": 145, "token_active_position": 6, "steer_position": 6, "ablate": true},
               {"layer": 2, "index": 341, "token_active_position": 7, "steer_position": 7, "delta": 350},
               {"layer": 2, "index": 341, "token_active_position": 7, "steer_generated_tokens": true, "delta": 350}],
             "n_tokens": 10, "top_k": 3, "temperature": 0, "freq_penalty": 0, "freeze_attention": false}
            """;
        using var response = await service.Http.PostAsync("/steer", LocalService.Json(body));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = await LocalService.JsonOf(response);
        var root = json.RootElement;
        Assert.Equal(["DEFAULT_GENERATION", "STEERED_GENERATION", "DEFAULT_LOGITS_BY_TOKEN", "STEERED_LOGITS_BY_TOKEN"], root.EnumerateObject().Select(p => p.Name));

        // Generations are the text of every token, the BOS included; one entry per token, the BOS first.
        var model = await service.Services.GetRequiredService<ModelHost>().GetAsync();
        int promptTokens = model.Tokenize(prompt).Length;
        string bos = model.Tokenizer.DecodeToken(model.Tokenizer.BosId);
        foreach (var (generation, logits) in new[] { ("DEFAULT_GENERATION", "DEFAULT_LOGITS_BY_TOKEN"), ("STEERED_GENERATION", "STEERED_LOGITS_BY_TOKEN") })
        {
            string text = root.GetProperty(generation).GetString()!;
            Assert.StartsWith(bos + prompt, text, StringComparison.Ordinal);
            var entries = root.GetProperty(logits).EnumerateArray().ToList();
            Assert.Equal(promptTokens + 10, entries.Count);
            Assert.Equal(bos, entries[0].GetProperty("token").GetString());
            Assert.Equal(text, string.Concat(entries.Select(e => e.GetProperty("token").GetString())));
            for (int i = 0; i < entries.Count; i++)
            {
                var top = entries[i].GetProperty("top_logits").EnumerateArray().ToList();
                Assert.Equal(i < promptTokens - 1 ? 0 : 3, top.Count);
                Assert.All(top, t => Assert.True(t.GetProperty("token").GetString()!.Length > 0 && t.GetProperty("prob").GetDouble() is > 0 and <= 1));
            }
        }
    }

    [Fact]
    public async Task Forward_pass_lists_the_salient_logits()
    {
        using var response = await service.Http.PostAsync("/forward-pass", LocalService.Json("""{"prompt": "1 2 ", "max_n_logits": 4, "desired_logit_prob": 0.5}"""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = await LocalService.JsonOf(response);
        var root = json.RootElement;
        // The reference server's fields only: a model without training_tokens.json adds no warnings.
        Assert.Equal(["prompt", "input_tokens", "salient_logits", "total_salient_tokens", "cumulative_probability"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("1 2 ", root.GetProperty("prompt").GetString());
        Assert.Equal("<bos>", root.GetProperty("input_tokens")[0].GetString());
        var logits = root.GetProperty("salient_logits").EnumerateArray().ToList();
        Assert.InRange(logits.Count, 1, 4);
        Assert.Equal(logits.Count, root.GetProperty("total_salient_tokens").GetInt32());
        Assert.Equal(logits.Sum(l => l.GetProperty("probability").GetDouble()), root.GetProperty("cumulative_probability").GetDouble(), 5);
        Assert.All(logits, l => Assert.True(l.GetProperty("token_id").GetInt32() >= 0 && l.GetProperty("token").ValueKind == JsonValueKind.String));
    }

    [Fact]
    public async Task Check_busy_needs_no_secret_and_reports_the_accelerator()
    {
        using var anonymous = service.Anonymous();
        using var idle = await anonymous.GetAsync("/check-busy");
        Assert.Equal("""{"busy":false}""", await idle.Content.ReadAsStringAsync());
        using (await service.Services.GetRequiredService<GpuGate>().EnterAsync())
        {
            using var busy = await anonymous.GetAsync("/check-busy");
            Assert.Equal("""{"busy":true}""", await busy.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Steering_while_the_accelerator_is_busy_answers_503_server_busy()
    {
        const string body = $$"""{"model_id": "{{ModelId}}", "prompt": "Hi there", "features": [{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": 1, "ablate": true}], "n_tokens": 2}""";
        using (await service.Services.GetRequiredService<GpuGate>().EnterAsync())
        {
            using var refused = await service.Http.PostAsync("/steer", LocalService.Json(body));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            using var error = await LocalService.JsonOf(refused);
            // The webapp shows "GPUs busy" for an error message containing "503".
            Assert.Contains("503", error.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        using var served = await service.Http.PostAsync("/steer", LocalService.Json(body));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task Concurrent_steer_requests_get_a_result_or_503_never_a_crash()
    {
        const string body = $$"""{"model_id": "{{ModelId}}", "prompt": "Once upon a time", "features": [{"layer": 1, "index": 3, "token_active_position": 2, "steer_generated_tokens": true, "delta": 5}], "n_tokens": 40, "temperature": 0.7, "seed": 3}""";
        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => service.Http.PostAsync("/steer", LocalService.Json(body))));
        Assert.All(responses, r => Assert.Contains(r.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }));
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
        var texts = await Task.WhenAll(responses.Where(r => r.StatusCode == HttpStatusCode.OK).Select(r => r.Content.ReadAsStringAsync()));
        Assert.Single(texts.Distinct());   // same seed, same answer
        foreach (var r in responses) r.Dispose();
        using var after = await service.Http.GetAsync("/check-busy");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task OpenApi_describes_every_route_the_host_serves_and_docs_render_it()
    {
        using var anonymous = service.Anonymous();
        using var document = await LocalService.JsonOf(await anonymous.GetAsync("/openapi.json"));
        var described = document.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(verb => $"{verb.Name.ToUpperInvariant()} {p.Name}")).ToHashSet();
        var served = service.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => $"{m} /{e.RoutePattern.RawText!.TrimStart('/')}"))
            .ToHashSet();
        served.Remove("GET /");   // the local host's redirect to the jobs page: the Functions host keeps "/" for itself
        Assert.Equal(served.Order(), described.Order());

        var page = await anonymous.GetStringAsync("/docs");
        Assert.Contains("/generate-graph", page, StringComparison.Ordinal);
        Assert.Contains("slug_identifier", page, StringComparison.Ordinal);
    }
}
