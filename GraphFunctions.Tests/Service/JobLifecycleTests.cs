namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Tests.Support;
using GraphFunctions.Api;
using GraphFunctions.Orchestration;
using GraphFunctions.Tests.Storage;
using GraphFunctions.Tests.Support;
using GraphFunctions.Workers;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Job identity and bounded faults, as a client that retries, resubmits and misbehaves meets
/// them: one run per slug, no state shared between requests, failures named, nothing that grows
/// without bound.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class JobLifecycleTests(LocalServiceFixture fixture) : IClassFixture<LocalServiceFixture>
{
    private const string ModelId = "graphfunctions/tiny-gemma-2";
    private readonly LocalService service = fixture.Service;

    private static string Body(string slug, string prompt = "1 2 3", string extra = "") =>
        $$"""{"prompt": "{{prompt}}", "model_id": "{{ModelId}}", "slug_identifier": "{{slug}}", "max_feature_nodes": 50{{extra}}}""";

    [Fact]
    public async Task Ten_identical_submissions_at_once_make_one_run_and_every_caller_gets_its_graph()
    {
        var responses = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => service.Http.PostAsync("/generate-graph", LocalService.Json(Body("same-ten")))));
        var bodies = new List<string>();
        foreach (var response in responses)
        {
            using (response)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                bodies.Add(await response.Content.ReadAsStringAsync());
            }
        }
        Assert.Single(bodies.Distinct());   // one run: the same graph, timestamps included
        using var graph = JsonDocument.Parse(bodies[0]);
        GraphSchema.AssertValid(graph);
        var instance = await service.Durable.GetInstanceAsync("same-ten");
        Assert.Equal(OrchestrationRuntimeStatus.Completed, instance!.RuntimeStatus);
        Assert.Equal(0, service.Services.GetRequiredService<GraphApi>().HeldSlugLocks);   // nothing kept per slug after the requests
    }

    [Fact]
    public async Task A_finished_slug_submitted_with_a_new_prompt_is_a_new_run_of_the_new_request()
    {
        using var first = await service.Http.PostAsync("/generate-graph", LocalService.Json(Body("resubmitted", "1 2 3")));
        using var firstGraph = await LocalService.JsonOf(first);
        using var second = await service.Http.PostAsync("/generate-graph", LocalService.Json(Body("resubmitted", "4 5 6 7")));
        using var secondGraph = await LocalService.JsonOf(second);
        using var deleted = await service.Http.DeleteAsync("/jobs/resubmitted");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        using var third = await service.Http.PostAsync("/generate-graph", LocalService.Json(Body("resubmitted", "8 9")));
        using var thirdGraph = await LocalService.JsonOf(third);

        string Prompt(JsonDocument graph) => graph.RootElement.GetProperty("metadata").GetProperty("prompt").GetString()!;
        Assert.EndsWith("1 2 3", Prompt(firstGraph), StringComparison.Ordinal);
        Assert.EndsWith("4 5 6 7", Prompt(secondGraph), StringComparison.Ordinal);
        Assert.EndsWith("8 9", Prompt(thirdGraph), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_upload_fails_the_job_and_names_the_reason()
    {
        using var s3 = new ScriptedPutServer(HttpStatusCode.Forbidden);
        using var response = await service.Http.PostAsync("/generate-graph", LocalService.Json(Body("refused-upload", extra: $", \"signed_url\": \"{s3.Url}\"")));
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        using var answer = await LocalService.JsonOf(response);
        string error = answer.RootElement.GetProperty("error").GetString()!;
        Assert.Contains("HTTP 403", error, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Amz-Signature", error, StringComparison.Ordinal);

        using var status = await LocalService.JsonOf(await service.Http.GetAsync("/jobs/refused-upload"));
        Assert.Equal("Failed", status.RootElement.GetProperty("runtimeStatus").GetString());
        Assert.Contains("HTTP 403", status.RootElement.GetProperty("failure").GetString(), StringComparison.Ordinal);
        Assert.Single(s3.Received);   // a 403 is not retried
    }

    [Fact]
    public async Task An_upload_host_that_never_answers_fails_the_job_at_the_deadline_and_frees_the_worker()
    {
        await using var impatient = await LocalService.StartAsync(settings: new Dictionary<string, string?> { ["UPLOAD_TIMEOUT_SECONDS"] = "2" });
        using var hung = new HungServer();
        using var response = await impatient.Http.PostAsync("/generate-graph", LocalService.Json(Body("hung-upload", extra: $", \"signed_url\": \"{hung.Url}\"")));
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        using var answer = await LocalService.JsonOf(response);
        Assert.Contains("no answer within the upload deadline of 2 s", answer.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.True(hung.Accepted >= 1, "the upload reached the hung host");

        using var next = await impatient.Http.PostAsync("/generate-graph", LocalService.Json(Body("after-hung")));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task Terminating_a_job_stops_its_upload_to_a_host_that_never_answers()
    {
        var watch = service.Services.GetRequiredService<JobWatch>();
        int before = watch.Cancellations;
        using var hung = new HungServer();
        using var started = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(Body("hung-terminated", extra: $", \"signed_url\": \"{hung.Url}\"")));
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        for (int i = 0; i < 600 && hung.Accepted == 0; i++) await Task.Delay(100);
        Assert.True(hung.Accepted >= 1, "the upload reached the hung host");

        using var terminate = await service.Http.PostAsync("/jobs/hung-terminated/terminate?reason=stop", null);
        Assert.Equal(HttpStatusCode.Accepted, terminate.StatusCode);
        // The upload activity notices within a second or two (the default deadline would take 300 s).
        for (int i = 0; i < 300 && watch.Cancellations == before; i++) await Task.Delay(100);
        Assert.Equal(before + 1, watch.Cancellations);
    }

    [Fact]
    public async Task The_result_of_a_terminated_job_is_a_410_naming_the_reason()
    {
        using (await service.Services.GetRequiredService<GpuGate>().EnterAsync())
        {
            using var started = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(Body("terminated")));
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            using var terminate = await service.Http.PostAsync("/jobs/terminated/terminate?reason=changed+my+mind", null);
            Assert.Equal(HttpStatusCode.Accepted, terminate.StatusCode);
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            await service.Durable.WaitForInstanceCompletionAsync("terminated", timeout.Token);
        }
        using var result = await service.Http.GetAsync("/jobs/terminated/result");
        Assert.Equal(HttpStatusCode.Gone, result.StatusCode);
        using var answer = await LocalService.JsonOf(result);
        Assert.Contains("was terminated: changed my mind", answer.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Events_are_refused_with_409_saying_graph_jobs_take_none()
    {
        using (await service.Services.GetRequiredService<GpuGate>().EnterAsync())
        {
            using var started = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(Body("evented")));
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            using var small = await service.Http.PostAsync("/jobs/evented/raiseEvent/note", LocalService.Json("\"hello\""));
            Assert.Equal(HttpStatusCode.Conflict, small.StatusCode);
            using var answer = await LocalService.JsonOf(small);
            Assert.Contains("takes no events", answer.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
            using var unknown = await service.Http.PostAsync("/jobs/no-such-job/raiseEvent/note", LocalService.Json("\"hello\""));
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            // A body beyond the server's request limit (30 MB) still gets an answer, not a broken connection.
            using var huge = await service.Http.PostAsync("/jobs/evented/raiseEvent/note", new ByteArrayContent(new byte[35 * 1024 * 1024]));
            Assert.True(huge.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.RequestEntityTooLarge, $"a 35 MB event got {huge.StatusCode}");
        }
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while ((await service.Durable.GetInstanceAsync("evented"))?.IsCompleted != true && DateTime.UtcNow < deadline) await Task.Delay(100);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, (await service.Durable.GetInstanceAsync("evented"))!.RuntimeStatus);
    }

    [Fact]
    public async Task Finished_jobs_are_purged_after_the_retention_and_orphaned_folders_removed()
    {
        using var made = await service.Http.PostAsync("/generate-graph", LocalService.Json(Body("expiring")));
        Assert.Equal(HttpStatusCode.OK, made.StatusCode);
        await JobStates.WriteJobAsync(service.Workspace, (await JobStates.ReadJobAsync(service.Workspace, "expiring")) with { JobId = "orphan" });
        var retention = service.Services.GetRequiredService<JobRetention>();

        Assert.Equal(0, await retention.PurgeExpiredAsync(service.Durable, DateTimeOffset.UtcNow));   // within the retention: kept
        Assert.NotNull(await service.Durable.GetInstanceAsync("expiring"));
        Assert.True(await retention.PurgeExpiredAsync(service.Durable, DateTimeOffset.UtcNow.AddHours(25)) >= 1);
        Assert.Null(await service.Durable.GetInstanceAsync("expiring"));
        Assert.Empty(await service.Workspace.ListAsync(JobKeys.Prefix("expiring")));

        Assert.Equal(1, await retention.RemoveOrphansAsync(service.Durable));
        Assert.Empty(await service.Workspace.ListAsync(JobKeys.Prefix("orphan")));
    }

    [Fact]
    public async Task Annotations_are_saved_with_a_finished_graph_checked_and_purged_with_it()
    {
        using (var made = await service.Http.PostAsync("/generate-graph", LocalService.Json(Body("annotated")))) Assert.Equal(HttpStatusCode.OK, made.StatusCode);
        async Task<(HttpStatusCode Status, JsonDocument Body)> CallAsync(HttpMethod method, string path, string? body = null)
        {
            using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : LocalService.Json(body) };
            using var response = await service.Http.SendAsync(request);
            return (response.StatusCode, await LocalService.JsonOf(response));
        }

        var (status, empty) = await CallAsync(HttpMethod.Get, "/jobs/annotated/annotations");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(0, empty.RootElement.GetProperty("clerps").GetArrayLength());

        const string saved = """{"clerps": [["1_5_2", "counts up"]], "pinnedIds": ["1_5_2", "0_3_1"], "supernodes": [["numbers", "1_5_2", "0_3_1"]]}""";
        (status, _) = await CallAsync(HttpMethod.Put, "/jobs/annotated/annotations", saved);
        Assert.Equal(HttpStatusCode.OK, status);
        var (_, read) = await CallAsync(HttpMethod.Get, "/jobs/annotated/annotations");
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(saved), JsonNode.Parse(read.RootElement.GetRawText())));

        foreach (var (body, message) in new[]
        {
            ("""{"clerps": "x"}""", "clerps must be a list of [2 strings]"),
            ("""{"clerps": [["1_5_2"]]}""", "clerps[0] must be [2 strings]"),
            ("""{"pinnedIds": [3]}""", "pinnedIds[0] must be a string"),
            ("""{"supernodes": [["lonely"]]}""", "supernodes[0] must be a list of 2 or more strings"),
            ($$"""{"clerps": [["1_5_2", "{{new string('a', GraphAnnotations.MaxText + 1)}}"]]}""", "clerps[0] has a text longer than 500 characters"),
            ("[1]", "must be a JSON object"),
        })
        {
            var (refused, answer) = await CallAsync(HttpMethod.Put, "/jobs/annotated/annotations", body);
            Assert.Equal(HttpStatusCode.BadRequest, refused);
            Assert.Contains(message, answer.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        // A refused body leaves what was saved.
        (_, read) = await CallAsync(HttpMethod.Get, "/jobs/annotated/annotations");
        Assert.Equal("counts up", read.RootElement.GetProperty("clerps")[0][1].GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await CallAsync(HttpMethod.Put, "/jobs/no-such-job/annotations", saved)).Status);

        // A job without a graph (still running) has nothing to annotate; a purged job's annotations go with it.
        using (await service.Services.GetRequiredService<GpuGate>().EnterAsync())
        {
            using (var running = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(Body("not-yet")))) Assert.Equal(HttpStatusCode.Accepted, running.StatusCode);
            var (conflict, why) = await CallAsync(HttpMethod.Put, "/jobs/not-yet/annotations", saved);
            Assert.Equal(HttpStatusCode.Conflict, conflict);
            Assert.Contains("has no graph to annotate", why.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        }
        using (var purged = await service.Http.DeleteAsync("/jobs/annotated")) Assert.Equal(HttpStatusCode.OK, purged.StatusCode);
        Assert.False(await service.Workspace.ExistsAsync(JobKeys.Annotations("annotated")));
    }
}
