namespace GraphFunctions.Tests.Support;

using System.Text.Json;
using Attribution.Tests.Support;

/// <summary>
/// The Neuronpedia webapp's own checks of our answers, re-created from its code
/// (hijohnnylin/neuronpedia, apps/webapp): <c>SteerResponseSchema</c> (lib/utils/steer.ts), the
/// graph schema (app/api/graph/graph-schema.json, via <see cref="GraphSchema"/>) and the fields
/// <c>formatCLTGraphData</c> (app/[modelId]/graph/utils.ts) reads, plus how its steer modal
/// decodes a node into a feature.
/// </summary>
public static class WebappRules
{
    /// <summary>SteerResponseSchema: two non-empty generations, and per token {token: non-empty, top_logits: [{token: non-empty, prob: number}]}.</summary>
    public static void AssertSteerResponse(JsonElement response)
    {
        foreach (var name in new[] { "DEFAULT_GENERATION", "STEERED_GENERATION" })
        {
            Assert.True(response.TryGetProperty(name, out var generation) && generation.ValueKind == JsonValueKind.String, $"{name} must be a string");
            Assert.False(string.IsNullOrEmpty(generation.GetString()), $"{name} must not be empty");
        }
        foreach (var name in new[] { "DEFAULT_LOGITS_BY_TOKEN", "STEERED_LOGITS_BY_TOKEN" })
        {
            Assert.True(response.TryGetProperty(name, out var entries) && entries.ValueKind == JsonValueKind.Array, $"{name} must be an array");
            foreach (var entry in entries.EnumerateArray())
            {
                AssertNonEmptyString(entry, "token", name);
                Assert.True(entry.TryGetProperty("top_logits", out var top) && top.ValueKind == JsonValueKind.Array, $"{name}[].top_logits must be an array");
                foreach (var logit in top.EnumerateArray())
                {
                    AssertNonEmptyString(logit, "token", $"{name}[].top_logits[]");
                    Assert.True(logit.TryGetProperty("prob", out var prob) && prob.ValueKind == JsonValueKind.Number, $"{name}[].top_logits[].prob must be a number");
                }
            }
        }
    }

    /// <summary>The graph schema, unique ids, and what formatCLTGraphData needs to lay a graph out.</summary>
    public static void AssertGraphReadable(JsonDocument graph)
    {
        GraphSchema.AssertValid(graph);
        var root = graph.RootElement;
        Assert.Equal(JsonValueKind.Object, root.GetProperty("qParams").ValueKind);
        var nodes = root.GetProperty("nodes").EnumerateArray().ToList();
        var ids = nodes.Select(n => n.GetProperty("node_id").GetString()!).ToHashSet();
        Assert.All(ids, id => Assert.DoesNotContain(",", id, StringComparison.Ordinal));   // pinned ids travel comma-separated in the URL
        // The viewer sizes its rows by the largest numeric layer (the logits'), which must be above 0.
        int maxLayer = nodes.Select(n => int.TryParse(n.GetProperty("layer").GetString(), out int l) ? l : 0).Max();
        Assert.True(maxLayer > 0, "the largest layer must be above 0");
        foreach (var logit in nodes.Where(n => n.GetProperty("feature_type").GetString() == "logit"))
            Assert.Contains("(p=", logit.GetProperty("clerp").GetString(), StringComparison.Ordinal);   // the viewer reads the probability from the clerp
        foreach (var link in root.GetProperty("links").EnumerateArray())
        {
            Assert.Contains(link.GetProperty("source").GetString()!, ids);
            Assert.Contains(link.GetProperty("target").GetString()!, ids);
        }
    }

    /// <summary>Nodes the steer modal offers: not errors, embeddings or logits.</summary>
    public static bool IsSteerable(JsonElement node)
    {
        string type = node.GetProperty("feature_type").GetString()!;
        return !type.Contains("error", StringComparison.Ordinal) && type != "embedding" && type != "logit";
    }

    /// <summary>The inverse Cantor pairing the webapp applies to a node's <c>feature</c> (schema_version 1): (layer, index).</summary>
    public static (long Layer, long Index) DecodeFeature(long feature)
    {
        long w = (long)Math.Floor((Math.Sqrt(8.0 * feature + 1) - 1) / 2);
        long t = w * (w + 1) / 2;
        long index = feature - t;
        return (w - index, index);
    }

    private static void AssertNonEmptyString(JsonElement element, string property, string at)
    {
        Assert.True(element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String, $"{at}.{property} must be a string");
        Assert.False(string.IsNullOrEmpty(value.GetString()), $"{at}.{property} must not be empty");
    }
}
