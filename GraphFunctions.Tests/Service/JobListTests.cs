namespace GraphFunctions.Tests.Service;

using System.Net;
using GraphFunctions.Api;
using GraphFunctions.Orchestration;
using GraphFunctions.Tests.Support;
using Microsoft.DurableTask;

/// <summary>GET /jobs lists the newest graph jobs of a task hub, however many it holds.</summary>
[Collection(UsesLocalService.Name)]
public sealed class JobListTests
{
    [Fact]
    public async Task The_newest_jobs_are_listed_when_the_hub_holds_more_than_a_scan_reads()
    {
        // Instant stand-ins for the graph orchestration: only their ids and creation times matter here.
        // On the Azure Storage provider (Azurite), which lists instances in id order.
        await using var service = await LocalService.StartAsync(tasks: registry => registry.AddOrchestrator<InstantJob>(nameof(GraphOrchestrator)),
            settings: new Dictionary<string, string?> { ["DURABLE_STORAGE"] = "azure-storage", ["DURABLE_TASK_HUB"] = $"l{Guid.NewGuid():N}"[..24] });
        // More older jobs than one scan reads, then a few newer ones whose ids sort last.
        int older = GraphApi.ScannedJobs + 100;
        foreach (var chunk in Enumerable.Range(0, older).Chunk(50))
            await Task.WhenAll(chunk.Select(i => service.Durable.ScheduleNewOrchestrationInstanceAsync(nameof(GraphOrchestrator),
                new StartOrchestrationOptions($"old-{i:D5}"))));
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        string[] newest = [.. Enumerable.Range(0, 10).Select(i => $"zz-new-{i:D2}")];
        foreach (string id in newest)
            await service.Durable.ScheduleNewOrchestrationInstanceAsync(nameof(GraphOrchestrator), new StartOrchestrationOptions(id));

        using var response = await service.Http.GetAsync("/jobs");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var listed = await LocalService.JsonOf(response);
        var ids = listed.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetString()!).ToList();
        Assert.Equal(GraphApi.ListedJobs, ids.Count);
        Assert.Equal(newest.Order(), ids.Take(newest.Length).Order());
        Assert.All(ids.Skip(newest.Length), id => Assert.StartsWith("old-", id, StringComparison.Ordinal));
        var created = listed.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("createdTime").GetDateTimeOffset()).ToList();
        Assert.Equal(created.OrderDescending(), created);

        // Again, from the window the first listing found (what the jobs page's polling meets), with one more job.
        await service.Durable.ScheduleNewOrchestrationInstanceAsync(nameof(GraphOrchestrator), new StartOrchestrationOptions("zz-newer"));
        using var again = await LocalService.JsonOf(await service.Http.GetAsync("/jobs"));
        var listedAgain = again.RootElement.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetString()!).ToList();
        Assert.Equal(["zz-newer", .. ids.Take(GraphApi.ListedJobs - 1)], listedAgain);
    }

    private sealed class InstantJob : TaskOrchestrator<object?, object?>
    {
        public override Task<object?> RunAsync(TaskOrchestrationContext context, object? input) => Task.FromResult<object?>(null);
    }
}
