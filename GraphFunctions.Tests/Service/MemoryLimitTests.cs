namespace GraphFunctions.Tests.Service;

using System.Net;
using GraphFunctions.Tests.Support;

/// <summary>A graph whose estimated peak memory is above MEMORY_LIMIT_GB is refused before any work, naming the estimate and the limit.</summary>
public sealed class MemoryLimitTests(MemoryLimitTests.Fixture fixture) : IClassFixture<MemoryLimitTests.Fixture>
{
    /// <summary>A limit below what the tiny model's weights and runtime alone are estimated to need.</summary>
    public sealed class Fixture : LocalServiceFixture
    {
        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["MEMORY_LIMIT_GB"] = "0.001" };
    }

    private readonly LocalService service = fixture.Service;

    [Fact]
    public async Task A_graph_that_cannot_fit_is_refused_with_its_estimate_and_no_job_is_started()
    {
        const string slug = "too-large-for-memory";
        using var response = await service.Http.PostAsync("/generate-graph",
            LocalService.Json($$"""{"prompt": "1 2 3", "model_id": "{{TinyRandomModelId}}", "slug_identifier": "{{slug}}"}"""));
        string message = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("this graph would need about", message, StringComparison.Ordinal);
        Assert.Contains("weights", message, StringComparison.Ordinal);
        Assert.Contains("more than the 0.001 GB limit (MEMORY_LIMIT_GB)", message, StringComparison.Ordinal);

        // Before any work: no orchestration, nothing in the workspace.
        Assert.Null(await service.Durable.GetInstanceAsync(slug));
        using var status = await service.Http.GetAsync($"/jobs/{slug}");
        Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
        Assert.Empty(await service.Workspace.ListAsync(GraphFunctions.Orchestration.JobKeys.Prefix(slug)));
    }

    private const string TinyRandomModelId = Attribution.Loading.TinyRandomModel.Id;
}
