namespace Attribution.Graphs;

/// <summary>What a node of an attribution graph stands for.</summary>
public enum NodeKind
{
    Feature,
    Error,
    Token,
    Logit,
}

/// <summary>
/// A node's place in its kind: the feature's index among the graph's features, the error's (layer,
/// position), the token's position, or the logit's rank among the targets.
/// </summary>
public readonly record struct NodePlace(NodeKind Kind, int Index, int Layer, int Position);

/// <summary>
/// The node order every part of the method shares (docs/algorithm.md §3): the features, then one
/// error node per (layer, position), layer-major, then one token node per position, then the logit
/// targets. Attribution rows use it with every active feature and no logits (a row's columns are the
/// sources); the graph uses it with its selected features and its logit targets.
/// </summary>
public readonly record struct NodeLayout(int FeatureCount, int NLayers, int NPos, int LogitCount)
{
    public int ErrorStart => FeatureCount;

    public int TokenStart => ErrorStart + NLayers * NPos;

    public int LogitStart => TokenStart + NPos;

    public int NodeCount => LogitStart + LogitCount;

    public int ErrorNode(int layer, int position) => ErrorStart + layer * NPos + position;

    /// <summary>Which node <paramref name="node"/> is.</summary>
    public NodePlace Locate(int node)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(node);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(node, NodeCount);
        if (node < ErrorStart) return new NodePlace(NodeKind.Feature, node, -1, -1);
        if (node < TokenStart)
        {
            var (layer, position) = Math.DivRem(node - ErrorStart, NPos);
            return new NodePlace(NodeKind.Error, node - ErrorStart, layer, position);
        }
        if (node < LogitStart) return new NodePlace(NodeKind.Token, node - TokenStart, -1, node - TokenStart);
        return new NodePlace(NodeKind.Logit, node - LogitStart, NLayers + 1, NPos - 1);
    }
}
