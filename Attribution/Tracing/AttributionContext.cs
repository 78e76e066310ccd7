namespace Attribution.Tracing;

using Attribution.Graphs;

using static TorchSharp.torch;

/// <summary>
/// Computes attribution rows (docs/algorithm.md §4). One frozen forward pass runs with the prompt repeated
/// batch_size times (at most <see cref="MaxBatchPositions"/> positions in all) and its graph is kept; each batch of targets is then one backward pass:
/// target t in batch row b injects its vector (an encoder row, or a demeaned unembedding) at its
/// own read point and position, and <c>autograd.grad</c> returns the gradient g_l at every write
/// point and g_emb at the embeddings. Contracting those with the source vectors gives the row:
/// feature s at (l, p): ⟨a_s·W_dec[s], g_l[p]⟩ summed over the layers it writes; error (l, p):
/// ⟨e_lp, g_l[p]⟩; token p: ⟨tok_p, g_emb[p]⟩.
/// </summary>
public sealed class AttributionContext : IDisposable
{
    /// <summary>
    /// The most prompt positions one backward pass carries (batch rows × positions): Neuronpedia's
    /// batch of 48 at its 64-token limit (and the BOS). Beyond that the frozen pass's replicas, not the work,
    /// set the memory and the time (a 405-token prompt at batch 48: 5.1 GB and 137 s; at 8: 2.4 GB
    /// and 30 s), so a longer prompt runs its backward passes with fewer rows each. Rows are
    /// per target, so the graph does not change; the plan's rounds still count the asked batch.
    /// </summary>
    public const int MaxBatchPositions = 48 * (64 + 1);

    /// <summary>The rows of one backward pass for <paramref name="requested"/> and a prompt of <paramref name="positions"/>: at least one.</summary>
    public static int BackwardBatch(int requested, int positions) => Math.Max(1, Math.Min(requested, MaxBatchPositions / Math.Max(1, positions)));

    private readonly ReplacementModel replacement;
    private readonly PreparedPrompt prompt;
    private readonly int batchSize;
    private readonly int nLayers;
    private readonly int nPos;
    private readonly Tensor embeddingLeaf;
    private readonly Tensor[] writeLeaves;
    private readonly FrozenRun run;
    private readonly WriteLayerSources[] sources;

