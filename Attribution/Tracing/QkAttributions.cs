namespace Attribution.Tracing;

using Attribution.Graphs;
using static TorchSharp.torch;

/// <summary>An attention score to explain: head (layer, head) at query position q looking at key position k.</summary>
public readonly record struct QkScore(int Layer, int Head, int QueryPosition, int KeyPosition);

/// <summary>
/// One pre-softmax attention score split by the nodes on each side (docs/algorithm.md §11). With
/// norms frozen, the head's query at q is an affine function of the layer's residual stream at q,
/// which is the sum of what every node put there (through frozen attention and skip paths); the
/// same holds for the key at k. So query = Σᵢ Qᵢ + Q_unlisted + Q_constant, key = Σⱼ Kⱼ + K_unlisted
/// + K_constant, and the score, <see cref="Scale"/> · query · key, is the sum of the pair terms
/// Scale · Qᵢ · Kⱼ over every pair of parts. Rows of <see cref="Query"/> and <see cref="Key"/> are the
/// listed <see cref="Sources"/> (prompt layout); "unlisted" is every active feature not listed;
/// "constant" is what no node carries (decoder and projection biases, the silenced positions' MLP outputs).
/// </summary>
public sealed class QkDecomposition : IDisposable
{
    internal QkDecomposition(QkScore at, int[] sources, double scale, Tensor[] parts)
    {
        At = at;
        Sources = sources;
        Scale = scale;
        (Query, QueryUnlisted, QueryConstant, FullQuery, Key, KeyUnlisted, KeyConstant, FullKey) =
            (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7]);
    }

    public QkScore At { get; }

    /// <summary>The listed source nodes, in prompt layout (active features, errors, tokens): row i of <see cref="Query"/> and <see cref="Key"/>.</summary>
    public int[] Sources { get; }

    public double Scale { get; }

    /// <summary>Each listed source's part of the query, [sources, head_dim], in the model's dtype (the other parts: float64).</summary>
    public Tensor Query { get; }

    /// <summary>Each listed source's part of the key, [sources, head_dim], in the model's dtype.</summary>
    public Tensor Key { get; }

    public Tensor QueryUnlisted { get; }

    public Tensor KeyUnlisted { get; }

    public Tensor QueryConstant { get; }

    public Tensor KeyConstant { get; }

    /// <summary>The query and key of the clean run (with the frozen norms: the same values).</summary>
    public Tensor FullQuery { get; }

    public Tensor FullKey { get; }

    /// <summary>The pre-softmax score, before any soft cap.</summary>
    public double Score => Scale * FullQuery.dot(FullKey).item<double>();

    /// <summary>Each listed source's query-side marginal: its part of the query against the whole key, [sources].</summary>
    public double[] QueryMarginals() => (Query.to(ScalarType.Float64).matmul(FullKey) * Scale).data<double>().ToArray();

    /// <summary>Each listed source's key-side marginal: the whole query against its part of the key, [sources].</summary>
    public double[] KeyMarginals() => (Key.to(ScalarType.Float64).matmul(FullQuery) * Scale).data<double>().ToArray();

    public double QueryUnlistedMarginal => Scale * QueryUnlisted.dot(FullKey).item<double>();

    public double QueryConstantMarginal => Scale * QueryConstant.dot(FullKey).item<double>();

    public double KeyUnlistedMarginal => Scale * FullQuery.dot(KeyUnlisted).item<double>();

    public double KeyConstantMarginal => Scale * FullQuery.dot(KeyConstant).item<double>();

    /// <summary>The pair term of listed sources i (query side) and j (key side).</summary>
    public double Pair(int i, int j) => Scale * Query[i].to(ScalarType.Float64).dot(Key[j].to(ScalarType.Float64)).item<double>();

    /// <summary>The <paramref name="count"/> largest pair terms by magnitude among listed sources: (query row, key row, term).</summary>
    public (int Query, int Key, double Term)[] TopPairs(int count)
    {
        var best = new List<(int, int, double)>();
        using var keys = Key.to(ScalarType.Float64);
        // Blocks of query rows keep the [rows, sources] products small on long prompts.
        const int Block = 256;
        for (int start = 0; start < Sources.Length; start += Block)
        {
            using var scope = NewDisposeScope();
            int rows = Math.Min(Block, Sources.Length - start);
            var terms = Query.narrow(0, start, rows).to(ScalarType.Float64).matmul(keys.t()) * Scale;   // [rows, sources]
            int k = (int)Math.Min(count, terms.numel());
            var (_, flat) = terms.abs().flatten().topk(k);
            var values = terms.flatten().index_select(0, flat).data<double>().ToArray();
            var at = flat.data<long>().ToArray();
            for (int i = 0; i < k; i++) best.Add((start + (int)(at[i] / Sources.Length), (int)(at[i] % Sources.Length), values[i]));
        }
        return [.. best.OrderByDescending(p => Math.Abs(p.Item3)).Take(count)];
    }

    public void Dispose()
    {
        foreach (var t in new[] { Query, QueryUnlisted, QueryConstant, FullQuery, Key, KeyUnlisted, KeyConstant, FullKey }) t.Dispose();
    }
}

