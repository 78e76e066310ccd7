namespace Attribution.Tests.Support;

using System.Text.Json;
using Json.Schema;

/// <summary>
/// Validates graphs as the Neuronpedia webapp will read them: against its graph schema (the
/// repository's copy, docs/schemas/neuronpedia-graph-schema.json, identical to the webapp's
/// app/api/graph/graph-schema.json) and with unique node ids, which the webapp keys its maps by.
/// </summary>
public static class GraphSchema
{
    private static readonly Lazy<JsonSchema> Schema = new(() =>
        JsonSchema.FromFile(Path.Combine(AppContext.BaseDirectory, "schemas", "neuronpedia-graph-schema.json")));

    /// <summary>Asserts the JSON document is a valid Neuronpedia graph, listing the schema errors otherwise.</summary>
    public static void AssertValid(JsonDocument graph)
    {
        var result = Schema.Value.Evaluate(graph.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (!result.IsValid)
        {
            var errors = (result.Details ?? []).Where(d => d.Errors is not null)
                .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).Take(20);
            Assert.Fail("graph JSON does not match the Neuronpedia schema:\n" + string.Join('\n', errors));
        }
        var duplicates = graph.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node_id").GetString())
            .GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).Take(10).ToList();
        Assert.True(duplicates.Count == 0, $"node ids are not unique: {string.Join(", ", duplicates)}");
    }
}
