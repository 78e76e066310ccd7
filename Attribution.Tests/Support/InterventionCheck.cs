namespace Attribution.Tests.Support;

using Attribution.Graphs;
using Attribution.Tracing;
using static TorchSharp.torch;

/// <summary>
/// The check circuit-tracer runs on its own attribution (docs/algorithm.md §4): with attention patterns, norm
/// scales and MLP outputs frozen at their clean values, adding a source node's vector at its
/// write point must change every target (feature pre-activations, demeaned logits) by exactly
/// the matching column of the graph's rows.
/// </summary>
public sealed class InterventionCheck : IDisposable
{
    private readonly ReplacementModel replacement;
    private readonly AttributionGraph graph;
    private readonly PreparedPrompt prompt;
    private readonly Tensor demeanedLogits;
    private readonly Tensor baseline;

    /// <param name="logitDirections">
    /// The directions the logit rows should be the gradients of, [n_logits, d_model], computed by the
    /// test; null: the demeaned unembedding rows of the graph's logit tokens.
    /// </param>
    public InterventionCheck(ReplacementModel replacement, AttributionGraph graph, Tensor? logitDirections = null)
    {
        this.replacement = replacement;
        this.graph = graph;
        prompt = PreparedPrompt.Prepare(replacement, graph.InputTokens);
        var unembedding = replacement.Model.Unembedding;
        if (logitDirections is not null) demeanedLogits = logitDirections.to(unembedding.dtype).clone();
        else
        {
            using var ids = tensor(graph.LogitTokens);
            demeanedLogits = (unembedding.index_select(0, ids) - unembedding.mean([0], keepdim: true)).DetachFromDisposeScope();
        }
        baseline = Targets(null, new Tensor?[replacement.NLayers]);
    }

    /// <summary>Largest |measured − predicted| over the checked columns, relative to the column scale.</summary>
    public double WorstRelativeError { get; private set; }

    public int ColumnsChecked { get; private set; }

    public void CheckErrorColumn(int layer, int position)
    {
        var deltas = new Tensor?[replacement.NLayers];
        deltas[layer] = AtPosition(position, prompt.Errors[layer][position]);
        Check(graph.ErrorStart + layer * graph.NPos + position, null, deltas);
    }

    public void CheckTokenColumn(int position) =>
        Check(graph.TokenStart + position, AtPosition(position, prompt.TokenVectors[position]), new Tensor?[replacement.NLayers]);

    /// <summary>Doubles selected feature <paramref name="column"/>: adds a_s·W_dec[s] at every layer it writes.</summary>
    public void CheckFeatureColumn(int column)
    {
        long node = graph.SelectedFeatures[column];
        int layer = (int)graph.Active.Layers[node];
        int position = (int)graph.Active.Positions[node];
        var (start, _) = prompt.Active.RangeOfLayer(layer);
        var deltas = new Tensor?[replacement.NLayers];
        var vectors = prompt.ScaledDecoders[layer][node - start];   // [writes, d]
        for (int w = 0; w < vectors.shape[0]; w++) deltas[layer + w] = AtPosition(position, vectors[w]);
        Check(column, null, deltas);
    }

    private void Check(int column, Tensor? embeddingDelta, Tensor?[] writeDeltas)
    {
        using var scope = NewDisposeScope();
        var measured = Targets(embeddingDelta, writeDeltas) - baseline;
        var predicted = graph.Rows.select(1, column).to(measured.dtype);
        double scale = Math.Max(predicted.abs().max().item<double>(), measured.abs().max().item<double>()) + 1e-6;
        double error = (measured - predicted).abs().max().item<double>() / scale;
        WorstRelativeError = Math.Max(WorstRelativeError, error);
        ColumnsChecked++;
    }

    /// <summary>Every target's value in a frozen run with the given deltas: selected features' pre-activations, then demeaned logits.</summary>
    private Tensor Targets(Tensor? embeddingDelta, Tensor?[] writeDeltas)
    {
        using var scope = NewDisposeScope();
        using var run = new FrozenRun(prompt.Clean, replacement.Transcoders, writeDeltas);
        var embeddings = prompt.TokenVectors.unsqueeze(0);
        if (embeddingDelta is not null) embeddings = embeddings + embeddingDelta;
        using var noGrad = no_grad();
        replacement.Model.Forward(embeddings, run);

        var preActivations = new List<Tensor>();
        foreach (long node in graph.SelectedFeatures)
        {
            int layer = (int)graph.Active.Layers[node];
            var read = run.Reads[layer][0][graph.Active.Positions[node]].to(replacement.Transcoders.DType);
            preActivations.Add((read * prompt.EncoderRows[node]).sum().unsqueeze(0));
        }
        var logits = (run.FinalResidual[0][graph.NPos - 1].unsqueeze(0) * demeanedLogits).sum([1]);
        var all = preActivations.Count == 0 ? logits : cat([cat(preActivations, 0), logits], 0);
        return all.to(ScalarType.Float64).MoveToOuterDisposeScope().DetachFromDisposeScope();
    }

    private Tensor AtPosition(int position, Tensor vector)
    {
        var delta = zeros(1, graph.NPos, vector.shape[^1], vector.dtype, vector.device);
        delta[0, position] = vector;
        return delta;
    }

    public void Dispose()
    {
        prompt.Dispose();
        demeanedLogits.Dispose();
        baseline.Dispose();
    }
}