/// <summary>
/// QK attributions (docs/algorithm.md §11): attention scores decomposed into (query node, key node)
/// pairs. Every source's contribution to each needed layer's normed attention input is
/// propagated forward through the frozen replacement model (patterns, norm scales and MLP outputs
/// at their clean values), a batch of sources per pass, each against an empty row of the same
/// pass; three more rows give the clean input, the unlisted features' part and the constant part.
/// Each side then goes through its head's frozen query or key map (<see cref="Models.DecoderModel.ScoreSide"/>).
/// </summary>
public static class QkAttributions
{
    /// <summary>
    /// The most scores one graph traces, the most influential first: each keeps its listed nodes'
    /// parts of both sides ([nodes, head_dim] twice), so this bounds QK tracing's memory
    /// (<see cref="MemoryEstimate"/> counts it).
    /// </summary>
    public const int MaxScores = 64;

    public static QkDecomposition[] Compute(ReplacementModel replacement, PreparedPrompt prompt, IReadOnlyList<int> sources,
        IReadOnlyList<QkScore> scores, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Count == 0) return [];
        if (scores.Count > MaxScores) throw new ArgumentException($"at most {MaxScores} scores are traced at once, not {scores.Count}", nameof(scores));
        var model = replacement.Model;
        var layout = new NodeLayout(prompt.Active.Count, replacement.NLayers, prompt.NPos, LogitCount: 0);
        int[] listed = [.. sources];
        var listedFeatures = new HashSet<int>(listed.Where(s => s < layout.ErrorStart));
        var reads = scores.SelectMany(s => new[] { (s.Layer, s.QueryPosition), (s.Layer, s.KeyPosition) }).Distinct().ToList();
        // Rows per pass as attribution's backward batches take them: a long prompt's replicas, not the work, set the memory.
        int batch = AttributionContext.BackwardBatch(batchSize, prompt.NPos);

        // 1. Three rows first: the clean input (every node's vector in place, nothing subtracted), the unlisted
        //    features' part, and the constant (every feature's and error's write taken out of the frozen MLP outputs, no embeddings).
        Filler[] special =
        [
            new((row, embeddings, _) => embeddings[row].copy_(prompt.TokenVectors), Differenced: false),
            new((row, _, writes) => NodeVectors.AddFeatures(prompt, f => !listedFeatures.Contains(f), 1, row, writes), Differenced: true),
            new((row, _, writes) =>
            {
                NodeVectors.AddFeatures(prompt, _ => true, -1, row, writes);
                for (int l = 0; l < writes.Length; l++) writes[l][row].sub_(prompt.Errors[l]);
            }, Differenced: false),
        ];
        var specialInputs = reads.ToDictionary(r => r, _ => (Tensor?)null);
        Propagate(replacement, prompt, special, reads, batch, (_, inputAt) =>
        {
            foreach (var read in reads) specialInputs[read] = inputAt(read).to(ScalarType.Float64).cpu().DetachFromDisposeScope();
        });

        // 2. Each score's query and key maps, their norms frozen at the clean input.
        var maps = scores.Select(at => (
            Query: model.ScoreSide(at.Layer, at.Head, key: false, at.QueryPosition, specialInputs[(at.Layer, at.QueryPosition)]![0].to(model.Device)),
            Key: model.ScoreSide(at.Layer, at.Head, key: true, at.KeyPosition, specialInputs[(at.Layer, at.KeyPosition)]![0].to(model.Device)))).ToArray();

