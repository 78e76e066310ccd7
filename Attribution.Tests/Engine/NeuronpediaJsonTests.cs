namespace Attribution.Tests.Engine;

using System.IO.Compression;
using System.Text.Json;
using Attribution.Graphs;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using static TorchSharp.torch;

/// <summary>The Neuronpedia graph JSON: node ids and fields exactly as docs/graph-format.md, schema-valid, streamable through gzip.</summary>
public class NeuronpediaJsonTests
{
    private static GraphMetadata Metadata(AttributionGraph graph) => new()
    {
        Slug = "hand-made",
        Scan = "tiny",
        PromptTokens = graph.InputTokens.Select(t => $"tok{t}\n").ToList(),
        Prompt = "tok2tok7",
        NodeThreshold = 0.8,
        EdgeThreshold = 0.8,
        Info = new GraphInfo("Anonymous", "https://neuronpedia.org", ["https://example.org/a"], "tiny", "GraphFunctions", "1.0", "https://example.org", 1),
        Generation = new GenerationSettings(10, 0.95, 48, 10000),
        Scores = GraphScores.Compute(graph),
    };

    private static JsonDocument WriteToDocument(AttributionGraph graph, PruneResult pruning, GraphMetadata metadata)
    {
        var buffer = new MemoryStream();
        NeuronpediaGraphWriter.Write(buffer, graph, pruning, metadata, id => $" t{id}");
        buffer.Position = 0;
        return JsonDocument.Parse(buffer);
    }

