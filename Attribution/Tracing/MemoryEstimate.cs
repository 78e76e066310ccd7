namespace Attribution.Tracing;

using System.Globalization;
using Attribution.Graphs;
using Attribution.Models;
using TorchSharp;

/// <summary>
/// How many features fire per position and layer: on average (positions not silenced), and at each
/// layer's fullest position, averaged over layers (each write point contracts with its vectors
/// padded to its fullest position). Known only from running the transcoders; the serving layer measures it.
/// </summary>
public sealed record ActivityProfile(double MeanPerPositionLayer, double FullestPerPositionLayer)
{
    public static ActivityProfile Of(ActiveFeatures active, int positions, int layers, int silenced)
    {
        ArgumentNullException.ThrowIfNull(active);
        var perCell = new int[layers, positions];
        for (int i = 0; i < active.Count; i++) perCell[active.Layers[i], active.Positions[i]]++;
        double fullest = Enumerable.Range(0, layers).Average(l => Enumerable.Range(0, positions).Max(p => perCell[l, p]));
        return new(active.Count / (double)Math.Max(1, (positions - silenced) * layers), fullest);
    }

    /// <summary>The larger of each figure: what the estimates assume after seeing both.</summary>
    public ActivityProfile Max(ActivityProfile? other) => other is null ? this
        : new(Math.Max(MeanPerPositionLayer, other.MeanPerPositionLayer), Math.Max(FullestPerPositionLayer, other.FullestPerPositionLayer));
}

/// <summary>The shapes a graph's memory depends on: the model's, its transcoder set's, and its features' activity.</summary>
public sealed record MemoryShape(ModelConfig Model, int DTranscoder, bool CrossLayer, bool Skip, int ElementSize, int SilencedPositions, ActivityProfile Activity)
{
    public static MemoryShape Of(ReplacementModel replacement, ActivityProfile activity)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        var transcoders = replacement.Transcoders;
        return new(replacement.Model.Config, transcoders.DTranscoder, transcoders.IsCrossLayer, transcoders.HasSkip,
            replacement.Model.DType.ElementSize(), replacement.SilencedPositions, activity);
    }
}

/// <summary>
/// A graph's peak memory, estimated before it runs from the shapes alone (docs/performance.md,
/// "Memory estimate"), as named terms: what the process holds throughout (runtime, weights), what
/// the job holds from preparing to the end (the clean pass's attention patterns — the one term
/// quadratic in the prompt — the active features' vectors, the frozen pass a backward batch
/// replays, the vectors each write point contracts with), and the larger of what preparing holds
/// only while it runs (every layer's dense activations, the vectors being gathered) and what
/// attribution adds (the rows, the graph).
/// </summary>
public sealed record MemoryEstimate(IReadOnlyList<(string Term, long Bytes)> Terms, int Positions, long ActiveFeatures, long SelectedFeatures)
{
    /// <summary>[b, n, d] tensors the batched frozen pass keeps per layer for its backward (measured on the mid model: ~5).</summary>
    public const int FrozenPassTensorsPerLayer = 5;

    /// <summary>What the process holds before any model: the .NET runtime and libtorch (measured: ~0.25 GB on the CPU).</summary>
    public const long RuntimeBytes = 250_000_000;

    public long PeakBytes => Terms.Sum(t => t.Bytes);

    public double PeakGb => PeakBytes / 1e9;

    /// <summary>This estimate with one more term held throughout (a host's own memory).</summary>
    public MemoryEstimate With(string term, long bytes) => this with { Terms = [.. Terms, (term, bytes)] };

    /// <summary>E.g. "9.1 GB (weights 0.6, attention patterns 1.6, …)".</summary>
    public string Describe() => $"{Gb(PeakBytes)} GB ({string.Join(", ", Terms.Select(t => $"{t.Term} {Gb(t.Bytes)}"))})";

