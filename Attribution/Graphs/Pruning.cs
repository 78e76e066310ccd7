namespace Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>Which nodes and edges survive pruning, and each node's cumulative influence rank fraction.</summary>
public sealed record PruneResult(bool[] NodeMask, Tensor EdgeMask, float[] CumulativeScores) : IDisposable
{
    public void Dispose() => EdgeMask.Dispose();
}

/// <summary>
/// Pruning (docs/algorithm.md §7, circuit-tracer's prune_graph): keep the fewest nodes carrying
/// <c>node_threshold</c> of the influence on the logits (tokens and logits always kept), then the
/// fewest edges carrying <c>edge_threshold</c> of the edge scores, then repeatedly drop features
/// and errors left without outgoing edges and features without incoming ones.
/// </summary>
public static class Pruning
{
    public static PruneResult Prune(AttributionGraph graph, double nodeThreshold, double edgeThreshold)
    {
        if (nodeThreshold is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(nodeThreshold), "node_threshold must be between 0 and 1");
        if (edgeThreshold is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(edgeThreshold), "edge_threshold must be between 0 and 1");

        using var scope = NewDisposeScope();
        int n = graph.NodeCount, nFeatures = graph.FeatureCount;
        int alwaysKeptFrom = graph.TokenStart;
        var weights = LogitWeights(graph);

        // 1. Nodes by influence.
        var nodeInfluence = GraphMath.Influence(GraphMath.NormalizeRows(graph.Adjacency), weights);
        var nodeMask = nodeInfluence >= GraphMath.Threshold(nodeInfluence, nodeThreshold);
        nodeMask.narrow(0, alwaysKeptFrom, n - alwaysKeptFrom).fill_(true);

        // 2. Edges by score on the node-pruned matrix: Â_ij · (influence_i + w_i). Dropped nodes'
        //    rows and columns are zero there, so the scores are computed on the kept nodes' block
        //    (a fraction of the N² matrix) and the rest counts as zeros.
        var kept = nodeMask.nonzero().squeeze(1);
        long nKept = kept.shape[0];
        var normalizedPruned = GraphMath.NormalizeRows(graph.Adjacency.index_select(0, kept).index_select(1, kept));
        var keptWeights = weights.index_select(0, kept);
        var prunedInfluence = GraphMath.Influence(normalizedPruned, keptWeights) + keptWeights;
        var keptScores = normalizedPruned * prunedInfluence.unsqueeze(1);
        float edgeCut = GraphMath.Threshold(keptScores, edgeThreshold, implicitZeros: (long)n * n - nKept * nKept);
        // A cut at zero keeps every edge, zeros included, as a comparison over the whole matrix would.
        var edgeMask = edgeCut <= 0 ? ones(n, n, ScalarType.Bool) : zeros(n, n, ScalarType.Bool);
        if (edgeCut > 0)
        {
            var keptRows = zeros(nKept, n, ScalarType.Bool);
            keptRows.index_copy_(1, kept, keptScores >= edgeCut);
            edgeMask.index_copy_(0, kept, keptRows);
        }

        // 3. Drop nodes left without outgoing (features, errors) or incoming (features) edges, until stable.
        var nodes = nodeMask.data<bool>().ToArray();
        while (true)
        {
            var hasOutgoing = edgeMask.any(0).data<bool>().ToArray();
            var hasIncoming = edgeMask.any(1).data<bool>().ToArray();
            bool changed = false;
            for (int i = 0; i < alwaysKeptFrom; i++)
            {
                bool keepNode = nodes[i] && hasOutgoing[i] && (i >= nFeatures || hasIncoming[i]);
                changed |= keepNode != nodes[i];
                nodes[i] = keepNode;
            }
            if (!changed) break;
            using var dropped = tensor(nodes).logical_not();
            edgeMask.index_put_(false, dropped);
            edgeMask.index_put_(false, TensorIndex.Colon, TensorIndex.Tensor(dropped));
        }

        return new PruneResult(nodes, edgeMask.MoveToOuterDisposeScope(), CumulativeScores(nodeInfluence));
    }

    /// <summary>Logit probabilities on the logit nodes, zero elsewhere.</summary>
    public static Tensor LogitWeights(AttributionGraph graph)
    {
        var weights = zeros(graph.NodeCount);
        weights.narrow(0, graph.LogitStart, graph.LogitTokens.Length).copy_(tensor(graph.LogitProbabilities));
        return weights;
    }

    /// <summary>Each node's share of the total influence held by nodes at least as influential (its rank fraction).</summary>
    private static float[] CumulativeScores(Tensor influence)
    {
        var (sorted, order) = influence.sort(descending: true);
        var cumulative = sorted.cumsum(0) / sorted.sum();
        var scores = zeros_like(influence);
        scores.index_put_(cumulative, order);
        return scores.data<float>().ToArray();
    }
}
