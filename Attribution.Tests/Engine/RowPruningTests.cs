namespace Attribution.Tests.Engine;

using Attribution.Graphs;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// Pruning and graph scores on the graph's rows (features and logits × nodes with outputs) equal the
/// same method on the square N × N adjacency matrix it replaced — the matrix circuit-tracer prunes —
/// on every tiny architecture, with per-layer and cross-layer transcoders, at several thresholds.
/// </summary>
public class RowPruningTests
{
    public static TheoryData<ModelArchitecture, TranscoderKind, string> Models => new()
    {
        { ModelArchitecture.Gemma2, TranscoderKind.PerLayer, "jump_relu" },
        { ModelArchitecture.Llama, TranscoderKind.PerLayer, "relu" },
        { ModelArchitecture.Qwen3, TranscoderKind.PerLayer, "topk" },
        { ModelArchitecture.Gemma3, TranscoderKind.PerLayer, "jump_relu" },
        { ModelArchitecture.Gemma2, TranscoderKind.CrossLayer, "jump_relu" },
        { ModelArchitecture.Llama, TranscoderKind.CrossLayer, "jump_relu" },
    };

    private static readonly (double Node, double Edge)[] Thresholds = [(0.8, 0.98), (0.5, 0.5), (0.95, 0.7), (0.0, 0.0), (1.0, 1.0)];

