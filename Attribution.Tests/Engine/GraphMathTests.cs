namespace Attribution.Tests.Engine;

using Attribution.Graphs;
using Attribution.Tracing;
using static TorchSharp.torch;

/// <summary>Influence, thresholds, pruning and scores on hand-made graphs whose answers are worked out by hand.</summary>
public class GraphMathTests
{
    [Fact]
    public void Influence_sums_every_path_of_the_row_normalised_matrix()
    {
        // token → feature (2), feature → logit (3), token → logit (1); rows are targets.
        using var adjacency = tensor(new float[,] { { 0, 0, 0 }, { 2, 0, 0 }, { 1, 3, 0 } });
        using var weights = tensor(new float[] { 0, 0, 1 });
        using var normalized = GraphMath.NormalizeRows(adjacency);
        using var influence = GraphMath.Influence(normalized, weights, feedback: 3);
        // wÂ = [1/4, 3/4, 0]; wÂ² = 3/4 · row(feature) = [3/4, 0, 0]; wÂ³ = 0.
        Assert.Equal(new[] { 1.0f, 0.75f, 0f }, influence.data<float>().ToArray());
    }

    [Fact]
    public void Influence_of_a_cycle_is_refused()
    {
        using var cycle = tensor(new float[,] { { 0, 1 }, { 1, 0 } });
        using var weights = tensor(new float[] { 1, 0 });
        Assert.Throws<InvalidOperationException>(() => GraphMath.Influence(cycle, weights, feedback: 2, maxIterations: 50));
    }

    [Theory]
    [InlineData(0.0, 4f)]    // nothing needed: only the largest score survives
    [InlineData(0.5, 4f)]
    [InlineData(0.75, 2f)]
    [InlineData(0.76, 1f)]
    [InlineData(1.0, 1f)]    // everything that carries influence, but not the zeros
    public void Threshold_keeps_the_fewest_scores_reaching_the_fraction(double fraction, float expected)
    {
        using var scores = tensor(new float[] { 1, 0, 4, 1, 0, 2 });   // sorted: 4 2 1 1 0 0; shares .5 .75 .875 1 1 1
        Assert.Equal(expected, GraphMath.Threshold(scores, fraction));
    }

    [Theory]
    [InlineData(0.98, 3.0, true)]    // heavy-tailed, as edge scores: the head is sorted alone
    [InlineData(0.8, 3.0, true)]
    [InlineData(0.98, 0.1, false)]   // nearly flat: most scores are needed, so all are sorted
    [InlineData(0.5, 1.0, true)]
    public void Threshold_of_a_large_score_set_equals_sorting_all_of_it(double fraction, double spread, bool sortsHeadOnly)
    {
        using var generator = new TorchSharp.torch.Generator(7);
        long n = GraphMath.HeadSortFrom * 3;
        using var scores = (randn([n], generator: generator) * spread).exp_();
        scores.narrow(0, 0, n / 4).zero_();   // zeros, as most of an edge matrix
        using var positive = scores.masked_select(scores > 0);
        var sorted = positive.sort(descending: true).Values;
        var shares = sorted.cumsum(0) / positive.sum();
        long index = searchsorted(shares, tensor(new[] { (float)fraction })).item<long>();
        Assert.Equal(sorted[index].item<float>(), GraphMath.Threshold(scores, fraction));
        using var head = GraphMath.HeadAboveFraction(positive, fraction);
        Assert.Equal(sortsHeadOnly, head is not null);
        if (head is not null) Assert.True(head.shape[0] < positive.shape[0] / 2 && head.shape[0] > index, $"head of {head.shape[0]} for index {index}");
    }

