namespace Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// The graph math of docs/algorithm.md §6–§7 as pure functions on tensors: row normalisation, influence
/// as the sum of matrix powers, score thresholds, partial influences for feature ranking.
/// </summary>
public static class GraphMath
{
    /// <summary>|A| with each row scaled to sum to 1 (empty rows stay zero).</summary>
    public static Tensor NormalizeRows(Tensor matrix, double minimumSum = 1e-10)
    {
        var absolute = matrix.abs();
        using var sums = absolute.sum([1], keepdim: true).clamp_min(minimumSum);
        return absolute.div_(sums);
    }

    /// <summary>
    /// w·(Â + Â² + …): how much each node influences the weighted targets. Â is nilpotent for an
    /// attribution graph (edges only go forward through layers), so the series ends. Â is given by
    /// its rows: [nodes with inputs, nodes with outputs], where the first <paramref name="feedback"/>
    /// columns are the nodes of the first <paramref name="feedback"/> rows (a graph's features; a
    /// square matrix passes its size). Only those nodes pass influence on, so each step multiplies
    /// their share by those rows, and the matrix never needs the all-zero rows of errors and tokens.
    /// </summary>
    /// <param name="normalized">Row-normalised [rows, columns].</param>
    /// <param name="rowWeights">[rows]: the weight of each row's node (the logit probabilities).</param>
    /// <returns>[columns]: the influence of every node with outputs.</returns>
    public static Tensor Influence(Tensor normalized, Tensor rowWeights, long feedback, int maxIterations = 1000)
    {
        using var scope = NewDisposeScope();
        var feedbackRows = normalized.narrow(0, 0, feedback);
        var current = rowWeights.unsqueeze(0).matmul(normalized).squeeze(0);
        var total = current.clone();
        for (int i = 0; current.narrow(0, 0, feedback).count_nonzero().item<long>() > 0; i++)
        {
            if (i >= maxIterations)
                throw new InvalidOperationException($"influence did not converge after {maxIterations} iterations: the graph has a cycle");
            using var carried = current.narrow(0, 0, feedback).unsqueeze(0);
            var next = carried.matmul(feedbackRows).squeeze(0);
            current.Dispose();
            current = next;
            total.add_(current);
        }
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The score above which the largest scores carry <paramref name="fraction"/> of the total:
    /// the first sorted score where the cumulative share reaches the fraction (the last at 1.0).
    /// Scores are non-negative; only the positive ones are sorted (an N² edge matrix is mostly
    /// zeros), with the same answer as sorting all: when rounding keeps the share just below the
    /// fraction at the last positive score, the threshold falls to the zeros, as it would there.
    /// Large score sets sort only their head (<see cref="HeadAboveFraction"/>): the scores carrying
    /// the fraction are usually a small part of them (~1% of a pruned graph's edge scores).
    /// </summary>
    /// <param name="implicitZeros">Zero scores left out of <paramref name="scores"/> (a pruned matrix's dropped rows and columns).</param>
    public static float Threshold(Tensor scores, double fraction, long implicitZeros = 0)
    {
        using var scope = NewDisposeScope();
        var flat = scores.flatten();
        var positive = flat.masked_select(flat > 0);
        long zeros = flat.shape[0] - positive.shape[0] + implicitZeros;
        if (positive.shape[0] == 0) return 0f;
        // A fraction of 1 keeps every positive score. The cumulative share at the last score is 1 only
        // up to rounding, and a search for 1 would otherwise fall to the zeros by chance.
        if (fraction >= 1) return positive.min().item<float>();
        var total = positive.sum();
        using var target = tensor(new[] { (float)fraction });
        if (positive.shape[0] >= HeadSortFrom && HeadAboveFraction(positive, fraction) is { } head)
        {
            // The sorted head is the sorted whole's prefix (every score ≥ its cut-off), so its
            // cumulative shares are the whole's; the answer is in the head when its shares reach the fraction.
            var sortedHead = head.sort(descending: true).Values;
            var headShares = sortedHead.cumsum(0) / total;
            long at = searchsorted(headShares, target).item<long>();
            if (at < sortedHead.shape[0]) return sortedHead[at].item<float>();
        }
        var sorted = positive.sort(descending: true).Values;
        var cumulative = sorted.cumsum(0) / total;
        long index = searchsorted(cumulative, target).item<long>();
        if (index >= sorted.shape[0]) return zeros > 0 ? 0f : sorted[sorted.shape[0] - 1].item<float>();
        return sorted[index].item<float>();
    }

    /// <summary>Score sets at least this large sort only their head in <see cref="Threshold"/>.</summary>
    public const long HeadSortFrom = 1 << 20;

    /// <summary>
    /// The scores at or above a cut-off that holds a little more than <paramref name="fraction"/> of
    /// the total, chosen from an evenly strided sample of ~65k scores; null when the cut-off would
    /// keep most of them anyway. <see cref="Threshold"/> checks the head really reaches the fraction.
    /// </summary>
    internal static Tensor? HeadAboveFraction(Tensor positive, double fraction)
    {
        long stride = Math.Max(1, positive.shape[0] / 65536);
        var sample = positive.slice(0, 0, positive.shape[0], stride).sort(descending: true).Values;
        var sampleShares = sample.cumsum(0) / sample.sum();
        double margin = Math.Min(1.0, fraction + (1 - fraction) / 2);   // 0.98 → the sample's 99%
        using var marginTarget = tensor(new[] { (float)margin });
        long at = Math.Min(searchsorted(sampleShares, marginTarget).item<long>(), sample.shape[0] - 1);
        if (at > sample.shape[0] / 2) return null;
        return positive.masked_select(positive >= sample[at]);
    }

    /// <summary>
    /// Influence of every node on the logits estimated from the rows computed so far (docs/algorithm.md §6):
    /// rows normalised by their |·| sums, the walk starts at the logit probabilities and follows
    /// each row's node back to its sources until nothing remains. Only nodes with rows pass the
    /// walk on, so it runs on the small [rows, rows] block and touches the full rows once at the
    /// end: influence = (Σ_k v_k / rowsum) · |rows|, with v_{k+1} = v_k · M.
    /// </summary>
    /// <param name="rows">[rows, columns] with columns = every node but the logits.</param>
    /// <param name="rowNodes">The node of each row (features: their index, logits: their node index ≥ columns).</param>
    /// <param name="nodeCount">All nodes, logits included.</param>
    public static Tensor PartialInfluences(Tensor rows, long[] rowNodes, Tensor logitProbabilities, int nodeCount, int maxIterations = 128)
    {
        using var scope = NewDisposeScope();
        long columns = rows.shape[1];
        var absolute = rows.abs();
        var rowSums = absolute.sum([1]).clamp_min(1e-8);

        // M[i, j]: the share of row i's inputs that comes from the node of row j (zero for logit rows j).
        var walkable = Enumerable.Range(0, rowNodes.Length).Where(i => rowNodes[i] < columns).Select(i => (long)i).ToArray();
        var step = zeros(rowNodes.Length, rowNodes.Length);
        if (walkable.Length > 0)
        {
            var walkableRows = tensor(walkable);
            var walkableColumns = tensor(walkable.Select(i => rowNodes[i]).ToArray());
            step.index_copy_(1, walkableRows, absolute.index_select(1, walkableColumns) / rowSums.unsqueeze(1));
        }

        var reach = zeros(rowNodes.Length);
        var logitRows = tensor(Enumerable.Range(0, rowNodes.Length).Where(i => rowNodes[i] >= columns).Select(i => (long)i).ToArray());
        var logitIndex = tensor(logitRows.data<long>().ToArray().Select(i => rowNodes[i] - columns).ToArray());
        reach.index_copy_(0, logitRows, logitProbabilities.index_select(0, logitIndex));

        var walked = reach.clone();
        for (int i = 0; ; i++)
        {
            if (i >= maxIterations) throw new InvalidOperationException("partial influences did not converge");
            reach = reach.unsqueeze(0).matmul(step).squeeze(0);
            if (reach.count_nonzero().item<long>() == 0) break;
            walked.add_(reach);
        }

        var influence = zeros(nodeCount);
        influence.narrow(0, 0, columns).copy_((walked / rowSums).unsqueeze(0).matmul(absolute).squeeze(0));
        return influence.MoveToOuterDisposeScope();
    }
}
