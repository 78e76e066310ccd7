namespace Attribution.Tests.Engine;

using System.Text.Json;
using Attribution.Graphs;
using Attribution.Loading;
using Attribution.Models;
using Attribution.Pipeline;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// Head loadings (docs/algorithm.md §10) are exact: on seeded tiny models of every architecture,
/// per-layer (with and without skip) and cross-layer, in float64, the direct part and the parts of
/// every head of every edge into sampled feature targets and the logits sum to the edge's weight
/// measured by intervention (the source's vector added in the frozen model, attention on).
/// </summary>
public class HeadLoadingTests
{
    public static TheoryData<ModelArchitecture, TranscoderKind, bool> Cases => new()
    {
        { ModelArchitecture.Gemma2, TranscoderKind.PerLayer, false },
        { ModelArchitecture.Gemma2, TranscoderKind.PerLayer, true },
        { ModelArchitecture.Llama, TranscoderKind.PerLayer, false },
        { ModelArchitecture.Qwen3, TranscoderKind.PerLayer, true },
        { ModelArchitecture.Gemma3, TranscoderKind.PerLayer, true },
        { ModelArchitecture.Gemma2, TranscoderKind.CrossLayer, false },
        { ModelArchitecture.Llama, TranscoderKind.CrossLayer, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_edges_head_parts_sum_to_its_weight(ModelArchitecture architecture, TranscoderKind kind, bool skip)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, NLayers = 4, Seed = 53 },
            new TinyTranscoderSpec { Kind = kind, Skip = skip, Seed = 8 },
            ScalarType.Float64);
        var replacement = tiny.Replacement;
        using var prompt = PreparedPrompt.Prepare(replacement, tiny.Prompt(8));
        using var targets = LogitTargets.Select(prompt.LastLogits, replacement.Model.Unembedding, maxLogits: 2, desiredProbability: 0.95);
        var layout = new NodeLayout(prompt.Active.Count, replacement.NLayers, prompt.NPos, targets.Count);

        // Targets: features of the last two layers (every position) and every logit; sources: every feature, error and token.
        var featureTargets = Enumerable.Range(0, prompt.Active.Count).Where(f => prompt.Active.Layers[f] >= replacement.NLayers - 2).Take(12);
        int[] targetNodes = [.. featureTargets, .. Enumerable.Range(layout.LogitStart, targets.Count)];
        var edges = targetNodes.SelectMany(t => Enumerable.Range(0, layout.LogitStart).Select(s => (t, s))).ToList();
        var loadings = HeadLoadings.Compute(replacement, prompt, targets, edges, batchSize: 5);

