namespace Attribution.Tracing;

using Attribution.Graphs;
using static TorchSharp.torch;

/// <summary>
/// One edge's weight split by attention head (docs/algorithm.md §10): <see cref="Direct"/>, the paths
/// that pass through no attention head (same position only: the residual stream and skip
/// connections), and <see cref="Heads"/>[layer, head], the paths whose first attention hop is that
/// head. Every path has exactly one first hop or none, so the parts sum to the edge's weight.
/// </summary>
public sealed record EdgeHeads(int Target, int Source, double Direct, double[,] Heads)
{
    /// <summary>
    /// Where each head's part entered, when asked for: [layer, head] → the query position q whose
    /// term A[h, q, k] · ⟨∂t/∂z[q, h], W_V x̂⟩ is largest in magnitude (the head moved the source from
    /// its position k to q). QK attributions explain the score (q, k) of the edge's top head.
    /// </summary>
    public int[,]? QueryPositions { get; init; }

    public double Total
    {
        get
        {
            double total = Direct;
            foreach (double part in Heads) total += part;
            return total;
        }
    }

    /// <summary>The heads by |part|, largest first: (layer, head, part).</summary>
    public IEnumerable<(int Layer, int Head, double Part)> Ranked() =>
        Enumerable.Range(0, Heads.GetLength(0))
            .SelectMany(layer => Enumerable.Range(0, Heads.GetLength(1)).Select(head => (layer, head, Heads[layer, head])))
            .OrderByDescending(h => Math.Abs(h.Item3));
}

/// <summary>
/// Head loadings of attribution edges. The frozen replacement model is linear in the node
/// vectors, so an edge s → t is the sum over paths from s's writes to t's read. A path either
/// moves through no attention head, or has a first head (layer ℓ, head h) at which it leaves s's
/// position k. The first-hop part is the head's value read of what s put into layer ℓ's normed
/// attention input at k by attention-free paths, Δx = W_V·x̂ₛ, met by the gradient of t at that
/// head's value for key k, Σ_q A[h, q, k] · ∂t/∂z[q, h] (z: the head's mixed values before the
/// output projection; everything after the hop — later heads included — is in that gradient).
/// Two passes give every part: a frozen forward pass of the sources with attention off (the
/// attention-free propagation, and the direct part at t's read point), and one backward pass of
/// the targets to gradient leaves on every layer's z.
/// </summary>
public static class HeadLoadings
{
    /// <summary>Heads written per link in a graph's JSON, the largest by |part|; the others are summed.</summary>
    public const int ReportedHeads = 3;