        // 3. The listed nodes, a batch per pass, each side projected at once: only [nodes, head_dim] per score and side is kept.
        var queryParts = scores.Select(_ => zeros(listed.Length, model.Config.HeadDim, model.DType)).ToArray();
        var keyParts = scores.Select(_ => zeros(listed.Length, model.Config.HeadDim, model.DType)).ToArray();
        var nodeFillers = listed.Select(s => new Filler((row, embeddings, writes) => NodeVectors.Place(prompt, layout, s, row, embeddings, writes), Differenced: true)).ToArray();
        Propagate(replacement, prompt, nodeFillers, reads, batch, (start, inputAt) =>
        {
            for (int i = 0; i < scores.Count; i++)
            {
                var at = scores[i];
                var queries = inputAt((at.Layer, at.QueryPosition)).matmul(maps[i].Query.Map.t());
                queryParts[i].narrow(0, start, queries.shape[0]).copy_(queries);
                keyParts[i].narrow(0, start, queries.shape[0]).copy_(inputAt((at.Layer, at.KeyPosition)).matmul(maps[i].Key.Map.t()));
            }
        });

        var results = new QkDecomposition[scores.Count];
        for (int i = 0; i < scores.Count; i++)
        {
            var at = scores[i];
            results[i] = new QkDecomposition(at, listed, model.Config.AttentionScale,
                [.. Side(queryParts[i], maps[i].Query, specialInputs[(at.Layer, at.QueryPosition)]!), .. Side(keyParts[i], maps[i].Key, specialInputs[(at.Layer, at.KeyPosition)]!)]);
            maps[i].Query.Map.Dispose();
            maps[i].Query.Offset.Dispose();
            maps[i].Key.Map.Dispose();
            maps[i].Key.Offset.Dispose();
        }
        foreach (var t in specialInputs.Values) t?.Dispose();
        return results;
    }

    /// <summary>A row of a propagation pass: what it puts into (row, embeddings, writes), and whether the pass's empty row is subtracted.</summary>
    private sealed record Filler(Action<int, Tensor, Tensor[]> Fill, bool Differenced);

    /// <summary>One side's parts on the CPU: the listed nodes' (as stored), then unlisted, constant and whole, float64 (special rows: clean, unlisted, constant).</summary>
    private static Tensor[] Side(Tensor listedParts, (Tensor Map, Tensor Offset) side, Tensor special)
    {
        using var scope = NewDisposeScope();
        var map64 = side.Map.to(ScalarType.Float64).cpu();
        var offset64 = side.Offset.to(ScalarType.Float64).cpu();
        return
        [
            listedParts,
            map64.matmul(special[1]).MoveToOuterDisposeScope(),
            (map64.matmul(special[2]) + offset64).MoveToOuterDisposeScope(),
            (map64.matmul(special[0]) + offset64).MoveToOuterDisposeScope(),
        ];
    }

    /// <summary>
    /// Frozen forward passes of the filled rows, batch_size at a time after an empty row. After each
    /// pass, <paramref name="onBatch"/> gets the batch's first row and, per (layer, position) read, its
    /// rows' normed attention inputs there ([rows, d_model], the empty row subtracted where asked), on the model's device.
    /// </summary>
    private static void Propagate(ReplacementModel replacement, PreparedPrompt prompt, IReadOnlyList<Filler> fillers,
        List<(int Layer, int Position)> reads, int batchSize, Action<int, Func<(int Layer, int Position), Tensor>> onBatch)
    {
        var model = replacement.Model;
        int layers = replacement.NLayers, n = prompt.NPos;
        long d = model.Config.DModel;
        for (int start = 0; start < fillers.Count; start += batchSize)
        {
            var batch = fillers.Skip(start).Take(batchSize).ToList();
            using var scope = NewDisposeScope();
            var embeddings = zeros(batch.Count + 1, n, d, model.DType, model.Device);
            var writes = Enumerable.Range(0, layers).Select(_ => zeros(batch.Count + 1, n, d, model.DType, model.Device)).ToArray();
            for (int i = 0; i < batch.Count; i++) batch[i].Fill(i + 1, embeddings, writes);
            using var run = new FrozenRun(prompt.Clean, replacement.Transcoders, [.. writes]) { RecordsAttentionInputs = true };
            using (no_grad()) model.Forward(embeddings, run);
            var empty = tensor(batch.Select(f => f.Differenced ? 1.0 : 0.0).ToArray(), model.DType, model.Device).unsqueeze(1);
            onBatch(start, read =>
            {
                var atRead = run.AttentionInputs[read.Layer]!.select(1, read.Position);   // [rows + 1, d]
                return atRead.narrow(0, 1, batch.Count) - empty * atRead[0];
            });
        }
    }
}
