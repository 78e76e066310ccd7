namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text;
using System.Text.Json;
using Attribution.Tests.Support;
using GraphFunctions.Api;
using GraphFunctions.Tests.Support;
using Microsoft.AspNetCore.Builder;

/// <summary>
/// `graphfunctions view` (GraphFileViewer over a GraphFileLibrary) on bad input: every problem a
/// 4xx naming it, a file that is not a graph listed as failed with why, nothing half-written.
/// The pages over it are driven in a browser by ViewerDemoTests.
/// </summary>
public sealed class GraphFileViewerTests : IAsyncLifetime, IDisposable
{
    private const string Graph = """{"metadata": {"prompt": "The cat", "prompt_tokens": ["The", " cat"]}, "nodes": [], "links": []}""";
    private readonly TempFolder folder = new("gf-view-bad");
    private WebApplication app = null!;
    private HttpClient http = null!;

    public async Task InitializeAsync()
    {
        await File.WriteAllTextAsync(folder["cat.json"], Graph);
        await File.WriteAllTextAsync(folder["notes.json"], "not json");
        await File.WriteAllTextAsync(folder["README.md"], "not a graph file");
        app = GraphFileViewer.Create(GraphFileLibrary.Open([folder.Path]), port: 0);
        await app.StartAsync();
        http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
    }

    public async Task DisposeAsync() => await app.DisposeAsync();

    public void Dispose()
    {
        http.Dispose();
        folder.Dispose();
    }

    [Fact]
    public async Task The_folder_lists_its_graphs_and_a_file_that_is_not_one_as_failed_with_why()
    {
        using var listing = JsonDocument.Parse(await http.GetStringAsync("/jobs"));
        var jobs = listing.RootElement.GetProperty("jobs").EnumerateArray().ToDictionary(j => j.GetProperty("id").GetString()!);
        Assert.Equal(["cat", "notes"], jobs.Keys.Order());
        Assert.Equal(("Completed", "The cat"), (jobs["cat"].GetProperty("runtimeStatus").GetString(), jobs["cat"].GetProperty("prompt").GetString()));
        Assert.Equal("Failed", jobs["notes"].GetProperty("runtimeStatus").GetString());
        Assert.StartsWith("not readable as a graph", jobs["notes"].GetProperty("failure").GetString(), StringComparison.Ordinal);
        Assert.Equal(Graph, await http.GetStringAsync("/jobs/cat/result"));
    }

    [Theory]
    [InlineData("GET", "/jobs/dog/result", "", 404, "no graph file named 'dog' is served (graphs: cat, notes)")]
    [InlineData("PUT", "/jobs/dog/annotations", "{}", 404, "no graph file named 'dog'")]
    [InlineData("PUT", "/jobs/cat/annotations", """{"clerps": [["only the id"]]}""", 400, "clerps[0] must be [2 strings]")]
    [InlineData("PUT", "/jobs/cat/annotations", "[1, 2", 400, "")]
    [InlineData("GET", "/features/1/x", "", 400, "layer and index must be non-negative integers")]
    [InlineData("GET", "/features/1/2", "", 404, "started without --features")]
    [InlineData("POST", "/steer", "{}", 404, "not served by graphfunctions view")]
    [InlineData("POST", "/generate-graph", "{}", 404, "making graphs and steering need the local host")]
    public async Task Bad_requests_are_answered_with_what_is_wrong(string method, string path, string body, int status, string fragment)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method != "GET") request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request);
        Assert.Equal((HttpStatusCode)status, response.StatusCode);
        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Contains(fragment, answer.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
        // Nothing was written beside the graphs by a refused request.
        Assert.Equal(["README.md", "cat.json", "notes.json"], Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Annotations_that_cannot_be_written_beside_a_graph_are_a_409_naming_the_file_and_leave_nothing_behind()
    {
        // A read-only folder (the fault): root ignores permissions, so the save is refused by a directory in the way instead.
        Directory.CreateDirectory(folder["cat" + GraphFileLibrary.AnnotationsSuffix]);
        using var response = await http.PutAsync("/jobs/cat/annotations", new StringContent("""{"pinnedIds": ["0_1_1"]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains($"cannot be saved beside {folder["cat.json"]}", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(["README.md", "cat.json", "notes.json"], Directory.GetFiles(folder.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));   // no staging file left
        Assert.True(Directory.Exists(folder["cat" + GraphFileLibrary.AnnotationsSuffix]), "the fault was in place");
    }

    [Fact]
    public void The_command_names_a_path_that_is_neither_a_graph_file_nor_a_folder()
    {
        var (exit, output) = CliProcess.Run("view", folder["missing.json"], folder["README.md"]);
        Assert.Equal(2, exit);
        Assert.Contains($"{folder["missing.json"]} is neither a graph file (*.json, *.json.gz) nor a folder", output, StringComparison.Ordinal);
    }
}
