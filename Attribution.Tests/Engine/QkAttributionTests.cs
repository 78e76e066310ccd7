namespace Attribution.Tests.Engine;

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
/// QK attributions (docs/algorithm.md §11) are exact: on seeded tiny models of every architecture,
/// per-layer and cross-layer, in float64, the parts of a score's query and key — every node's,
/// the unlisted features' and the constant — pair up to the score the model's own attention
/// computes, each side's marginals sum to it, and taking one node's vector out of the frozen model
/// changes the score by that node's marginal with the other side fixed.
/// </summary>
public class QkAttributionTests
{
    public static TheoryData<ModelArchitecture, TranscoderKind, bool> Cases => HeadLoadingTests.Cases;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Pair_terms_and_marginals_sum_to_the_models_own_score(ModelArchitecture architecture, TranscoderKind kind, bool skip)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, NLayers = 4, Seed = 61 },
            new TinyTranscoderSpec { Kind = kind, Skip = skip, Seed = 9 },
            ScalarType.Float64);
        var replacement = tiny.Replacement;
        using var prompt = PreparedPrompt.Prepare(replacement, tiny.Prompt(8));
        var layout = new NodeLayout(prompt.Active.Count, replacement.NLayers, prompt.NPos, LogitCount: 0);
        var own = OwnScores(replacement.Model, prompt);
        var config = replacement.Model.Config;

        // Every layer, a query head of each key/value head, keys before, at and far from the query.
        var scores = Enumerable.Range(0, replacement.NLayers).SelectMany(layer => new[]
        {
            new QkScore(layer, 0, 7, 6), new QkScore(layer, config.NHeads - 1, 7, 0), new QkScore(layer, 1, 5, 5), new QkScore(layer, config.NHeads / 2, 6, 2),
        }).ToList();
        // Every node listed, and only every other feature listed (the rest goes to "unlisted").
        int[] everyNode = [.. Enumerable.Range(0, layout.TokenStart + prompt.NPos)];
        int[] someNodes = [.. everyNode.Where(n => n >= layout.ErrorStart || n % 2 == 0)];
        foreach (var sources in new[] { everyNode, someNodes })
        {
            var decompositions = QkAttributions.Compute(replacement, prompt, sources, scores, batchSize: 7);
            double largest = scores.Max(s => Math.Abs(own[s])), worst = 0;
            foreach (var d in decompositions)
            {
                double score = own[d.At];
                // Every pair of parts: listed × listed, and the unlisted and constant parts on either side.
                var query = d.Query.sum(dim: 0) + d.QueryUnlisted + d.QueryConstant;
                var key = d.Key.sum(dim: 0) + d.KeyUnlisted + d.KeyConstant;
                double pairSum = d.Scale * query.dot(key).item<double>();
                double queryMarginals = d.QueryMarginals().Sum() + d.QueryUnlistedMarginal + d.QueryConstantMarginal;
                double keyMarginals = d.KeyMarginals().Sum() + d.KeyUnlistedMarginal + d.KeyConstantMarginal;
                foreach (double sum in new[] { pairSum, queryMarginals, keyMarginals, d.Score })
                    worst = Math.Max(worst, Math.Abs(sum - score) / largest);
                d.Dispose();
            }
            Assert.True(worst < 1e-10, $"parts missed the model's scores by {worst:E2} of the largest");
            Assert.True(largest > 1e-2, $"the scores are all near zero ({largest:E2}): the check would see nothing");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Taking_a_node_out_changes_the_score_by_its_marginal(ModelArchitecture architecture, TranscoderKind kind, bool skip)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, NLayers = 3, Seed = 67 },
            new TinyTranscoderSpec { Kind = kind, Skip = skip, Seed = 4 },
            ScalarType.Float64);
        var replacement = tiny.Replacement;
        var model = replacement.Model;
        using var prompt = PreparedPrompt.Prepare(replacement, tiny.Prompt(7));
        var layout = new NodeLayout(prompt.Active.Count, replacement.NLayers, prompt.NPos, LogitCount: 0);
        var at = new QkScore(replacement.NLayers - 1, 1, 6, 3);
        int[] sources = [.. Enumerable.Range(0, layout.TokenStart + prompt.NPos)];
        using var d = QkAttributions.Compute(replacement, prompt, sources, [at])[0];
        var keyMarginals = d.KeyMarginals();
        var queryMarginals = d.QueryMarginals();

        // The largest marginals of each side, whatever kind of node they are.
        var keySide = Enumerable.Range(0, sources.Length).OrderByDescending(i => Math.Abs(keyMarginals[i])).Take(4).ToList();
        var querySide = Enumerable.Range(0, sources.Length).OrderByDescending(i => Math.Abs(queryMarginals[i])).Take(4).ToList();
        Assert.Contains(keySide, i => layout.Locate(sources[i]).Kind == NodeKind.Feature || layout.Locate(sources[i]).Kind == NodeKind.Error);
        double scale = Math.Max(Math.Abs(d.Score), 1e-3), worst = 0;
        foreach (var (rows, key) in new[] { (keySide, true), (querySide, false) })
        {
            foreach (int i in rows)
            {
                // The frozen model without node i: its side's input at its position, through the side's frozen map.
                var input = AttentionInputWithout(replacement, prompt, layout, sources[i], at.Layer, key ? at.KeyPosition : at.QueryPosition);
                var (map, offset) = model.ScoreSide(at.Layer, at.Head, key, key ? at.KeyPosition : at.QueryPosition, CleanInput(replacement, prompt, at.Layer, key ? at.KeyPosition : at.QueryPosition));
                var side = (map.matmul(input) + offset).to(ScalarType.Float64).cpu();
                double without = d.Scale * (key ? d.FullQuery.dot(side) : side.dot(d.FullKey)).item<double>();
                double marginal = key ? keyMarginals[i] : queryMarginals[i];
                worst = Math.Max(worst, Math.Abs(d.Score - without - marginal) / scale);
            }
        }
        Assert.True(worst < 1e-10, $"taking a node out missed its marginal by {worst:E2} of the score");
        Assert.True(Math.Abs(keyMarginals[keySide[0]]) > 1e-4 * scale, "the largest key marginal is near zero: the check would see nothing");
    }

    /// <summary>
    /// Through the pipeline the CLI and the service run: traced nodes carry Neuronpedia's
    /// qk_tracing_results, every contributor id resolves to a shown node or to qk_only_nodes, each
    /// side's marginals (all of them kept here) sum with the side's rest to the score, and the graph
    /// stays schema-valid; the fraction decides how many nodes are traced.
    /// </summary>
    [Fact]
    public async Task Asked_for_the_most_influential_nodes_carry_qk_tracing_results()
    {
        using var folder = new TempFolder();
        var (modelFolder, transcoders) = TinyRandomModelWriter.EnsureWritten(folder["tiny"]);
        using var model = await LoadedModel.LoadAsync(new ModelSettings { ModelId = "test/toy", ModelPath = modelFolder, TranscoderSet = transcoders, DType = ScalarType.Float64 }, hub: null);
        var request = new GraphRequest { Prompt = "The cat is on the mat and the cat is", Slug = "qk", QkTracing = true, QkTopFraction = 1, QkTopK = 1000 };
        using var traced = HeadLoadingTests.Graph(model, request, out var summary);
        GraphSchema.AssertValid(traced);
        Assert.Contains(GraphPipeline.QkTracingPhase, summary.Timings.Phases.Select(p => p.Phase));

        var root = traced.RootElement;
        var shown = root.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node_id").GetString()!).ToHashSet();
        var hidden = root.GetProperty("qk_only_nodes").EnumerateObject().Select(p => p.Name).ToHashSet();
        Assert.Empty(shown.Intersect(hidden));
        var results = root.GetProperty("nodes").EnumerateArray().Where(n => n.TryGetProperty("qk_tracing_results", out _)).ToList();
        Assert.NotEmpty(results);
        foreach (var node in results)
        {
            var qk = node.GetProperty("qk_tracing_results");
            double score = qk.GetProperty("score").GetDouble();
            Assert.True(qk.GetProperty("key_ctx_idx").GetInt32() < node.GetProperty("ctx_idx").GetInt32(), $"{node}: the key is not before the node");
            foreach (var (side, rest) in new[] { ("top_q_marginal_contributors", "q_rest"), ("top_k_marginal_contributors", "k_rest") })
            {
                var marginals = qk.GetProperty(side).EnumerateArray().ToList();
                Assert.All(marginals, m => Assert.True(shown.Contains(m[0].GetString()!) || hidden.Contains(m[0].GetString()!), $"{m[0]} resolves to no node"));
                double sum = marginals.Sum(m => m[1].GetDouble()) + qk.GetProperty(rest).GetDouble();
                Assert.True(Math.Abs(sum - score) <= 1e-9 * Math.Max(1, Math.Abs(score)), $"{side} sum to {sum}, not {score}");
            }
            var pairs = qk.GetProperty("pair_wise_contributors").EnumerateArray().ToList();
            Assert.NotEmpty(pairs);
            Assert.All(pairs, p => Assert.NotEqual(0.0, p[2].GetDouble()));   // structural zeros explain nothing
            Assert.All(pairs, p => Assert.True((shown.Contains(p[0].GetString()!) || hidden.Contains(p[0].GetString()!)) && (shown.Contains(p[1].GetString()!) || hidden.Contains(p[1].GetString()!))));
            Assert.True(pairs.Zip(pairs.Skip(1)).All(p => Math.Abs(p.First[2].GetDouble()) >= Math.Abs(p.Second[2].GetDouble())), "pairs are not largest first");
        }

        // A smaller fraction traces fewer nodes; none without the flag.
        using var fewer = HeadLoadingTests.Graph(model, request with { QkTopFraction = 0.2, QkTopK = 3 }, out _);
        int fewerTraced = fewer.RootElement.GetProperty("nodes").EnumerateArray().Count(n => n.TryGetProperty("qk_tracing_results", out _));
        Assert.InRange(fewerTraced, 1, results.Count - 1);
        Assert.All(fewer.RootElement.GetProperty("nodes").EnumerateArray().Where(n => n.TryGetProperty("qk_tracing_results", out _)),
            n => Assert.InRange(n.GetProperty("qk_tracing_results").GetProperty("pair_wise_contributors").GetArrayLength(), 1, 3));
        using var plain = HeadLoadingTests.Graph(model, request with { QkTracing = false }, out _);
        Assert.DoesNotContain(plain.RootElement.GetProperty("nodes").EnumerateArray(), n => n.TryGetProperty("qk_tracing_results", out _));
        Assert.False(plain.RootElement.TryGetProperty("qk_only_nodes", out _));
    }

    /// <summary>The pre-softmax scores of the model's own plain forward pass, by (layer, head, query, key).</summary>
    private static Dictionary<QkScore, double> OwnScores(DecoderModel model, PreparedPrompt prompt)
    {
        var capture = new ScoreCapture();
        using (no_grad()) model.Forward(prompt.TokenVectors.unsqueeze(0), capture);
        var scores = new Dictionary<QkScore, double>();
        foreach (var (layer, tensor) in capture.Scores)
        {
            var values = tensor.to(ScalarType.Float64).data<double>().ToArray();   // [1, heads, n, n]
            int heads = (int)tensor.shape[1], n = (int)tensor.shape[2];
            for (int h = 0; h < heads; h++)
                for (int q = 0; q < n; q++)
                    for (int k = 0; k <= q; k++) scores[new QkScore(layer, h, q, k)] = values[((h * n) + q) * n + k];
        }
        return scores;
    }

    private sealed class ScoreCapture : RunPolicy
    {
        public Dictionary<int, Tensor> Scores { get; } = [];

        public override void OnAttentionScores(int layer, Tensor scores) => Scores[layer] = scores.clone().DetachFromDisposeScope();
    }

    private static Tensor CleanInput(ReplacementModel replacement, PreparedPrompt prompt, int layer, int position)
    {
        using var run = new FrozenRun(prompt.Clean, replacement.Transcoders, new Tensor?[replacement.NLayers]) { RecordsAttentionInputs = true };
        using (no_grad()) replacement.Model.Forward(prompt.TokenVectors.unsqueeze(0), run);
        return run.AttentionInputs[layer]![0, position].clone();
    }

    /// <summary>A layer's normed attention input at one position in the frozen model with one node's vector taken out.</summary>
    private static Tensor AttentionInputWithout(ReplacementModel replacement, PreparedPrompt prompt, NodeLayout layout, int node, int layer, int position)
    {
        int layers = replacement.NLayers, n = prompt.NPos;
        long d = replacement.Model.Config.DModel;
        var embeddings = zeros(1, n, d, ScalarType.Float64);
        var writes = Enumerable.Range(0, layers).Select(_ => zeros(1, n, d, ScalarType.Float64)).ToArray();
        NodeVectors.Place(prompt, layout, node, 0, embeddings, writes);
        using var run = new FrozenRun(prompt.Clean, replacement.Transcoders, [.. writes.Select(w => -w)]) { RecordsAttentionInputs = true };
        using (no_grad()) replacement.Model.Forward(prompt.TokenVectors.unsqueeze(0) - embeddings, run);
        return run.AttentionInputs[layer]![0, position].clone();
    }
}
