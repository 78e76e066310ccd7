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

    /// <summary>Each listed source's part of the query, [sources, head_dim], float64.</summary>
    public Tensor Query { get; }

    /// <summary>Each listed source's part of the key, [sources, head_dim], float64.</summary>
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
    public double[] QueryMarginals() => (Query.matmul(FullKey) * Scale).data<double>().ToArray();

    /// <summary>Each listed source's key-side marginal: the whole query against its part of the key, [sources].</summary>
    public double[] KeyMarginals() => (Key.matmul(FullQuery) * Scale).data<double>().ToArray();

    public double QueryUnlistedMarginal => Scale * QueryUnlisted.dot(FullKey).item<double>();

    public double QueryConstantMarginal => Scale * QueryConstant.dot(FullKey).item<double>();

    public double KeyUnlistedMarginal => Scale * FullQuery.dot(KeyUnlisted).item<double>();

    public double KeyConstantMarginal => Scale * FullQuery.dot(KeyConstant).item<double>();

    /// <summary>The pair term of listed sources i (query side) and j (key side).</summary>
    public double Pair(int i, int j) => Scale * Query[i].dot(Key[j]).item<double>();

    /// <summary>The <paramref name="count"/> largest pair terms by magnitude among listed sources: (query row, key row, term).</summary>
    public (int Query, int Key, double Term)[] TopPairs(int count)
    {
        var best = new List<(int, int, double)>();
        // Blocks of query rows keep the [rows, sources] products small on long prompts.
        const int Block = 1024;
        for (int start = 0; start < Sources.Length; start += Block)
        {
            using var scope = NewDisposeScope();
            int rows = Math.Min(Block, Sources.Length - start);
            var terms = Query.narrow(0, start, rows).matmul(Key.t()) * Scale;   // [rows, sources]
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
    public static QkDecomposition[] Compute(ReplacementModel replacement, PreparedPrompt prompt, IReadOnlyList<int> sources,
        IReadOnlyList<QkScore> scores, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(scores);
        if (scores.Count == 0) return [];
        var model = replacement.Model;
        var layout = new NodeLayout(prompt.Active.Count, replacement.NLayers, prompt.NPos, LogitCount: 0);
        int[] listed = [.. sources];
        var listedFeatures = new HashSet<int>(listed.Where(s => s < layout.ErrorStart));

        // The rows, each a filler of (row, embeddings, writes) and whether the pass's empty row is subtracted.
        var fillers = new List<(Action<int, Tensor, Tensor[]> Fill, bool Differenced)>();
        fillers.AddRange(listed.Select(s => ((Action<int, Tensor, Tensor[]>)((row, embeddings, writes) => NodeVectors.Place(prompt, layout, s, row, embeddings, writes)), true)));
        fillers.Add(((row, _, writes) => NodeVectors.AddFeatures(prompt, f => !listedFeatures.Contains(f), 1, row, writes), true));
        // The clean run: every node's vector in place, nothing subtracted.
        fillers.Add(((row, embeddings, _) => embeddings[row].copy_(prompt.TokenVectors), false));
        // The constant: every feature's and error's write taken out of the frozen MLP outputs, no embeddings.
        fillers.Add(((row, _, writes) =>
        {
            NodeVectors.AddFeatures(prompt, _ => true, -1, row, writes);
            for (int l = 0; l < writes.Length; l++) writes[l][row].sub_(prompt.Errors[l]);
        }, false));

        var reads = scores.SelectMany(s => new[] { (s.Layer, s.QueryPosition), (s.Layer, s.KeyPosition) }).Distinct().ToList();
        // Rows per pass as attribution's backward batches take them: a long prompt's replicas, not the work, set the memory.
        var inputs = Propagate(replacement, prompt, fillers, reads, AttributionContext.BackwardBatch(batchSize, prompt.NPos));   // per read: [fillers, d_model], float64

        var results = new QkDecomposition[scores.Count];
        for (int i = 0; i < scores.Count; i++)
        {
            var at = scores[i];
            using var scope = NewDisposeScope();
            var parts = Side(model, at, key: false, inputs[(at.Layer, at.QueryPosition)], listed.Length)
                .Concat(Side(model, at, key: true, inputs[(at.Layer, at.KeyPosition)], listed.Length))
                .Select(t => t.MoveToOuterDisposeScope()).ToArray();
            results[i] = new QkDecomposition(at, listed, model.Config.AttentionScale, parts);
        }
        foreach (var t in inputs.Values) t.Dispose();
        return results;
    }

    /// <summary>One side's parts, float64 on the CPU: listed sources [n, head_dim], unlisted, constant, whole.</summary>
    private static Tensor[] Side(Models.DecoderModel model, QkScore at, bool key, Tensor inputs, int listed)
    {
        var clean = inputs[listed + 1];
        var (map, offset) = model.ScoreSide(at.Layer, at.Head, key, key ? at.KeyPosition : at.QueryPosition, clean.to(model.DType).to(model.Device));
        var map64 = map.to(ScalarType.Float64).cpu();
        var offset64 = offset.to(ScalarType.Float64).cpu();
        return
        [
            inputs.narrow(0, 0, listed).matmul(map64.t()),
            map64.matmul(inputs[listed]),
            map64.matmul(inputs[listed + 2]) + offset64,
            map64.matmul(clean) + offset64,
        ];
    }

    /// <summary>
    /// Frozen forward passes of the filled rows, batch_size at a time after an empty row, recording
    /// the normed attention input at each (layer, position) read: [rows, d_model] per read, float64 on the CPU.
    /// </summary>
    private static Dictionary<(int Layer, int Position), Tensor> Propagate(ReplacementModel replacement, PreparedPrompt prompt,
        List<(Action<int, Tensor, Tensor[]> Fill, bool Differenced)> fillers, List<(int Layer, int Position)> reads, int batchSize)
    {
        var model = replacement.Model;
        int layers = replacement.NLayers, n = prompt.NPos;
        long d = model.Config.DModel;
        var collected = reads.ToDictionary(r => r, _ => new List<Tensor>());
        for (int start = 0; start < fillers.Count; start += batchSize)
        {
            var batch = fillers.GetRange(start, Math.Min(batchSize, fillers.Count - start));
            using var scope = NewDisposeScope();
            var embeddings = zeros(batch.Count + 1, n, d, model.DType, model.Device);
            var writes = Enumerable.Range(0, layers).Select(_ => zeros(batch.Count + 1, n, d, model.DType, model.Device)).ToArray();
            for (int i = 0; i < batch.Count; i++) batch[i].Fill(i + 1, embeddings, writes);
            using var run = new FrozenRun(prompt.Clean, replacement.Transcoders, [.. writes]) { RecordsAttentionInputs = true };
            using (no_grad()) model.Forward(embeddings, run);
            var empty = tensor(batch.Select(f => f.Differenced ? 1.0 : 0.0).ToArray(), ScalarType.Float64).unsqueeze(1);
            foreach (var (layer, position) in reads)
            {
                var atRead = run.AttentionInputs[layer]!.select(1, position).to(ScalarType.Float64).cpu();   // [rows + 1, d]
                collected[(layer, position)].Add((atRead.narrow(0, 1, batch.Count) - empty * atRead[0]).DetachFromDisposeScope());
            }
        }
        return collected.ToDictionary(c => c.Key, c =>
        {
            var all = cat(c.Value, 0);
            foreach (var t in c.Value) t.Dispose();
            return all;
        });
    }
}