    [Fact]
    public void Hand_made_graph_has_the_ids_fields_and_links_of_the_spec()
    {
        using var graph = GraphMathTests.HandMadeGraph();
        using var pruning = Pruning.Prune(graph, 0.8, 0.8);
        using var json = WriteToDocument(graph, pruning, Metadata(graph));
        GraphSchema.AssertValid(json);

        var nodes = json.RootElement.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(["0_10_1", "E_2_0", "E_7_1", "2_42_1"], nodes.Select(n => n.GetProperty("node_id").GetString()));

        var feature = nodes[0];
        Assert.Equal(65, feature.GetProperty("feature").GetInt64());                  // Cantor(0, 10) = 10·11/2 + 10
        Assert.Equal("0", feature.GetProperty("layer").GetString());
        Assert.Equal(1, feature.GetProperty("ctx_idx").GetInt32());
        Assert.Equal("cross layer transcoder", feature.GetProperty("feature_type").GetString());
        Assert.Equal("0_10-0", feature.GetProperty("jsNodeId").GetString());
        Assert.Equal(1.5, feature.GetProperty("activation").GetDouble(), 5);
        Assert.Equal(1.35 / 1.9, feature.GetProperty("influence").GetDouble(), 5);   // (t1 .75 + f0 .6) of 1.9

        var token = nodes[2];
        Assert.Equal("E", token.GetProperty("layer").GetString());
        Assert.Equal(1, token.GetProperty("feature").GetInt32());
        Assert.Equal("E_7-1", token.GetProperty("jsNodeId").GetString());
        Assert.Equal("embedding", token.GetProperty("feature_type").GetString());

        var logit = nodes[3];
        Assert.Equal("2", logit.GetProperty("layer").GetString());
        Assert.Equal(42, logit.GetProperty("feature").GetInt32());
        Assert.Equal("L_42-1", logit.GetProperty("jsNodeId").GetString());
        Assert.True(logit.GetProperty("is_target_logit").GetBoolean());
        Assert.Equal("Output \" t42\" (p=1.000)", logit.GetProperty("clerp").GetString());
        foreach (var n in nodes)
        {
            Assert.Equal(0, n.GetProperty("run_idx").GetInt32());
            Assert.Equal(0, n.GetProperty("reverse_ctx_idx").GetInt32());
        }

        var links = json.RootElement.GetProperty("links").EnumerateArray()
            .Select(l => (l.GetProperty("source").GetString(), l.GetProperty("target").GetString(), l.GetProperty("weight").GetDouble())).ToList();
        Assert.Equal([("E_7_1", "0_10_1", 4.0), ("0_10_1", "2_42_1", 6.0)], links);

        var metadata = json.RootElement.GetProperty("metadata");
        Assert.Equal(["tok2⏎", "tok7⏎"], metadata.GetProperty("prompt_tokens").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(1, metadata.GetProperty("schema_version").GetInt32());
        Assert.Equal(0.8, metadata.GetProperty("pruning_settings").GetProperty("edge_threshold").GetDouble());
        Assert.Equal("both", json.RootElement.GetProperty("qParams").GetProperty("linkType").GetString());
    }

    [Fact]
    public void A_graph_without_influence_keeps_every_node_and_links_every_pair_as_circuit_tracer_does()
    {
        // All rows zero: every threshold falls to zero, so every node and every ordered pair of nodes
        // is kept, and the links carry weight zero (circuit-tracer writes the pairs of its all-true mask).
        var active = new ActiveFeatures([0], [1], [1], [1f]);
        using var graph = new AttributionGraph([2, 7], nLayers: 1, active, [0], [42], [1f], zeros(2, 5));
        using var pruning = Pruning.Prune(graph, 0.8, 0.98);
        Assert.True(pruning.KeepsEveryPair);
        Assert.All(pruning.NodeMask, Assert.True);
        using var json = WriteToDocument(graph, pruning, Metadata(graph) with { Scores = null });
        var links = json.RootElement.GetProperty("links").EnumerateArray().ToList();
        Assert.Equal(graph.NodeCount * graph.NodeCount, links.Count);
        Assert.All(links, link => Assert.Equal(0, link.GetProperty("weight").GetDouble()));
    }

    [Fact]
    public void Error_node_ids_carry_feature_minus_one_and_never_collide_with_a_feature()
    {
        // Feature 1 of layer 0 at position 1, in a two-layer graph: circuit-tracer's old error id
        // "0_{layer}_{pos}" gave the layer-1 error at position 1 this feature's id, "0_1_1" (its issue #78).
        var active = new ActiveFeatures([0], [1], [1], [1f]);
        using var graph = new AttributionGraph([2, 7], nLayers: 2, active, [0], [42], [1f], zeros(2, 7));
        var ids = Enumerable.Range(0, graph.NodeCount).Select(n => NeuronpediaGraphWriter.NodeId(graph, n)).ToList();
        Assert.Equal(["0_1_1", "0_-1_0", "0_-1_1", "1_-1_0", "1_-1_1", "E_2_0", "E_7_1", "3_42_1"], ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Theory]
    [InlineData(ModelArchitecture.Gemma2)]
    [InlineData(ModelArchitecture.Llama)]
    [InlineData(ModelArchitecture.Qwen3)]
    public void Graphs_of_tiny_models_validate_and_survive_gzip(ModelArchitecture architecture)
    {
        using var tiny = new TinyReplacement(new TinyModelSpec { Architecture = architecture, Seed = 3 }, new TinyTranscoderSpec { Seed = 8 });
        using var result = Attributor.Attribute(tiny.Replacement, tiny.Prompt(10), new AttributionSettings { BatchSize = 32, MaxFeatureNodes = 100 });
        using var pruning = Pruning.Prune(result.Graph, 0.8, 0.98);
        var metadata = Metadata(result.Graph) with { PromptTokens = result.Graph.InputTokens.Select(t => $"{t}").ToList() };

        var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            NeuronpediaGraphWriter.Write(gzip, result.Graph, pruning, metadata, id => $"{id}");
        compressed.Position = 0;
        using var json = JsonDocument.Parse(new GZipStream(compressed, CompressionMode.Decompress));
        GraphSchema.AssertValid(json);

        var ids = json.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node_id").GetString()!).ToHashSet();
        Assert.Equal(result.Graph.NPos, ids.Count(id => id.StartsWith("E_", StringComparison.Ordinal)));
        Assert.Contains(json.RootElement.GetProperty("nodes").EnumerateArray(), n => n.GetProperty("feature_type").GetString() == "cross layer transcoder");
        foreach (var link in json.RootElement.GetProperty("links").EnumerateArray())
        {
            Assert.Contains(link.GetProperty("source").GetString()!, ids);
            Assert.Contains(link.GetProperty("target").GetString()!, ids);
        }
    }
}

public class GraphSchemaSelfTests
{
    [Fact]
    public void The_schema_check_rejects_a_graph_without_required_fields()
    {
        using var broken = JsonDocument.Parse("""{"metadata": {"slug": "x", "scan": "y", "prompt_tokens": [], "prompt": ""}, "nodes": [{"node_id": "a"}], "links": []}""");
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => GraphSchema.AssertValid(broken));
    }
}