    public AttributionContext(ReplacementModel replacement, PreparedPrompt prompt, int batchSize)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), "batch size must be positive");
        this.replacement = replacement;
        this.prompt = prompt;
        nLayers = replacement.NLayers;
        nPos = prompt.NPos;
        this.batchSize = batchSize = BackwardBatch(batchSize, nPos);
        var model = replacement.Model;
        long d = model.Config.DModel;

        // Gradient leaves: the embeddings, and a zero added at every write point.
        embeddingLeaf = prompt.TokenVectors.unsqueeze(0).expand(batchSize, nPos, d).clone().requires_grad_(true).DetachFromDisposeScope();
        writeLeaves = new Tensor[nLayers];
        for (int l = 0; l < nLayers; l++)
            writeLeaves[l] = zeros(batchSize, nPos, d, model.DType, model.Device).requires_grad_(true).DetachFromDisposeScope();

        run = new FrozenRun(prompt.Clean, replacement.Transcoders, [.. writeLeaves]);
        // Gradient mode is per thread; a caller inside no_grad must not get a graph-less forward pass.
        using (var gradients = enable_grad())
        using (var scope = NewDisposeScope())
            model.Forward(embeddingLeaf, run);
        sources = Enumerable.Range(0, nLayers).Select(BuildSources).ToArray();
        // Preparing freed far more than it keeps (the clean pass's encodings, the batched forward
        // pass's intermediates); glibc must give it back now, before the batches fill the heap around it.
        TorchInfo.ReleaseFreedMemory(midJob: true);
    }

    public int ActiveCount => prompt.Active.Count;

    /// <summary>The dtype the model computes rows in (they are returned as float32).</summary>
    public ScalarType ComputeType => replacement.Model.DType;

    /// <summary>Columns of a row: active features, errors (layer-major), tokens. Logit columns are always zero and left out.</summary>
    public int RowLength => RowLengthFor(prompt, nLayers);

    /// <summary>The columns of a row: every active feature, the errors, the tokens (a row has no logit columns).</summary>
    private NodeLayout Columns => ColumnsOf(prompt, nLayers);

    /// <summary>The row length of a prompt's graph (<see cref="RowLength"/>) without making its frozen forward pass.</summary>
    public static int RowLengthFor(PreparedPrompt prompt, int nLayers)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return ColumnsOf(prompt, nLayers).NodeCount;
    }

    private static NodeLayout ColumnsOf(PreparedPrompt prompt, int nLayers) => new(prompt.Active.Count, nLayers, prompt.NPos, LogitCount: 0);

    /// <summary>Vectors per position each write point's batched contraction multiplies (decoder vectors padded, plus the error).</summary>
    public IReadOnlyList<long> ContractionSlots => [.. sources.Select(s => s.PaddedVectorsT.shape[2])];

    /// <summary>Rows of the logit targets: [n_logits, RowLength], float32 on the CPU.</summary>
    public Tensor LogitRows(LogitTargets targets)
    {
        var (layers, positions) = LogitReadPoints(targets);
        return RowsInBatches(layers, positions, targets.DemeanedVectors);
    }

    /// <summary>
    /// Rows of the given feature nodes (indices into the active features): [n, RowLength], float32
    /// on the CPU; or only the columns <paramref name="keepColumns"/>, cut on the device before the copy.
    /// </summary>
    public Tensor FeatureRows(IReadOnlyList<long> featureNodes, Tensor? keepColumns = null)
    {
        var (layers, positions) = FeatureReadPoints(featureNodes);
        using var injections = EncoderRowsOf(featureNodes);
        using var columns = keepColumns?.to(replacement.Model.Device);
        return RowsInBatches(layers, positions, injections, columns);
    }

    /// <summary>
    /// The backward passes alone for the same targets and batches as <see cref="FeatureRows"/> and
    /// <see cref="LogitRows"/>, without contraction: the baseline the benchmark compares against.
    /// </summary>
    public void BareBackward(IReadOnlyList<long> featureNodes, LogitTargets? logits = null)
    {
        void BackwardOnly(int[] layers, long[] positions, Tensor injections)
        {
            using var scope = NewDisposeScope();
            Backward(layers, positions, injections);
        }

        if (logits is not null)
        {
            var (logitLayers, logitPositions) = LogitReadPoints(logits);
            ForEachBatch(logitLayers, logitPositions, logits.DemeanedVectors, BackwardOnly);
        }
        var (featureLayers, featurePositions) = FeatureReadPoints(featureNodes);
        using var injections = EncoderRowsOf(featureNodes);
        ForEachBatch(featureLayers, featurePositions, injections, BackwardOnly);
    }

    /// <summary>Logits are read at the final residual (layer index n_layers), last position.</summary>
    private (int[] Layers, long[] Positions) LogitReadPoints(LogitTargets targets) =>
        (Enumerable.Repeat(nLayers, targets.Count).ToArray(), Enumerable.Repeat((long)nPos - 1, targets.Count).ToArray());

    private (int[] Layers, long[] Positions) FeatureReadPoints(IReadOnlyList<long> featureNodes) =>
        (featureNodes.Select(f => (int)prompt.Active.Layers[f]).ToArray(), featureNodes.Select(f => prompt.Active.Positions[f]).ToArray());

    private Tensor EncoderRowsOf(IReadOnlyList<long> featureNodes)
    {
        using var index = tensor(featureNodes.ToArray(), device: prompt.EncoderRows.device);
        return prompt.EncoderRows.index_select(0, index);
    }

    private Tensor RowsInBatches(int[] readLayers, long[] positions, Tensor injections, Tensor? keepColumns = null)
    {
        var rows = new List<Tensor>();
        ForEachBatch(readLayers, positions, injections, (l, p, i) => rows.Add(ComputeBatch(l, p, i, keepColumns)));
        if (rows.Count == 0) return zeros(0, keepColumns?.shape[0] ?? RowLength);
        var all = cat(rows, 0);
        foreach (var r in rows) r.Dispose();
        return all;
    }

    /// <summary>Runs <paramref name="work"/> on consecutive slices of at most batch_size targets.</summary>
    private void ForEachBatch(int[] readLayers, long[] positions, Tensor injections, Action<int[], long[], Tensor> work)
    {
        for (int start = 0; start < readLayers.Length; start += batchSize)
        {
            int count = Math.Min(batchSize, readLayers.Length - start);
            using var slice = injections.narrow(0, start, count);
            work(readLayers[start..(start + count)], positions[start..(start + count)], slice);
        }
    }

    /// <summary>One backward pass for up to batch_size targets and the contraction into rows.</summary>
    private Tensor ComputeBatch(int[] readLayers, long[] positions, Tensor injections, Tensor? keepColumns)
    {
        using var scope = NewDisposeScope();
        var (embeddingGrad, writeGrads) = Backward(readLayers, positions, injections);

        var rows = zeros(batchSize, RowLength, replacement.Model.DType, replacement.Model.Device);
        for (int w = 0; w < writeGrads.Length; w++)
        {
            var source = sources[w];
            // [positions, batch, d] @ [positions, d, slots] → [positions, batch, slots]: the gradient at
            // each position against every vector written there, the error vector in the last slot.
            var products = writeGrads[w].transpose(0, 1).bmm(source.PaddedVectorsT);
            rows.narrow(1, Columns.ErrorNode(w, 0), nPos).copy_(products.select(2, source.ErrorSlot).t());
            if (source.Blocks.Count == 0) continue;
            var perSlot = products.permute(1, 0, 2).reshape(batchSize, -1);   // [batch, positions·slots]
            // Each source layer's slots, read in node order, fill that layer's block of feature columns.
            foreach (var block in source.Blocks)
                rows.narrow(1, block.FirstNode, block.SlotIndex.shape[0]).add_(perSlot.index_select(1, block.SlotIndex));
        }
        rows.narrow(1, Columns.TokenStart, nPos).copy_((embeddingGrad * prompt.TokenVectors).sum([-1]));
        var targetRows = rows.narrow(0, 0, readLayers.Length);
        if (keepColumns is not null) targetRows = targetRows.index_select(1, keepColumns);
        return targetRows.to(ScalarType.Float32).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Injects each target's vector at (its batch row, its read point, its position) as the output
    /// gradient and returns the gradients at the embeddings and at the write points before the
    /// deepest target (later write points cannot affect any target of the batch).
    /// </summary>
    private (Tensor Embedding, Tensor[] Writes) Backward(int[] readLayers, long[] positions, Tensor injections)
    {
        var model = replacement.Model;
        var outputs = new List<Tensor>();
        var gradOutputs = new List<Tensor>();
        foreach (int layer in readLayers.Distinct())
        {
            var batchRows = Enumerable.Range(0, readLayers.Length).Where(i => readLayers[i] == layer).Select(i => (long)i).ToArray();
            using var rowIndex = tensor(batchRows, device: model.Device);
            using var positionIndex = tensor(batchRows.Select(i => positions[i]).ToArray(), device: model.Device);
            var injection = zeros(batchSize, nPos, model.Config.DModel, model.DType, model.Device);
            injection.index_put_(injections.index_select(0, rowIndex).to(model.DType), rowIndex, positionIndex);
            outputs.Add(layer == nLayers ? run.FinalResidual : run.Reads[layer]);
            gradOutputs.Add(injection);
        }

        int deepest = readLayers.Max();
        var inputs = new List<Tensor> { embeddingLeaf };
        inputs.AddRange(writeLeaves.Take(deepest));
        // libtorch aborts the process (not an exception) if these outputs had no graph: fail first.
        if (outputs.Any(o => !o.requires_grad))
            throw new InvalidOperationException("the frozen forward pass has no autograd graph (was it built under no_grad?)");
        using var gradients = enable_grad();
        var grads = autograd.grad(outputs, inputs, gradOutputs, retain_graph: true);
        return (grads[0], grads.Skip(1).ToArray());
    }

    /// <summary>
    /// The vectors written at layer <paramref name="writeLayer"/>, grouped by position and padded to
    /// a common count so one batched matmul contracts them all: the source features' decoder
    /// vectors, then the reconstruction error as the last slot (its row entry is the same product).
    /// Features are in node order (layer, position, index), so each source layer's (position, slot)
    /// cells read in order give that layer's contiguous block of feature columns.
    /// </summary>
    private WriteLayerSources BuildSources(int writeLayer)
    {
        var active = prompt.Active;
        var transcoders = replacement.Transcoders;
        var model = replacement.Model;
        var layersHere = Enumerable.Range(0, writeLayer + 1)
            .Where(l => l + transcoders.WriteCount(l) > writeLayer && active.RangeOfLayer(l) is var (start, end) && end > start)
            .ToList();

        // Slot of each feature within its position, counting across the source layers in order.
        var filled = new int[nPos];
        var slotsByLayer = new List<long[]>();
        foreach (int l in layersHere)
        {
            var (start, end) = active.RangeOfLayer(l);
            slotsByLayer.Add(Enumerable.Range(start, end - start).Select(n => (long)filled[active.Positions[n]]++).ToArray());
        }
        int errorSlot = filled.Max(), slots = errorSlot + 1;

        using var scope = NewDisposeScope();
        var padded = zeros(nPos, slots, model.Config.DModel, model.DType, model.Device);
        padded.select(1, errorSlot).copy_(prompt.Errors[writeLayer]);
        var blocks = new List<SourceBlock>();
        for (int i = 0; i < layersHere.Count; i++)
        {
            int l = layersHere[i];
            var (start, end) = active.RangeOfLayer(l);
            var positions = active.Positions[start..end];
            var slotOf = slotsByLayer[i];
            var positionIndex = tensor(positions, device: model.Device);
            var slotIndex = tensor(slotOf, device: model.Device);
            padded.index_put_(prompt.ScaledDecoders[l].select(1, writeLayer - l), positionIndex, slotIndex);
            var flat = positions.Zip(slotOf, (p, s) => p * slots + s).ToArray();
            blocks.Add(new SourceBlock(start, tensor(flat, device: model.Device).DetachFromDisposeScope()));
        }
        return new WriteLayerSources(padded.transpose(1, 2).contiguous().DetachFromDisposeScope(), errorSlot, blocks);
    }

    public void Dispose()
    {
        embeddingLeaf.Dispose();
        foreach (var t in writeLeaves) t.Dispose();
        run.Dispose();
        foreach (var s in sources) s.Dispose();
    }

    /// <summary>The feature columns [FirstNode, FirstNode + n) of one source layer and their flat (position, slot) cells.</summary>
    private sealed record SourceBlock(int FirstNode, Tensor SlotIndex);

    /// <summary>[positions, d_model, slots] decoder vectors (the error vector in <paramref name="ErrorSlot"/>) and, per source layer, where its features sit.</summary>
    private sealed record WriteLayerSources(Tensor PaddedVectorsT, int ErrorSlot, IReadOnlyList<SourceBlock> Blocks) : IDisposable
    {
        public void Dispose()
        {
            PaddedVectorsT.Dispose();
            foreach (var block in Blocks) block.SlotIndex.Dispose();
        }
    }
}
