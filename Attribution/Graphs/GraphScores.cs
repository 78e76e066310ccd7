namespace Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// How much of the model's computation the graph explains (circuit-tracer's graph scores).
/// Replacement: of the influence reaching the logits from tokens and errors, the share that
/// enters through tokens (and so flows through features). Completeness: the influence-weighted
/// share of each node's inputs that does not come straight from error nodes.
/// </summary>
public sealed record GraphScores(double Replacement, double Completeness)
{
    public static GraphScores Compute(AttributionGraph graph)
    {
        using var scope = NewDisposeScope();
        var logitWeights = tensor(graph.LogitProbabilities);
        var normalized = GraphMath.NormalizeRows(graph.Rows);
        var influence = Pruning.NodeInfluence(graph, normalized, logitWeights);
        int errors = graph.NLayers * graph.NPos;
        double tokenInfluence = influence.narrow(0, graph.TokenStart, graph.NPos).sum().item<float>();
        double errorInfluence = influence.narrow(0, graph.ErrorStart, errors).sum().item<float>();
        double replacement = tokenInfluence / (tokenInfluence + errorInfluence);

        // Only nodes with inputs (features, logits) can take a share of them from errors.
        var rowErrorFractions = normalized.narrow(1, graph.ErrorStart, errors).sum([-1]);
        var rowOutputInfluence = cat([influence.narrow(0, 0, graph.FeatureCount), logitWeights]);
        var outputInfluence = influence.sum() + logitWeights.sum();
        var errorTaken = (rowErrorFractions * rowOutputInfluence).sum();
        double completeness = ((outputInfluence - errorTaken) / outputInfluence).item<float>();
        return new GraphScores(replacement, completeness);
    }
}