        var weights = Interventions(replacement, prompt, targets, layout, targetNodes);
        double scale = weights.Values.Max(Math.Abs), worst = 0, largestCrossing = 0;
        int crossPosition = 0;
        foreach (var edge in loadings)
        {
            worst = Math.Max(worst, Math.Abs(edge.Total - weights[(edge.Target, edge.Source)]) / scale);
            if (SourcePosition(prompt, layout, edge.Source) != TargetPosition(prompt, layout, edge.Target))
            {
                // Another position is reached through attention only: nothing is direct.
                Assert.Equal(0.0, edge.Direct);
                crossPosition++;
                largestCrossing = Math.Max(largestCrossing, Math.Abs(edge.Ranked().First().Part));
            }
        }
        Assert.True(worst < 1e-10, $"head parts missed edge weights by {worst:E2} of the largest edge");
        Assert.True(crossPosition > 100, $"only {crossPosition} cross-position edges were checked");
        Assert.True(largestCrossing > 1e-3 * scale, $"the heads carry almost nothing across positions ({largestCrossing:E2}): the check would not see a wrong split");
    }

    /// <summary>Through the pipeline the CLI and the service run: asked for, every link carries its loadings; they sum to its weight and the graph stays schema-valid.</summary>
    [Fact]
    public async Task Asked_for_every_link_of_a_graph_carries_its_head_loadings()
    {
        using var folder = new TempFolder();
        var (modelFolder, transcoders) = TinyRandomModelWriter.EnsureWritten(folder["tiny"]);
        using var model = await LoadedModel.LoadAsync(new ModelSettings { ModelId = "test/toy", ModelPath = modelFolder, TranscoderSet = transcoders, DType = ScalarType.Float64 }, hub: null);
        var request = new GraphRequest { Prompt = "The cat is on the mat and the cat is", Slug = "heads", HeadLoadings = true };
        using var withHeads = Graph(model, request, out var summary);
        using var without = Graph(model, request with { HeadLoadings = false }, out _);
        GraphSchema.AssertValid(withHeads);
        Assert.Contains(GraphPipeline.HeadLoadingsPhase, summary.Timings.Phases.Select(p => p.Phase));

        var positions = withHeads.RootElement.GetProperty("nodes").EnumerateArray()
            .ToDictionary(n => n.GetProperty("node_id").GetString()!, n => n.GetProperty("ctx_idx").GetInt32());
        var links = withHeads.RootElement.GetProperty("links").EnumerateArray().ToList();
        Assert.NotEmpty(links);
        int crossing = 0;
        foreach (var link in links)
        {
            var loadings = link.GetProperty("head_loadings");
            var heads = loadings.GetProperty("heads").EnumerateArray().ToList();
            Assert.InRange(heads.Count, 0, HeadLoadings.ReportedHeads);
            double parts = loadings.GetProperty("direct").GetDouble() + heads.Sum(h => h[2].GetDouble()) + loadings.GetProperty("rest").GetDouble();
            double weight = link.GetProperty("weight").GetDouble();
            Assert.True(Math.Abs(parts - weight) <= 1e-5 * Math.Max(1, Math.Abs(weight)), $"{link}: parts sum to {parts}, not {weight}");
            if (positions[link.GetProperty("source").GetString()!] != positions[link.GetProperty("target").GetString()!])
            {
                Assert.Equal(0.0, loadings.GetProperty("direct").GetDouble());
                crossing++;
            }
        }
        Assert.True(crossing > 0, "no link crossed positions");
        Assert.All(without.RootElement.GetProperty("links").EnumerateArray(), link => Assert.False(link.TryGetProperty("head_loadings", out _)));
        Assert.Equal(links.Count, without.RootElement.GetProperty("links").GetArrayLength());
    }

    /// <summary>A graph through the pipeline the CLI and the service run, parsed.</summary>
    internal static JsonDocument Graph(LoadedModel model, GraphRequest request, out GraphSummary summary)
    {
        using var output = new MemoryStream();
        summary = GraphPipeline.Generate(model, request, output);
        return JsonDocument.Parse(output.ToArray());
    }

    [Fact]
    public void A_logit_is_only_a_target()
    {
        using var tiny = new TinyReplacement(new TinyModelSpec { Architecture = ModelArchitecture.Llama, NLayers = 2, Seed = 3 }, new TinyTranscoderSpec { Seed = 1 }, ScalarType.Float64);
        using var prompt = PreparedPrompt.Prepare(tiny.Replacement, tiny.Prompt(5));
        using var targets = LogitTargets.Select(prompt.LastLogits, tiny.Replacement.Model.Unembedding, 1, 0.5);
        int logit = new NodeLayout(prompt.Active.Count, 2, prompt.NPos, 1).LogitStart;
        var error = Assert.Throws<ArgumentException>(() => HeadLoadings.Compute(tiny.Replacement, prompt, targets, [(logit, logit)]));
        Assert.Contains("logits are targets only", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Every (target, source) weight by intervention: each source's vector added alone in the frozen model, attention on.</summary>
    private static Dictionary<(int, int), double> Interventions(ReplacementModel replacement, PreparedPrompt prompt, LogitTargets targets, NodeLayout layout, int[] targetNodes)
    {
        Tensor TargetValues(Tensor? embeddingDelta, Tensor?[] writeDeltas)
        {
            using var run = new FrozenRun(prompt.Clean, replacement.Transcoders, writeDeltas);
            var embeddings = prompt.TokenVectors.unsqueeze(0);
            if (embeddingDelta is not null) embeddings = embeddings + embeddingDelta;
            using (no_grad()) replacement.Model.Forward(embeddings, run);
            return stack(targetNodes.Select(t => layout.Locate(t) is { Kind: NodeKind.Logit } logit
                ? (run.FinalResidual[0, prompt.NPos - 1] * targets.DemeanedVectors[logit.Index]).sum()
                : (run.Reads[(int)prompt.Active.Layers[t]][0, prompt.Active.Positions[t]] * prompt.EncoderRows[t]).sum())).to(ScalarType.Float64);
        }

        Tensor At(int position, Tensor vector)
        {
            var delta = zeros(1, prompt.NPos, vector.shape[^1], vector.dtype);
            delta[0, position] = vector;
            return delta;
        }

        using var scope = NewDisposeScope();
        int layers = replacement.NLayers;
        var baseline = TargetValues(null, new Tensor?[layers]);
        var weights = new Dictionary<(int, int), double>();
        for (int source = 0; source < layout.LogitStart; source++)
        {
            var place = layout.Locate(source);
            var writes = new Tensor?[layers];
            Tensor? embedding = null;
            if (place.Kind == NodeKind.Token) embedding = At(place.Position, prompt.TokenVectors[place.Position]);
            else if (place.Kind == NodeKind.Error) writes[place.Layer] = At(place.Position, prompt.Errors[place.Layer][place.Position]);
            else
            {
                int layer = (int)prompt.Active.Layers[source];
                var (first, _) = prompt.Active.RangeOfLayer(layer);
                var vectors = prompt.ScaledDecoders[layer][source - first];
                for (int w = 0; w < vectors.shape[0]; w++) writes[layer + w] = At((int)prompt.Active.Positions[source], vectors[w]);
            }
            var change = (TargetValues(embedding, writes) - baseline).data<double>().ToArray();
            for (int i = 0; i < targetNodes.Length; i++) weights[(targetNodes[i], source)] = change[i];
        }
        return weights;
    }

    private static int SourcePosition(PreparedPrompt prompt, NodeLayout layout, int node) =>
        layout.Locate(node) is { Kind: NodeKind.Feature } ? (int)prompt.Active.Positions[node] : layout.Locate(node).Position;

    private static int TargetPosition(PreparedPrompt prompt, NodeLayout layout, int node) => SourcePosition(prompt, layout, node);
}