    /// <summary>
    /// The head loadings of <paramref name="edges"/>, given as (target, source) in the prompt's
    /// node layout: every active feature, the errors, the tokens, then the logit targets.
    /// Targets are features or logits; sources are features, errors or tokens.
    /// </summary>
    public static EdgeHeads[] Compute(ReplacementModel replacement, PreparedPrompt prompt, LogitTargets targets,
        IReadOnlyList<(int Target, int Source)> edges, int batchSize = 32, bool withQueryPositions = false)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(edges);
        if (edges.Count == 0) return [];
        // Rows per pass as attribution's backward batches take them: a long prompt's replicas, not the work, set the memory.
        batchSize = AttributionContext.BackwardBatch(batchSize, prompt.NPos);
        var layout = new NodeLayout(prompt.Active.Count, replacement.NLayers, prompt.NPos, targets.Count);
        using var sources = SourceTable.Of(replacement, prompt, layout, [.. edges.Select(e => e.Source).Distinct()], batchSize);
        var results = new EdgeHeads[edges.Count];
        var byTarget = Enumerable.Range(0, edges.Count).GroupBy(i => edges[i].Target).ToList();
        // One frozen pass with gradient leaves on every layer's heads serves every batch of targets, as in attribution.
        using var pass = new HeadGradientPass(replacement, prompt, Math.Min(batchSize, byTarget.Count));
        for (int start = 0; start < byTarget.Count; start += batchSize)
            TargetSide(replacement, prompt, targets, layout, pass, byTarget.Skip(start).Take(batchSize).ToList(), edges, sources, results, withQueryPositions);
        return results;
    }

    /// <summary>
    /// What each source puts at its own position by attention-free paths, one row per source: the
    /// value reads of every layer's normed attention input [sources, layers, kv_heads × head_dim],
    /// and what every layer's read point and the final residual see [sources, layers + 1, d_model].
    /// </summary>
    private sealed class SourceTable : IDisposable
    {
        private SourceTable(Dictionary<int, int> rows, long[] positions, Tensor valueReads, Tensor seen)
        {
            Rows = rows;
            Positions = positions;
            ValueReads = valueReads;
            Seen = seen;
        }

        public Dictionary<int, int> Rows { get; }

        public long[] Positions { get; }

        public Tensor ValueReads { get; }

        public Tensor Seen { get; }

        public static SourceTable Of(ReplacementModel replacement, PreparedPrompt prompt, NodeLayout layout, int[] sources, int batchSize)
        {
            var model = replacement.Model;
            int layers = replacement.NLayers, n = prompt.NPos;
            long d = model.Config.DModel;
            var positions = new long[sources.Length];
            var valueReads = new List<Tensor>();
            var seen = new List<Tensor>();
            for (int start = 0; start < sources.Length; start += batchSize)
            {
                var batch = sources[start..Math.Min(sources.Length, start + batchSize)];
                using var scope = NewDisposeScope();
                // Row 0 carries no source: the frozen constants (MLP outputs, biases) cancel against it.
                var embeddings = zeros(batch.Length + 1, n, d, model.DType, model.Device);
                var writes = Enumerable.Range(0, layers).Select(_ => zeros(batch.Length + 1, n, d, model.DType, model.Device)).ToArray();
                for (int i = 0; i < batch.Length; i++)
                    positions[start + i] = NodeVectors.Place(prompt, layout, batch[i], i + 1, embeddings, writes);

                using var run = new FrozenRun(prompt.Clean, replacement.Transcoders, [.. writes]) { AttentionOff = true, RecordsAttentionInputs = true };
                using (no_grad()) model.Forward(embeddings, run);
                var rows = arange(1, batch.Length + 1, ScalarType.Int64, model.Device);
                var at = tensor(positions[start..(start + batch.Length)], device: model.Device);
                // [batch, d]: each source's row at its own position, less the empty row there.
                Tensor Spread(Tensor t) => t.index([TensorIndex.Tensor(rows), TensorIndex.Tensor(at)]) - t[0].index_select(0, at);
                valueReads.Add(stack(Enumerable.Range(0, layers).Select(l => Spread(run.AttentionInputs[l]!).matmul(model.ValueWeight(l).t())), 1).DetachFromDisposeScope());
                seen.Add(stack([.. Enumerable.Range(0, layers).Select(l => Spread(run.Reads[l]).to(model.DType)), Spread(run.FinalResidual)], 1).DetachFromDisposeScope());
            }
            var table = new SourceTable(sources.Select((s, i) => (s, i)).ToDictionary(x => x.s, x => x.i), positions, cat(valueReads, 0), cat(seen, 0));
            foreach (var t in valueReads.Concat(seen)) t.Dispose();
            return table;
        }

        public void Dispose()
        {
            ValueReads.Dispose();
            Seen.Dispose();
        }
    }

    /// <summary>The frozen forward pass of <c>rows</c> copies of the prompt with a zero gradient leaf added to every layer's mixed head values.</summary>
    private sealed class HeadGradientPass : IDisposable
    {
        private readonly Tensor[] leaves;
        private readonly FrozenRun run;
        private readonly int layers;

        public HeadGradientPass(ReplacementModel replacement, PreparedPrompt prompt, int rows)
        {
            var model = replacement.Model;
            var config = model.Config;
            layers = replacement.NLayers;
            Rows = rows;
            leaves = [.. Enumerable.Range(0, layers).Select(_ => zeros(rows, prompt.NPos, config.NHeads * config.HeadDim, model.DType, model.Device).requires_grad_(true).DetachFromDisposeScope())];
            run = new FrozenRun(prompt.Clean, replacement.Transcoders, new Tensor?[layers]) { HeadDeltas = [.. leaves] };
            using var gradients = enable_grad();
            using var scope = NewDisposeScope();
            model.Forward(prompt.TokenVectors.unsqueeze(0).expand(rows, prompt.NPos, config.DModel), run);
        }

        public int Rows { get; }

        /// <summary>∂(Σ targets)/∂z for each layer up to the deepest read, each target in its own row: [rows, positions, heads × head_dim] per layer.</summary>
        public Tensor[] HeadGradients((int Layer, int Position, Tensor Vector)[] reads)
        {
            var outputs = new List<Tensor>();
            var gradOutputs = new List<Tensor>();
            var first = leaves[0];
            foreach (var readLayer in reads.Select(r => r.Layer).Distinct())
            {
                var injection = zeros(Rows, first.shape[1], run.FinalResidual.shape[2], first.dtype, first.device);
                for (int i = 0; i < reads.Length; i++)
                    if (reads[i].Layer == readLayer) injection[i, reads[i].Position] = reads[i].Vector.to(first.dtype);
                outputs.Add(readLayer == layers ? run.FinalResidual : run.Reads[readLayer]);
                gradOutputs.Add(injection);
            }
            // A target reading at layer ℓ (after that layer's attention) depends on heads of layers 0..ℓ.
            int reached = Math.Min(layers, reads.Max(r => r.Layer) + 1);
            using var gradients = enable_grad();
            return [.. autograd.grad(outputs, leaves.Take(reached).ToList(), gradOutputs, retain_graph: true)];
        }

        public void Dispose()
        {
            run.Dispose();
            foreach (var leaf in leaves) leaf.Dispose();
        }
    }

    private static void TargetSide(ReplacementModel replacement, PreparedPrompt prompt, LogitTargets targets, NodeLayout layout, HeadGradientPass pass,
        List<IGrouping<int, int>> batch, IReadOnlyList<(int Target, int Source)> edges, SourceTable sources, EdgeHeads[] results, bool withQueryPositions)
    {
        var model = replacement.Model;
        var config = model.Config;
        int layers = replacement.NLayers, n = prompt.NPos, heads = config.NHeads, headDim = config.HeadDim, group = heads / config.NKvHeads;
        using var scope = NewDisposeScope();

        // Each target's read point (layer, position) and the vector it reads there.
        var reads = batch.Select(g => ReadPoint(prompt, targets, layout, g.Key, layers)).ToArray();
        var headGrads = pass.HeadGradients(reads);
        int reached = headGrads.Length;

        // Every edge of the batch at once: its target's row, its source's row and position.
        int[] edgeIds = [.. batch.SelectMany(g => g)];
        var targetRow = batch.SelectMany((g, row) => g.Select(_ => (long)row)).ToArray();
        var sourceRow = edgeIds.Select(e => (long)sources.Rows[edges[e].Source]).ToArray();
        var sourcePosition = sourceRow.Select(r => sources.Positions[r]).ToArray();
        var rowIndex = tensor(targetRow, device: model.Device);
        var sourceIndex = tensor(sourceRow, device: model.Device);
        var keyIndex = tensor(sourcePosition, device: model.Device);
        var valueReads = sources.ValueReads.index_select(0, sourceIndex);   // [edges, layers, kv_heads × head_dim]

        var parts = zeros(edgeIds.Length, layers, heads, ScalarType.Float64);
        var entered = withQueryPositions ? zeros(edgeIds.Length, layers, heads, ScalarType.Int64) : null;
        for (int l = 0; l < reached; l++)
        {
            // The gradient at each head's value for each key, Σ_q A[h, q, k] · ∂t/∂z[q, h], at each edge's (target, key): [edges, heads, head_dim].
            var valueGrads = einsum("hqk,bqhd->bkhd", prompt.Clean.Patterns[l][0], headGrads[l].view(pass.Rows, n, heads, headDim));
            var atEdges = valueGrads.index([TensorIndex.Tensor(rowIndex), TensorIndex.Tensor(keyIndex)]);
            // Each query head reads its key/value head's value (kv heads serve `group` query heads).
            var values = valueReads.select(1, l).view(edgeIds.Length, config.NKvHeads, headDim).repeat_interleave(group, 1);
            parts.select(1, l).copy_((atEdges * values).sum(-1));
            if (entered is not null) EnteredAt(prompt.Clean.Patterns[l][0], headGrads[l].view(pass.Rows, n, heads, headDim), values, targetRow, keyIndex, entered.select(1, l));
        }
        // The attention-free paths stay at the source's position: the target sees them only at its own.
        var readLayers = tensor(targetRow.Select(r => (long)reads[r].Layer).ToArray(), device: model.Device);
        var seen = sources.Seen.index([TensorIndex.Tensor(sourceIndex), TensorIndex.Tensor(readLayers)]);   // [edges, d]
        var readVectors = stack(reads.Select(r => r.Vector.to(model.DType))).index_select(0, rowIndex);
        var direct = (seen.to(ScalarType.Float64) * readVectors.to(ScalarType.Float64)).sum(-1).cpu().data<double>().ToArray();
        var partValues = parts.cpu().data<double>().ToArray();
        var enteredValues = entered?.cpu().data<long>().ToArray();
        for (int i = 0; i < edgeIds.Length; i++)
        {
            var perHead = new double[layers, heads];
            Buffer.BlockCopy(partValues, i * layers * heads * sizeof(double), perHead, 0, layers * heads * sizeof(double));
            int e = edgeIds[i];
            bool samePosition = sourcePosition[i] == reads[targetRow[i]].Position;
            int[,]? queryPositions = null;
            if (enteredValues is not null)
            {
                queryPositions = new int[layers, heads];
                for (int j = 0; j < layers * heads; j++) queryPositions[j / heads, j % heads] = (int)enteredValues[i * layers * heads + j];
            }
            results[e] = new EdgeHeads(edges[e].Target, edges[e].Source, samePosition ? direct[i] : 0, perHead) { QueryPositions = queryPositions };
        }
    }

    /// <summary>
    /// For each edge and head of one layer, the query position through which most of the head's part
    /// passed (<see cref="EdgeHeads.QueryPositions"/>), one target row at a time: [edges, q, heads] terms
    /// for a row's edges only.
    /// </summary>
    private static void EnteredAt(Tensor pattern, Tensor headGrads, Tensor values, long[] targetRow, Tensor keyIndex, Tensor entered)
    {
        foreach (var row in targetRow.Distinct())
        {
            using var scope = NewDisposeScope();
            var mine = tensor(Enumerable.Range(0, targetRow.Length).Where(i => targetRow[i] == row).Select(i => (long)i).ToArray(), device: values.device);
            var terms = einsum("qhd,ehd->eqh", headGrads[row], values.index_select(0, mine));
            var weights = pattern.index_select(2, keyIndex.index_select(0, mine)).permute(2, 1, 0);   // A[h, q, k_e] as [e, q, h]
            entered.index_copy_(0, mine.cpu(), (terms * weights).abs().argmax(1).cpu());
        }
    }

    /// <summary>Where a target reads and with what: a feature's encoder row at its layer and position, a logit's direction at the final residual's last position.</summary>
    private static (int Layer, int Position, Tensor Vector) ReadPoint(PreparedPrompt prompt, LogitTargets targets, NodeLayout layout, int target, int layers)
    {
        var place = layout.Locate(target);
        return place.Kind switch
        {
            NodeKind.Feature => ((int)prompt.Active.Layers[target], (int)prompt.Active.Positions[target], prompt.EncoderRows[target]),
            NodeKind.Logit => (layers, prompt.NPos - 1, targets.DemeanedVectors[place.Index]),
            _ => throw new ArgumentException($"node {target} is a {place.Kind}: only features and logits are targets", nameof(target)),
        };
    }
}
