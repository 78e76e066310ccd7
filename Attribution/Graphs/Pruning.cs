namespace Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// Which nodes and edges survive pruning, and each node's cumulative influence rank fraction.
/// <see cref="EdgeMask"/> is over the graph's <see cref="AttributionGraph.Rows"/>; when
/// <see cref="KeepsEveryPair"/>, every pair of kept nodes is a link, zero weights included (the edge
/// threshold fell to zero, as when a fraction of 1 must take the zero scores too).
/// </summary>
public sealed record PruneResult(bool[] NodeMask, Tensor EdgeMask, bool KeepsEveryPair, float[] CumulativeScores) : IDisposable
{
    public void Dispose() => EdgeMask.Dispose();
}

/// <summary>
/// Pruning (docs/algorithm.md §7, circuit-tracer's prune_graph): keep the fewest nodes carrying
/// <c>node_threshold</c> of the influence on the logits (tokens and logits always kept), then the
/// fewest edges carrying <c>edge_threshold</c> of the edge scores, then repeatedly drop features
/// and errors left without outgoing edges and features without incoming ones. Every step works on
/// the graph's rows (features and logits) and the columns of kept nodes, never on all N² pairs:
/// the N² matrix's other entries are zero, and its zeros are counted, not stored.
/// </summary>
public static class Pruning
{
    public static PruneResult Prune(AttributionGraph graph, double nodeThreshold, double edgeThreshold)
    {
        if (nodeThreshold is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(nodeThreshold), "node_threshold must be between 0 and 1");
        if (edgeThreshold is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(edgeThreshold), "edge_threshold must be between 0 and 1");

        using var scope = NewDisposeScope();
        int n = graph.NodeCount, nFeatures = graph.FeatureCount, nLogits = graph.LogitTokens.Length;
        int alwaysKeptFrom = graph.TokenStart;
        var logitWeights = tensor(graph.LogitProbabilities);

        // 1. Nodes by influence.
        var nodeInfluence = NodeInfluence(graph, GraphMath.NormalizeRows(graph.Rows), logitWeights);
        var nodeMask = nodeInfluence >= GraphMath.Threshold(nodeInfluence, nodeThreshold);
        nodeMask.narrow(0, alwaysKeptFrom, n - alwaysKeptFrom).fill_(true);

        // 2. Edges by score on the node-pruned matrix: Â_ij · (influence_i + w_i). Dropped nodes'
        //    rows and columns are zero there, so the scores are computed on the kept rows (kept
        //    features, every logit) and kept columns; every other pair counts as a zero score.
        var keptColumns = nodeMask.narrow(0, 0, graph.SourceCount).nonzero().squeeze(1);
        var keptFeatures = keptColumns.masked_select(keptColumns < nFeatures);
        long nKeptFeatures = keptFeatures.shape[0];
        var keptRows = cat([keptFeatures, arange(nFeatures, nFeatures + nLogits, ScalarType.Int64)]);
        var normalizedPruned = GraphMath.NormalizeRows(graph.Rows.index_select(0, keptRows).index_select(1, keptColumns));
        var keptRowWeights = cat([zeros(nKeptFeatures), logitWeights]);
        var prunedInfluence = GraphMath.Influence(normalizedPruned, keptRowWeights, feedback: nKeptFeatures);
        var rowFactors = cat([prunedInfluence.narrow(0, 0, nKeptFeatures), logitWeights]);
        var keptScores = normalizedPruned * rowFactors.unsqueeze(1);
        float edgeCut = GraphMath.Threshold(keptScores, edgeThreshold, implicitZeros: (long)n * n - keptScores.NumberOfElements);
        // A cut at zero keeps every pair, zeros included, as a comparison over the whole matrix would.
        bool keepsEveryPair = edgeCut <= 0;
        var edgeMask = keepsEveryPair ? ones(graph.RowCount, graph.SourceCount, ScalarType.Bool) : zeros(graph.RowCount, graph.SourceCount, ScalarType.Bool);
        if (!keepsEveryPair)
        {
            var keptRowMask = zeros(keptRows.shape[0], graph.SourceCount, ScalarType.Bool);
            keptRowMask.index_copy_(1, keptColumns, keptScores >= edgeCut);
            edgeMask.index_copy_(0, keptRows, keptRowMask);
        }

        // 3. Drop nodes left without outgoing (features, errors) or incoming (features) edges, until
        //    stable. With every pair kept, every node has both.
        var nodes = nodeMask.data<bool>().ToArray();
        while (!keepsEveryPair)
        {
            var hasOutgoing = edgeMask.any(0).data<bool>().ToArray();
            var hasIncoming = edgeMask.any(1).data<bool>().ToArray();
            var dropped = new List<long>();
            for (int i = 0; i < alwaysKeptFrom; i++)
            {
                bool keepNode = nodes[i] && hasOutgoing[i] && (i >= nFeatures || hasIncoming[i]);
                if (nodes[i] && !keepNode) dropped.Add(i);
                nodes[i] = keepNode;
            }
            if (dropped.Count == 0) break;
            using var droppedColumns = tensor(dropped.ToArray());
            using var droppedRows = droppedColumns.masked_select(droppedColumns < nFeatures);
            edgeMask.index_fill_(1, droppedColumns, false);
            edgeMask.index_fill_(0, droppedRows, false);
        }

        return new PruneResult(nodes, edgeMask.MoveToOuterDisposeScope(), keepsEveryPair, CumulativeScores(nodeInfluence));
    }

    /// <summary>Every node's influence on the logits ([nodes]; the logits' own is zero) from the graph's row-normalised rows.</summary>
    public static Tensor NodeInfluence(AttributionGraph graph, Tensor normalizedRows, Tensor logitWeights)
    {
        using var rowWeights = cat([zeros(graph.FeatureCount), logitWeights]);
        using var influence = GraphMath.Influence(normalizedRows, rowWeights, feedback: graph.FeatureCount);
        return cat([influence, zeros(graph.LogitTokens.Length)]);
    }

    /// <summary>Each node's share of the total influence held by nodes at least as influential (its rank fraction).</summary>
    private static float[] CumulativeScores(Tensor influence)
    {
        var (sorted, order) = influence.sort(descending: true);
        // A graph without influence has no ranks to share out: every node's fraction is zero, not 0/0.
        var cumulative = sorted.cumsum(0) / sorted.sum().clamp_min(float.Epsilon);
        var scores = zeros_like(influence);
        scores.index_put_(cumulative, order);
        return scores.data<float>().ToArray();
    }
}
