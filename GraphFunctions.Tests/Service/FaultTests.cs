namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text.Json;
using Attribution.Tests.Support;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using GraphFunctions.Workers;
using Microsoft.DurableTask;
using GraphFunctions.Tests.Storage;
using GraphFunctions.Tests.Support;
using static GraphFunctions.Tests.Support.HostJobs;

/// <summary>
/// Faults injected for real against host processes on the Azure Storage provider (Azurite), the
/// provider Durable Functions uses in Azure: a flood of events at a running job, an upload that
/// fails, a terminate mid-job. None may freeze the host, strand a job or lose its reason.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class FaultTests : IDisposable
{
    private static readonly TimeSpan Ready = TimeSpan.FromMinutes(2);
    private readonly TempFolder folder = new("gf-faults");
    private readonly string taskHub = $"f{Guid.NewGuid():N}"[..24];

    public void Dispose() => folder.Dispose();


    private string[] RowFiles(string id) =>
        Directory.Exists(folder[$"workspace/jobs/{id}/rows"]) ? Directory.GetFiles(folder[$"workspace/jobs/{id}/rows"]) : [];

    [Fact]
    public async Task A_flood_of_large_events_is_refused_and_every_graph_completes()
    {
        using var host = HostProcess.Start(taskHub, folder["workspace"]);
        await host.WaitReadyAsync(Ready);
        using var client = host.Client();
        using (var started = await StartAsync(client, Body("flooded"))) Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        await WaitAsync(client, "flooded", s => Visited(s) >= 4 || Finished(s));

        // 200 events of 64 KiB, 16 at a time: what once poisoned the job's work items.
        string payload = JsonSerializer.Serialize(new string('x', 64 * 1024 - 2));
        var answers = new List<HttpStatusCode>();
        foreach (var wave in Enumerable.Range(0, 200).Chunk(16))
        {
            var sent = wave.Select(async i =>
            {
                using var response = await client.PostAsync($"/jobs/flooded/raiseEvent/e{i}", HostProcess.Json(payload));
                return response.StatusCode;
            });
            answers.AddRange(await Task.WhenAll(sent));
        }
        using (var bystander = await StartAsync(client, Body("bystander"))) Assert.Equal(HttpStatusCode.Accepted, bystander.StatusCode);

        Assert.All(answers, status => Assert.Equal(HttpStatusCode.Conflict, status));
        Assert.Equal("Completed", RuntimeStatus(await WaitAsync(client, "bystander", Finished)));
        Assert.Equal("Completed", RuntimeStatus(await WaitAsync(client, "flooded", Finished)));
    }

    [Fact]
    public async Task Two_hosts_racing_different_requests_for_one_slug_agree_on_one_run()
    {
        using var first = HostProcess.Start(taskHub, folder["workspace"]);
        using var second = HostProcess.Start(taskHub, folder["workspace"]);
        await Task.WhenAll(first.WaitReadyAsync(Ready), second.WaitReadyAsync(Ready));
        using var a = first.Client();
        using var b = second.Client();
        const string slug = "raced";
        // A new slug, then the finished slug resubmitted: both hosts at once, each with its own prompt.
        foreach (var (promptA, promptB) in new[] { ("The cat sat on the mat", "A dog ran in the park"), ("Birds sing in the morning", "Rain fell on the town") })
        {
            static string Small(string prompt) =>
                $$"""{"prompt": "{{prompt}}", "model_id": "graphfunctions/tiny-gemma-2", "slug_identifier": "{{slug}}", "batch_size": 4, "max_feature_nodes": 40}""";
            var raced = await Task.WhenAll(StartAsync(a, Small(promptA)), StartAsync(b, Small(promptB)));
            var codes = raced.Select(r => r.StatusCode).ToArray();
            foreach (var response in raced) response.Dispose();

            Assert.Equal([HttpStatusCode.Accepted, HttpStatusCode.Conflict], codes.Order());
            string won = codes[0] == HttpStatusCode.Accepted ? promptA : promptB;
            Assert.Equal("Completed", RuntimeStatus(await WaitAsync(a, slug, Finished)));
            using var graph = JsonDocument.Parse(await a.GetStringAsync($"/jobs/{slug}/result"));
            using var listed = JsonDocument.Parse(await b.GetStringAsync("/jobs"));
            using var stored = JsonDocument.Parse(await File.ReadAllTextAsync(folder[$"workspace/jobs/{slug}/job.json"]));
            Assert.EndsWith(won, graph.RootElement.GetProperty("metadata").GetProperty("prompt").GetString(), StringComparison.Ordinal);   // what was computed (after the BOS)
            Assert.Equal(won, listed.RootElement.GetProperty("jobs").EnumerateArray().Single(j => j.GetProperty("id").GetString() == slug).GetProperty("prompt").GetString());   // what Durable stored
            Assert.Equal(won, stored.RootElement.GetProperty("Request").GetProperty("Prompt").GetString());                 // what the workspace holds
        }
    }

    [Fact]
    public async Task A_failed_upload_answers_502_with_its_reason_and_the_job_keeps_no_rows()
    {
        using var s3 = new ScriptedPutServer(Enumerable.Repeat(HttpStatusCode.Forbidden, 20).ToArray());
        using var host = HostProcess.Start(taskHub, folder["workspace"], settings: new Dictionary<string, string> { ["SIGNED_URL_ALLOWED_HOSTS"] = "127.0.0.1" });
        await host.WaitReadyAsync(Ready);
        using var client = host.Client();

        using var response = await client.PostAsync("/generate-graph?wait_seconds=200", HostProcess.Json(Body("unuploaded", $", \"signed_url\": \"{s3.Url}\"")));
        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        string error = answer.RootElement.GetProperty("error").GetString()!;
        Assert.Contains(GraphDelivery.UploadFailed, error, StringComparison.Ordinal);
        Assert.NotEmpty(s3.Received);   // the upload was tried, and refused
        var status = await StatusAsync(client, "unuploaded");
        Assert.Equal("Failed", RuntimeStatus(status));
        Assert.Equal(error, status.GetProperty("failure").GetString());
        using var listed = JsonDocument.Parse(await client.GetStringAsync("/jobs"));
        Assert.Contains(listed.RootElement.GetProperty("jobs").EnumerateArray(), j => j.GetProperty("id").GetString() == "unuploaded" && j.GetProperty("failure").GetString() == error);
        Assert.Empty(RowFiles("unuploaded"));
    }

    [Fact]
    public async Task Uploads_to_a_hung_host_never_take_the_last_activity_slot()
    {
        // Two activity slots, so one delivery at a time: without that limit two hung uploads hold both for 300 s.
        using var hung = new HungServer();
        using var host = HostProcess.Start(taskHub, folder["workspace"], settings: new Dictionary<string, string>
        {
            ["DURABLE_ACTIVITY_SLOTS"] = "2", ["SIGNED_URL_ALLOWED_HOSTS"] = "127.0.0.1", ["BATCHES_PER_ACTIVITY"] = "8",
        });
        await host.WaitReadyAsync(Ready);
        using var client = host.Client();
        string[] stuck = ["hung-first", "hung-second"];
        foreach (string slug in stuck)
            using (var started = await StartAsync(client, Body(slug, $", \"signed_url\": \"{hung.Url}\""))) Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);

        // One upload hangs in its slot; the other job waits on a durable timer for a delivery slot.
        static bool WaitingForSlot(JsonElement s) => s.GetProperty("customStatus") is { ValueKind: JsonValueKind.Object } progress
            && progress.GetProperty("phase").GetString() == GraphOrchestrator.WaitingForDeliverySlotPhase;
        string? waiting = null;
        for (var deadline = DateTime.UtcNow + JobLimit; waiting is null && DateTime.UtcNow < deadline; await Task.Delay(250))
            foreach (string slug in stuck)
                if (WaitingForSlot(await StatusAsync(client, slug))) waiting = slug;
        Assert.NotNull(waiting);
        Assert.Equal(1, hung.Accepted);

        // Graph work still gets the other slot: a plain job completes long before the hung upload's 300 s deadline.
        using (var plain = await StartAsync(client, Body("beside-hung-uploads"))) Assert.Equal(HttpStatusCode.Accepted, plain.StatusCode);
        var done = await WaitAsync(client, "beside-hung-uploads", Finished);
        Assert.Equal("Completed", RuntimeStatus(done));
        Assert.Equal(1, hung.Accepted);
        foreach (string slug in stuck) (await client.PostAsync($"/jobs/{slug}/terminate?reason=test+over", null)).Dispose();
    }

    [Fact]
    public async Task Terminate_mid_job_stops_the_scheduled_slices_and_frees_the_rows()
    {
        const string id = "terminated";
        using var host = HostProcess.Start(taskHub, folder["workspace"], settings: new Dictionary<string, string> { ["BATCHES_PER_ACTIVITY"] = "1" });
        await host.WaitReadyAsync(Ready);
        using var client = host.Client();
        using (var started = await StartAsync(client, Body(id))) Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var midway = await WaitAsync(client, id, s => Visited(s) >= 8 || Finished(s));
        Assert.False(Finished(midway), $"the job must still run when it is terminated: {midway}");

        using (var terminate = await client.PostAsync($"/jobs/{id}/terminate?reason=enough", null)) Assert.Equal(HttpStatusCode.Accepted, terminate.StatusCode);
        Assert.Equal("Terminated", RuntimeStatus(await WaitAsync(client, id, Finished)));
        int SlicesRun() => host.Lines.Count(l => l.Contains($"Feature rows", StringComparison.Ordinal) && l.Contains($"of job {id} in process", StringComparison.Ordinal));
        int atTermination = SlicesRun();
        await Task.Delay(TimeSpan.FromSeconds(8));   // the 60 slices were scheduled; on a single GPU slot they run ~0.1 s each

        // At most the slice that held the accelerator when the job was terminated still runs.
        Assert.True(SlicesRun() - atTermination <= 1, $"{SlicesRun() - atTermination} slices started after the job was terminated ({atTermination} before)");
        Assert.True(SlicesRun() < 60, "every slice ran");
        Assert.Empty(RowFiles(id));
    }

    /// <summary>Feature rows that wait, once started, until the test opens the gate: so an activity can finish inside an outage.</summary>
    public sealed class GatedFeatureRows(JobStates states, GpuGate gpu, IWorkspaceStore workspace, ModelHost models, JobWatch watch)
        : FeatureRowsActivity(states, gpu, workspace, models, watch)
    {
        public static readonly TaskCompletionSource Gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private static int started;

        public static int Started => Volatile.Read(ref started);

        public override async Task<RowBlock> RunAsync(TaskActivityContext context, FeatureBatch input)
        {
            Interlocked.Increment(ref started);
            await Gate.Task;
            return await base.RunAsync(context, input);
        }
    }

    [Fact]
    public async Task Activities_that_finish_while_storage_is_down_run_again_once_it_is_back()
    {
        // In process on the Azure Storage provider, with every feature-rows activity held until Azurite is down.
        await using var service = await LocalService.StartAsync(
            tasks: registry => GraphOrchestrationTests.RegisterReplacing<FeatureRowsActivity, GatedFeatureRows>(registry),
            settings: new Dictionary<string, string?> { ["DURABLE_STORAGE"] = "azure-storage", ["DURABLE_TASK_HUB"] = taskHub, ["BATCHES_PER_ACTIVITY"] = "4" });
        int forgottenBefore = GraphFunctions.LocalHost.SidecarActivityRepairs.Forgotten;
        using (var started = await service.Http.PostAsync("/generate-graph?wait_seconds=0", LocalService.Json(Body("held")))) Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        for (var deadline = DateTime.UtcNow + JobLimit; GatedFeatureRows.Started == 0 && DateTime.UtcNow < deadline;) await Task.Delay(100);
        Assert.True(GatedFeatureRows.Started > 0, "no feature-rows activity started");

        await using (await AzuriteOutage.BeginAsync())
        {
            GatedFeatureRows.Gate.SetResult();   // the held activities finish now, and their results cannot be stored
            await Task.Delay(TimeSpan.FromSeconds(60));   // longer than the storage client's retries
        }
        // The fault happened: completing (and then abandoning) a work item failed, and the item was let go.
        Assert.True(GraphFunctions.LocalHost.SidecarActivityRepairs.Forgotten > forgottenBefore, "no activity work item failed to settle during the outage");
        using var timeout = new CancellationTokenSource(JobLimit);
        var finished = await service.Durable.WaitForInstanceCompletionAsync("held", timeout.Token);
        Assert.Equal(Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed, finished.RuntimeStatus);
    }

    [Fact]
    public void The_pinned_storage_provider_has_the_table_the_outage_repair_needs()
    {
        // Upgrading DurableTask.AzureStorage must keep (or make unnecessary) SidecarActivityRepairs.
        Assert.True(GraphFunctions.LocalHost.SidecarActivityRepairs.Available);
    }

    [Fact]
    public async Task A_storage_outage_mid_graph_is_ridden_out_and_the_job_completes()
    {
        const string id = "outage";
        using var host = HostProcess.Start(taskHub, folder["workspace"]);
        await host.WaitReadyAsync(Ready);
        using var client = host.Client();
        using (var started = await StartAsync(client, Body(id))) Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        await WaitAsync(client, id, s => Visited(s) >= 8 || Finished(s));

        await using (var outage = await AzuriteOutage.BeginAsync())
        {
            await Task.Delay(TimeSpan.FromSeconds(5));
            using var during = await StartAsync(client, Body("during-outage"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
            await Task.Delay(TimeSpan.FromSeconds(55));
        }

        try
        {
            var end = await WaitAsync(client, id, Finished);
            Assert.Equal("Completed", RuntimeStatus(end));
        }
        finally
        {
            // What the host said through the outage, for a person reading a failure.
            File.WriteAllLines(Viewer.Browser.ArtifactPath("storage-outage-host.log"), host.Lines);
        }
    }
}