    private static string Gb(long bytes) => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture);

    /// <param name="tracesAttention">Head loadings or QK tracing follow attribution (docs/algorithm.md §10–11): their passes are added.</param>
    /// <param name="tracesQk">QK tracing too: the parts it keeps of each traced score are added.</param>
    public static MemoryEstimate For(MemoryShape shape, int positions, AttributionSettings settings, bool tracesAttention = false, bool tracesQk = false)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(settings);
        var m = shape.Model;
        long n = positions, layers = m.NLayers, d = m.DModel, e = shape.ElementSize;
        double writesPerFeature = shape.CrossLayer ? (layers + 1) / 2.0 : 1;

        // Features firing: the measured rate at every position but the silenced ones, at most all of them.
        long active = (long)Math.Min(shape.Activity.MeanPerPositionLayer * Math.Max(0, n - shape.SilencedPositions) * layers, (double)n * layers * shape.DTranscoder);
        long selected = Math.Min(settings.MaxFeatureNodes ?? active, active);
        long logits = settings.Targets?.Count ?? settings.MaxNLogits;
        long errorsAndTokens = layers * n + n;
        long rowLength = active + errorsAndTokens;
        long batch = AttributionContext.BackwardBatch(settings.BatchSize, positions);

        long modelWeights = (m.TieWordEmbeddings ? 1 : 2) * (long)m.VocabSize * d
            + layers * (2 * d * m.NHeads * m.HeadDim + 2 * d * m.NKvHeads * m.HeadDim + 3 * d * m.DMlp);
        long transcoderWeights = (long)(layers * d * shape.DTranscoder * (1 + writesPerFeature)) + (shape.Skip ? layers * d * d : 0);
        long weights = (modelWeights + transcoderWeights) * e;

        long patterns = layers * m.NHeads * n * n * e;
        long prompt = (long)(active * d * (1 + writesPerFeature) * e) + 3 * layers * n * d * e;   // encoder and scaled decoder rows; errors, clean reads and writes
        long frozenPass = batch * n * layers * d * e * FrozenPassTensorsPerLayer;
        long contraction = (long)(layers * n * (shape.Activity.FullestPerPositionLayer * writesPerFeature + 1) * d * e);   // the padded vectors and the error
        // Preparing holds every layer's dense activations and gathers the active features' vectors (a second copy while they are joined).
        long preparing = layers * n * shape.DTranscoder * e + (long)(active * d * (1 + writesPerFeature) * e);
        // Rows: compact (the graph's columns) when one round selects them all, else whole; logit rows whole.
        var plan = AttributionPlan.For((int)Math.Min(active, int.MaxValue), settings);
        long featureRowLength = plan.SelectsInFirstRound ? selected + errorsAndTokens : rowLength;
        long rows = (selected * featureRowLength + logits * rowLength) * 4 * (plan.SelectsInFirstRound ? 1 : 2);   // ranking reads a copy of whole rows
        long graph = (selected + logits) * (selected + errorsAndTokens) * 4;

        (string, long)[] held = [("runtime", RuntimeBytes), ("weights", weights), ("attention patterns", patterns), ("prompt", prompt),
            ("frozen pass", frozenPass), ("contraction", contraction)];
        List<(string, long)> terms = rows + graph >= preparing ? [.. held, ("rows", rows), ("graph", graph)] : [.. held, ("preparing", preparing)];
        if (tracesAttention)
        {
            // Counted on top (they run after attribution has let its passes go, so this errs high): the head
            // gradient pass (a frozen pass with a gradient leaf on every layer's heads, and one batch's
            // gradients there) and a propagation pass (its inputs, reads and recorded attention inputs).
            long heads = 2L * layers * batch * n * m.NHeads * m.HeadDim * e;
            long propagation = (batch + 1) * n * d * e * (3 * layers + 1);
            // × 2: the measured peaks ran higher than these passes (the links' loadings, tensors of many
            // shapes that the allocator's kept pages do not all fit): the mid model's 5,000-feature graph
            // peaked 0.5 GB above the passes' sum (docs/performance.md, "Head loadings and QK tracing").
            terms.Add(("attention tracing", 2 * (frozenPass + heads + propagation)));
        }
        // Every listed node's part of both sides of each traced score (at most QkAttributions.MaxScores).
        if (tracesQk) terms.Add(("qk parts", 2L * QkAttributions.MaxScores * (selected + errorsAndTokens) * m.HeadDim * e));
        return new MemoryEstimate(terms, positions, active, selected);
    }
}
