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
        var weights = Pruning.LogitWeights(graph);
        var normalized = GraphMath.NormalizeRows(graph.Adjacency);
        var influence = GraphMath.Influence(normalized, weights);
        int errors = graph.NLayers * graph.NPos;
        double tokenInfluence = influence.narrow(0, graph.TokenStart, graph.NPos).sum().item<float>();
        double errorInfluence = influence.narrow(0, graph.ErrorStart, errors).sum().item<float>();
        double replacement = tokenInfluence / (tokenInfluence + errorInfluence);

        var nonErrorFractions = 1 - normalized.narrow(1, graph.ErrorStart, errors).sum([-1]);
        var outputInfluence = influence + weights;
        double completeness = ((nonErrorFractions * outputInfluence).sum() / outputInfluence.sum()).item<float>();
        return new GraphScores(replacement, completeness);
    }
}