    [Fact]
    public void Partial_influences_follow_rows_back_from_the_logits()
    {
        // Columns: f0, f1, e, t (no logit column); rows: the logit, then f0.
        using var rows = tensor(new float[,] { { 6, 3, 1, 0 }, { 0, 0, 0, 4 } });
        using var probabilities = tensor(new float[] { 1 });
        using var influence = GraphMath.PartialInfluences(rows, [4, 0], probabilities, nodeCount: 5);
        var values = influence.data<float>().ToArray();
        Assert.Equal(0.6f, values[0], 5);
        Assert.Equal(0.3f, values[1], 5);
        Assert.Equal(0.1f, values[2], 5);
        Assert.Equal(0.6f, values[3], 5);      // only through f0, whose row is known
        Assert.Equal(0f, values[4]);
    }

    [Fact]
    public void Partial_influences_equal_the_walk_over_all_columns()
    {
        // The reference walk of circuit-tracer: prod ← prod[row nodes] · normalised rows, over every column.
        manual_seed(3);
        int nActive = 40, other = 12, nLogits = 3, columns = nActive + other, nodeCount = columns + nLogits;
        long[] features = [5, 9, 17, 22, 30, 31];
        long[] rowNodes = [columns, columns + 1, columns + 2, .. features];
        using var rows = randn(rowNodes.Length, columns);
        // Features only receive from earlier nodes: keep the walk acyclic as a real graph is.
        for (int r = nLogits; r < rowNodes.Length; r++) rows[r].narrow(0, (int)rowNodes[r], nActive - (int)rowNodes[r]).zero_();
        using var probabilities = tensor(new float[] { 0.5f, 0.3f, 0.2f });

        using var normalized = GraphMath.NormalizeRows(rows, 1e-8);
        var prod = zeros(nodeCount);
        prod.narrow(0, columns, nLogits).copy_(probabilities);
        var expected = zeros(nodeCount);
        using var rowIndex = tensor(rowNodes);
        for (int i = 0; i < 128; i++)
        {
            var next = zeros(nodeCount);
            next.narrow(0, 0, columns).copy_(prod.index_select(0, rowIndex).unsqueeze(0).matmul(normalized).squeeze(0));
            prod = next;
            if (prod.count_nonzero().item<long>() == 0) break;
            expected.add_(prod);
        }

        using var actual = GraphMath.PartialInfluences(rows, rowNodes, probabilities, nodeCount);
        Assert.True(actual.allclose(expected, rtol: 1e-5, atol: 1e-7), "the row-block walk must equal the full walk");
    }

    [Fact]
    public void Feature_ranking_queues_the_most_influential_unvisited_features()
    {
        using var rows = tensor(new float[,] { { 1, 6, 3, 0 } });       // logit row: f1 > f2 > f0
        var queue = FeatureRanking.NextQueue(rows, [4], [1f], visited: [false, false, true], count: 2);
        Assert.Equal(new long[] { 1, 0 }, queue);
    }

    /// <summary>
    /// One layer, two positions. Features f0, f1, f2 at position 1; errors e0, e1; tokens t0, t1; one logit.
    /// logit ← f0 (6), f1 (3), e1 (1); f0 ← t1 (4); f1 ← t0 (1), t1 (1); f2 ← t1 (1).
    /// Node influence: f0 .6, f1 .3, f2 0, e0 0, e1 .1, t0 .15, t1 .75.
    /// </summary>
    public static AttributionGraph HandMadeGraph()
    {
        var active = new ActiveFeatures([0, 0, 0], [1, 1, 1], [10, 20, 30], [1.5f, 2.5f, 0.5f]);
        var a = new float[8, 8];
        const int f0 = 0, f1 = 1, f2 = 2, e1 = 4, t0 = 5, t1 = 6, logit = 7;
        a[logit, f0] = 6; a[logit, f1] = 3; a[logit, e1] = 1;
        a[f0, t1] = 4; a[f1, t0] = 1; a[f1, t1] = 1; a[f2, t1] = 1;
        return new AttributionGraph([2, 7], nLayers: 1, active, [0, 1, 2], [42], [1f], RowsOf(a, nFeatures: 3, nLogits: 1));
    }

