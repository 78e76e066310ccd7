namespace Attribution.Tracing;

using Attribution.Graphs;
using static TorchSharp.torch;

/// <summary>
/// Which features get rows next (docs/algorithm.md §6): rank every active feature by its partial influence
/// on the logits, estimated from the rows computed so far, and queue the best unvisited ones.
/// </summary>
public static class FeatureRanking
{
    /// <param name="rows">Rows so far: logit rows, then feature rows, [rows, RowLength].</param>
    /// <param name="rowNodes">Node index of each row: a feature's index, or a logit's node index.</param>
    public static long[] NextQueue(Tensor rows, long[] rowNodes, float[] logitProbabilities, bool[] visited, int count)
    {
        int nActive = visited.Length;
        int nodeCount = (int)rows.shape[1] + logitProbabilities.Length;
        using var probabilities = tensor(logitProbabilities);
        using var influence = GraphMath.PartialInfluences(rows, rowNodes, probabilities, nodeCount);
        using var featureInfluence = influence.narrow(0, 0, nActive);
        using var order = featureInfluence.argsort(descending: true);
        return order.data<long>().ToArray().Where(f => !visited[f]).Take(count).ToArray();
    }

    /// <summary>
    /// A queue reordered for batching: by node index, i.e. by layer. Rows do not depend on their
    /// batch mates, but a batch's backward pass runs only as deep as its deepest target, so
    /// grouping targets by layer makes most batches shallow (a queue in rank order mixes layers).
    /// </summary>
    public static long[] InBatchOrder(long[] queue) => [.. queue.Order()];
}
