namespace Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// The unpruned attribution graph. Nodes in the order of <see cref="Layout"/>: the selected features, the error
/// nodes (layer-major), the token nodes, the logit nodes. Only features and logits have inputs and only
/// non-logits have outputs, so the graph keeps the non-zero block of the square adjacency matrix:
/// <see cref="Rows"/>[r, s] is the direct effect of source node s on the node of row r (the features,
/// then the logits). Its size grows with the prompt's length, not with its square.
/// </summary>
public sealed class AttributionGraph : IDisposable
{
    public AttributionGraph(int[] inputTokens, int nLayers, ActiveFeatures active, long[] selectedFeatures,
        long[] logitTokens, float[] logitProbabilities, Tensor rows)
    {
        InputTokens = inputTokens;
        NLayers = nLayers;
        Active = active;
        SelectedFeatures = selectedFeatures;
        LogitTokens = logitTokens;
        LogitProbabilities = logitProbabilities;
        Rows = rows;
        Layout = new NodeLayout(selectedFeatures.Length, nLayers, inputTokens.Length, logitTokens.Length);
        if (rows.shape[0] != RowCount || rows.shape[1] != SourceCount)
            throw new ArgumentException($"rows are [{rows.shape[0]}, {rows.shape[1]}], expected [{RowCount}, {SourceCount}]: one per feature and logit, one column per node but the logits");
    }

    public int[] InputTokens { get; }

    public int NLayers { get; }

    public int NPos => InputTokens.Length;

    /// <summary>Every active feature of the prompt; <see cref="SelectedFeatures"/> index into it.</summary>
    public ActiveFeatures Active { get; }

    /// <summary>The active features that have rows in the graph, ascending.</summary>
    public long[] SelectedFeatures { get; }

    public long[] LogitTokens { get; }

    public float[] LogitProbabilities { get; }

    /// <summary>[<see cref="RowCount"/>, <see cref="SourceCount"/>], float32 on the CPU: row r holds the inputs of node <see cref="RowNode"/>(r).</summary>
    public Tensor Rows { get; }

    public NodeLayout Layout { get; }

    public int FeatureCount => Layout.FeatureCount;

    public int ErrorStart => Layout.ErrorStart;

    public int TokenStart => Layout.TokenStart;

    public int LogitStart => Layout.LogitStart;

    public int NodeCount => Layout.NodeCount;

    /// <summary>Nodes with inputs: the features, then the logits.</summary>
    public int RowCount => FeatureCount + LogitTokens.Length;

    /// <summary>Nodes with outputs, the columns of <see cref="Rows"/>: every node before the logits, in node order.</summary>
    public int SourceCount => LogitStart;

    /// <summary>The node whose inputs row <paramref name="row"/> holds.</summary>
    public int RowNode(int row) => row < FeatureCount ? row : LogitStart + row - FeatureCount;

    /// <summary>The row holding <paramref name="node"/>'s inputs, or -1 for errors and tokens (they have none).</summary>
    public int RowOf(int node) => node < FeatureCount ? node : node >= LogitStart ? FeatureCount + node - LogitStart : -1;

    public void Dispose() => Rows.Dispose();
}