    [Theory]
    [MemberData(nameof(Models))]
    public void Pruning_on_the_rows_equals_pruning_on_the_square_matrix(ModelArchitecture architecture, TranscoderKind kind, string activation)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, NLayers = 4, Seed = 23 },
            new TinyTranscoderSpec { Kind = kind, Activation = activation, Seed = 8 });
        var settings = new AttributionSettings { BatchSize = 16, MaxFeatureNodes = 60, MaxNLogits = 5, DesiredLogitProb = 0.99, UpdateInterval = 4 };
        using var result = Attributor.Attribute(tiny.Replacement, tiny.Prompt(12), settings);
        var graph = result.Graph;
        using var square = SquareReference.Adjacency(graph);

        foreach (var (nodeThreshold, edgeThreshold) in Thresholds)
        {
            using var rows = Pruning.Prune(graph, nodeThreshold, edgeThreshold);
            var reference = SquareReference.Prune(graph, square, nodeThreshold, edgeThreshold);
            string at = $"node {nodeThreshold}, edge {edgeThreshold}";
            Assert.True(reference.NodeMask.SequenceEqual(rows.NodeMask), $"{at}: kept nodes differ");
            Assert.True(reference.Edges.SequenceEqual(Edges(graph, rows)), $"{at}: kept links differ");
            for (int i = 0; i < graph.NodeCount; i++)
                Assert.True(Math.Abs(reference.CumulativeScores[i] - rows.CumulativeScores[i]) < 1e-6, $"{at}: node {i}'s cumulative score");
            if ((nodeThreshold, edgeThreshold) == (0.8, 0.98))
            {
                // The usual settings prune something and keep a graph.
                Assert.InRange(rows.NodeMask.Count(k => k), graph.NodeCount - graph.TokenStart + 10, graph.NodeCount - 10);
                Assert.True(reference.Edges.Count > 50, $"{reference.Edges.Count} edges");
            }
        }

        var expected = SquareReference.Scores(graph, square);
        var actual = GraphScores.Compute(graph);
        Assert.Equal(expected.Replacement, actual.Replacement, 5);
        Assert.Equal(expected.Completeness, actual.Completeness, 5);
    }

    /// <summary>The kept links as (target, source) node pairs: every pair of kept nodes when the pruning keeps every pair.</summary>
    private static List<(int Target, int Source)> Edges(AttributionGraph graph, PruneResult pruning)
    {
        var kept = Enumerable.Range(0, graph.NodeCount).Where(n => pruning.NodeMask[n]).ToList();
        if (pruning.KeepsEveryPair) return [.. kept.SelectMany(t => kept.Select(s => (t, s)))];
        var pairs = pruning.EdgeMask.nonzero().data<long>().ToArray();
        var edges = new List<(int, int)>();
        for (int e = 0; e < pairs.Length / 2; e++)
        {
            int target = graph.RowNode((int)pairs[2 * e]), source = (int)pairs[2 * e + 1];
            if (pruning.NodeMask[target] && pruning.NodeMask[source]) edges.Add((target, source));
        }
        return edges;
    }

    /// <summary>The method as it ran on the square adjacency matrix (circuit-tracer's prune_graph and graph scores).</summary>
    private static class SquareReference
    {
        public sealed record Result(bool[] NodeMask, List<(int Target, int Source)> Edges, float[] CumulativeScores);

        public static Tensor Adjacency(AttributionGraph graph)
        {
            var square = zeros(graph.NodeCount, graph.NodeCount);
            for (int row = 0; row < graph.RowCount; row++)
                square[graph.RowNode(row)].narrow(0, 0, graph.SourceCount).copy_(graph.Rows[row]);
            return square;
        }

        private static Tensor Weights(AttributionGraph graph)
        {
            var weights = zeros(graph.NodeCount);
            weights.narrow(0, graph.LogitStart, graph.LogitTokens.Length).copy_(tensor(graph.LogitProbabilities));
            return weights;
        }

        public static Result Prune(AttributionGraph graph, Tensor adjacency, double nodeThreshold, double edgeThreshold)
        {
            using var scope = NewDisposeScope();
            int n = graph.NodeCount;
            var weights = Weights(graph);
            var nodeInfluence = GraphMath.Influence(GraphMath.NormalizeRows(adjacency), weights, feedback: n);
            var nodeMask = nodeInfluence >= GraphMath.Threshold(nodeInfluence, nodeThreshold);
            nodeMask.narrow(0, graph.TokenStart, n - graph.TokenStart).fill_(true);

            var pruned = adjacency.clone();
            var dropped = nodeMask.logical_not();
            pruned.index_put_(0f, dropped);
            pruned.index_put_(0f, TensorIndex.Colon, TensorIndex.Tensor(dropped));
            var normalized = GraphMath.NormalizeRows(pruned);
            var scores = normalized * (GraphMath.Influence(normalized, weights, feedback: n) + weights).unsqueeze(1);
            var edgeMask = scores >= GraphMath.Threshold(scores, edgeThreshold);

            var nodes = nodeMask.data<bool>().ToArray();
            while (true)
            {
                var hasOutgoing = edgeMask.any(0).data<bool>().ToArray();
                var hasIncoming = edgeMask.any(1).data<bool>().ToArray();
                bool changed = false;
                for (int i = 0; i < graph.TokenStart; i++)
                {
                    bool keep = nodes[i] && hasOutgoing[i] && (i >= graph.FeatureCount || hasIncoming[i]);
                    changed |= keep != nodes[i];
                    nodes[i] = keep;
                }
                if (!changed) break;
                var gone = tensor(nodes).logical_not();
                edgeMask.index_put_(false, gone);
                edgeMask.index_put_(false, TensorIndex.Colon, TensorIndex.Tensor(gone));
            }

            var pairs = edgeMask.nonzero().data<long>().ToArray();
            var edges = new List<(int, int)>();
            for (int e = 0; e < pairs.Length / 2; e++)
                if (nodes[pairs[2 * e]] && nodes[pairs[2 * e + 1]]) edges.Add(((int)pairs[2 * e], (int)pairs[2 * e + 1]));

            var (sorted, order) = nodeInfluence.sort(descending: true);
            var cumulative = zeros_like(nodeInfluence);
            cumulative.index_put_(sorted.cumsum(0) / sorted.sum(), order);
            return new Result(nodes, edges, cumulative.data<float>().ToArray());
        }

        public static GraphScores Scores(AttributionGraph graph, Tensor adjacency)
        {
            using var scope = NewDisposeScope();
            var weights = Weights(graph);
            var normalized = GraphMath.NormalizeRows(adjacency);
            var influence = GraphMath.Influence(normalized, weights, feedback: graph.NodeCount);
            int errors = graph.NLayers * graph.NPos;
            double tokens = influence.narrow(0, graph.TokenStart, graph.NPos).sum().item<float>();
            double errorInfluence = influence.narrow(0, graph.ErrorStart, errors).sum().item<float>();
            var nonError = 1 - normalized.narrow(1, graph.ErrorStart, errors).sum([-1]);
            var output = influence + weights;
            return new GraphScores(tokens / (tokens + errorInfluence), ((nonError * output).sum() / output.sum()).item<float>());
        }
    }
}
