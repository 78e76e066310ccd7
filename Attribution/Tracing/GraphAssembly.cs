namespace Attribution.Tracing;

using Attribution.Graphs;
using static TorchSharp.torch;

/// <summary>
/// Phase 5: from rows keyed by node to the square adjacency over the final node list
/// (selected features in order, errors, tokens, logits), as circuit-tracer packages its graph.
/// </summary>
public static class GraphAssembly
{
    /// <param name="logitRows">[n_logits, RowLength].</param>
    /// <param name="featureRows">[n_selected, RowLength], row i belonging to feature <paramref name="featureNodes"/>[i].</param>
    public static AttributionGraph Assemble(int[] tokens, int nLayers, ActiveFeatures active, long[] logitTokens, float[] logitProbabilities,
        Tensor logitRows, Tensor featureRows, long[] featureNodes)
    {
        using var scope = NewDisposeScope();
        int nActive = active.Count, nLogits = logitTokens.Length;
        var selected = featureNodes.Order().ToArray();
        int nonFeatureColumns = (int)logitRows.shape[1] - nActive;
        int nodeCount = selected.Length + nonFeatureColumns + nLogits;

        // Keep the columns of selected features and every non-feature node.
        var columns = tensor(selected.Concat(Enumerable.Range(nActive, nonFeatureColumns).Select(i => (long)i)).ToArray());
        var adjacency = zeros(nodeCount, nodeCount);

        // Feature rows sorted into feature order.
        var rowOrder = tensor(featureNodes.Select((node, row) => (node, row)).OrderBy(p => p.node).Select(p => (long)p.row).ToArray());
        if (selected.Length > 0)
            adjacency.narrow(0, 0, selected.Length).narrow(1, 0, columns.shape[0]).copy_(featureRows.index_select(0, rowOrder).index_select(1, columns));
        adjacency.narrow(0, nodeCount - nLogits, nLogits).narrow(1, 0, columns.shape[0]).copy_(logitRows.index_select(1, columns));

        return new AttributionGraph(tokens, nLayers, active, selected, logitTokens, logitProbabilities,
            adjacency.MoveToOuterDisposeScope().DetachFromDisposeScope());
    }
}
