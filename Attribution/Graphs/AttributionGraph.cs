namespace Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// The unpruned attribution graph. Nodes in the order of <see cref="Layout"/>: the selected features, the error
/// nodes (layer-major), the token nodes, the logit nodes. <see cref="Adjacency"/>[target, source]
/// is the direct effect of source on target; rows of errors and tokens are zero, as are the
/// columns of logits.
/// </summary>
public sealed class AttributionGraph : IDisposable
{
    public AttributionGraph(int[] inputTokens, int nLayers, ActiveFeatures active, long[] selectedFeatures,
        long[] logitTokens, float[] logitProbabilities, Tensor adjacency)
    {
        InputTokens = inputTokens;
        NLayers = nLayers;
        Active = active;
        SelectedFeatures = selectedFeatures;
        LogitTokens = logitTokens;
        LogitProbabilities = logitProbabilities;
        Adjacency = adjacency;
        Layout = new NodeLayout(selectedFeatures.Length, nLayers, inputTokens.Length, logitTokens.Length);
        if (adjacency.shape[0] != NodeCount || adjacency.shape[1] != NodeCount)
            throw new ArgumentException($"adjacency is [{adjacency.shape[0]}, {adjacency.shape[1]}], expected {NodeCount} nodes");
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

    /// <summary>[nodes, nodes], float32 on the CPU.</summary>
    public Tensor Adjacency { get; }

    public NodeLayout Layout { get; }

    public int FeatureCount => Layout.FeatureCount;

    public int ErrorStart => Layout.ErrorStart;

    public int TokenStart => Layout.TokenStart;

    public int LogitStart => Layout.LogitStart;

    public int NodeCount => Layout.NodeCount;

    public void Dispose() => Adjacency.Dispose();
}