    [Fact]
    public void Pruning_keeps_influential_nodes_then_edges_then_drops_dangling_features()
    {
        using var graph = HandMadeGraph();
        // Nodes: cumulative shares .39 (t1) .71 (f0) .87 (f1) → threshold .3 keeps f0, f1 (+ tokens, logit).
        // Edge scores on the pruned graph: logit←f0 .667, f0←t1 .667, logit←f1 .333, f1←t0 .167, f1←t1 .167.
        // At 0.8 the edge threshold is .333: f1 loses its inputs and is dropped, and with it logit←f1.
        using var pruned = Pruning.Prune(graph, nodeThreshold: 0.8, edgeThreshold: 0.8);
        Assert.Equal(new[] { true, false, false, false, false, true, true, true }, pruned.NodeMask);
        var edges = pruned.EdgeMask.nonzero().data<long>().ToArray();
        Assert.Equal(new long[] { 0, 6, 3, 0 }, edges);    // (f0 ← t1), (logit ← f0): the logit is row 3 of the rows
        Assert.False(pruned.KeepsEveryPair);
        Assert.Equal(1.35 / 1.9, pruned.CumulativeScores[0], 5);
    }

    [Fact]
    public void Pruning_with_a_loose_edge_threshold_keeps_every_path()
    {
        using var graph = HandMadeGraph();
        using var pruned = Pruning.Prune(graph, nodeThreshold: 0.8, edgeThreshold: 0.85);
        Assert.Equal(new[] { true, true, false, false, false, true, true, true }, pruned.NodeMask);
        Assert.Equal(5, pruned.EdgeMask.count_nonzero().item<long>());
    }

    [Fact]
    public void Edge_threshold_zero_keeps_only_the_strongest_edges()
    {
        using var graph = HandMadeGraph();
        using var pruned = Pruning.Prune(graph, nodeThreshold: 0.8, edgeThreshold: 0.0);
        Assert.Equal(new[] { true, false, false, false, false, true, true, true }, pruned.NodeMask);
        Assert.Equal(2, pruned.EdgeMask.count_nonzero().item<long>());
    }

    [Theory]
    [InlineData(-0.1, 0.5)]
    [InlineData(0.5, 1.1)]
    public void Thresholds_outside_zero_to_one_are_refused(double node, double edge)
    {
        using var graph = HandMadeGraph();
        Assert.Throws<ArgumentOutOfRangeException>(() => Pruning.Prune(graph, node, edge));
    }

    [Fact]
    public void Graph_scores_match_the_hand_computation()
    {
        using var graph = HandMadeGraph();
        var scores = GraphScores.Compute(graph);
        Assert.Equal(0.9, scores.Replacement, 4);             // tokens .9 vs errors .1
        Assert.Equal(2.8 / 2.9, scores.Completeness, 4);      // only the logit row draws .1 from an error
    }

    /// <summary>The graph's rows of a square adjacency matrix whose error and token rows and logit columns are zero (checked).</summary>
    public static Tensor RowsOf(float[,] adjacency, int nFeatures, int nLogits)
    {
        int n = adjacency.GetLength(0);
        using var square = tensor(adjacency);
        using var rowIndex = tensor(Enumerable.Range(0, nFeatures).Concat(Enumerable.Range(n - nLogits, nLogits)).Select(i => (long)i).ToArray());
        using var withoutRows = square.narrow(0, nFeatures, n - nFeatures - nLogits);
        using var logitColumns = square.narrow(1, n - nLogits, nLogits);
        Assert.True(withoutRows.count_nonzero().item<long>() == 0 && logitColumns.count_nonzero().item<long>() == 0, "errors and tokens have no inputs, logits no outputs");
        using var rows = square.index_select(0, rowIndex);
        return rows.narrow(1, 0, n - nLogits).contiguous();
    }
}
