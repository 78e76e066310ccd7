namespace GraphFunctions.Tests.Support;

using System.Text.Json;
using Json.Schema;

/// <summary>Validates graphs against the Neuronpedia graph schema in ../shared/schemas.</summary>
public static class GraphSchema
{
    private static readonly Lazy<JsonSchema> Schema = new(() => JsonSchema.FromFile(SharedPath("schemas", "neuronpedia-graph-schema.json")));

    /// <summary>A file under the repository's sibling folder shared/ (found by walking up from the test binaries).</summary>
    public static string SharedPath(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine([dir.FullName, "shared", .. parts]);
            if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"shared/{string.Join('/', parts)} not found above {AppContext.BaseDirectory}: the tests need ../shared beside the repository");
    }

    /// <summary>Asserts the JSON document is a valid Neuronpedia graph, listing the schema errors otherwise.</summary>
    public static void AssertValid(JsonDocument graph)
    {
        var result = Schema.Value.Evaluate(graph.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return;
        var errors = (result.Details ?? []).Where(d => d.Errors is not null)
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).Take(20);
        Assert.Fail("graph JSON does not match the Neuronpedia schema:\n" + string.Join('\n', errors));
    }
}
