namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text.Json.Nodes;
using Attribution.Loading;
using Attribution.Pipeline;
using Attribution.Tests.Support;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using GraphFunctions.Tests.Support;
using static GraphFunctions.Tests.Support.HostJobs;

/// <summary>
/// Jobs on the Azure Storage provider (the one Durable Functions uses in Azure) against Azurite,
/// in real host processes: a host killed with SIGKILL mid-graph and restarted finishes the job
/// from its history with the graph the engine computes directly; a finished job is readable after
/// a restart; a second worker process shares a job's activities and may die mid-job.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class PersistentJobsTests : IDisposable
{
    private static readonly TimeSpan Ready = TimeSpan.FromMinutes(2);
    private readonly TempFolder folder = new("gf-persistent");
    private readonly string taskHub = $"t{Guid.NewGuid():N}"[..24];

    public void Dispose() => folder.Dispose();



    /// <summary>The graph the engine computes directly for the stored job, and the one the job produced, without timestamps.</summary>
    private async Task AssertGraphEqualsTheDirectEngineAsync(HttpClient client, string id)
    {
        using var result = await client.GetAsync($"/jobs/{id}/result");
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        var orchestrated = JsonNode.Parse(await result.Content.ReadAsStringAsync())!;
        var job = await JobStates.ReadJobAsync(new LocalWorkspaceStore(folder["workspace"]), id);
        using var model = await LoadedModel.LoadAsync(new ModelSettings { ModelId = TinyRandomModel.Id }, hub: null);
        var direct = new MemoryStream();
        GraphPipeline.Generate(model, job.Request, direct);
        Assert.Equal(WithoutTimestamp(JsonNode.Parse(direct.ToArray())!).ToJsonString(), WithoutTimestamp(orchestrated).ToJsonString());
    }

    private static JsonNode WithoutTimestamp(JsonNode graph)
    {
        graph["metadata"]!["info"]!.AsObject().Remove("create_time_ms");
        return graph;
    }

    [Fact]
    public async Task A_host_killed_mid_graph_resumes_after_a_restart_and_finished_jobs_outlive_restarts()
    {
        const string id = "crash-resume";
        using (var first = HostProcess.Start(taskHub, folder["workspace"]))
        {
            await first.WaitReadyAsync(Ready);
            using var client = first.Client();
            using var started = await StartAsync(client, Body(id));
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            var midway = await WaitAsync(client, id, s => Visited(s) >= 8 || Finished(s));
            Assert.False(Finished(midway), $"the job must still run when the host dies: {midway}");
            first.KillHard();
        }

        using (var second = HostProcess.Start(taskHub, folder["workspace"]))
        {
            await second.WaitReadyAsync(Ready);
            using var client = second.Client();
            var end = await WaitAsync(client, id, Finished);
            Assert.Equal("Completed", end.GetProperty("runtimeStatus").GetString());
            Assert.Contains(second.Lines, l => l.Contains($"of job {id} in process {second.Id}", StringComparison.Ordinal));   // the restarted host did the rest
            await AssertGraphEqualsTheDirectEngineAsync(client, id);
            second.KillHard();
        }

        using var third = HostProcess.Start(taskHub, folder["workspace"]);
        await third.WaitReadyAsync(Ready);
        using var reader = third.Client();
        Assert.Equal("Completed", (await StatusAsync(reader, id)).GetProperty("runtimeStatus").GetString());
        await AssertGraphEqualsTheDirectEngineAsync(reader, id);
    }

    [Fact]
    public async Task A_second_worker_shares_the_activities_and_may_die_mid_job()
    {
        const string id = "two-workers";
        using var host = HostProcess.Start(taskHub, folder["workspace"]);
        using var worker = HostProcess.Start(taskHub, folder["workspace"], worker: true);
        await Task.WhenAll(host.WaitReadyAsync(Ready), worker.WaitReadyAsync(Ready));
        using var client = host.Client();
        using var started = await StartAsync(client, Body(id));
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);

        bool Ran(HostProcess process) => process.Lines.Any(l => l.Contains($"of job {id} in process {process.Id}", StringComparison.Ordinal));
        var deadline = DateTime.UtcNow + JobLimit;
        while (!(Ran(host) && Ran(worker)) && !Finished(await StatusAsync(client, id)) && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.True(Ran(host) && Ran(worker), "both processes should have run feature rows of the job");
        int byWorker = worker.Lines.Count(l => l.Contains($"of job {id}", StringComparison.Ordinal));
        worker.KillHard();

        var end = await WaitAsync(client, id, Finished);
        Assert.Equal("Completed", end.GetProperty("runtimeStatus").GetString());
        Assert.True(byWorker >= 1);
        await AssertGraphEqualsTheDirectEngineAsync(client, id);
    }
}
