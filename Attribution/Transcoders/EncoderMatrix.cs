namespace Attribution.Transcoders;

using Attribution.Checkpoints;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

/// <summary>
/// An encoder W_enc, held on the device or streamed from its checkpoint in row chunks.
/// Checkpoints store it either with features as rows [d_transcoder, d_model] (circuit-tracer)
/// or transposed [d_model, d_transcoder] (GemmaScope's npz).
/// </summary>
internal sealed class EncoderMatrix : IDisposable
{
    private const long StreamChunkBytes = 16L << 20;

    private readonly Tensor? held;           // [d_transcoder, d_model] on the device
    private readonly StoredTensor? stored;
    private readonly bool featuresAreRows;
    private readonly Device device;
    private readonly ScalarType dtype;

    private EncoderMatrix(Tensor? held, StoredTensor? stored, bool featuresAreRows, Device device, ScalarType dtype)
    {
        this.held = held;
        this.stored = stored;
        this.featuresAreRows = featuresAreRows;
        this.device = device;
        this.dtype = dtype;
    }

    public static EncoderMatrix Create(StoredTensor stored, bool featuresAreRows, bool lazy, Device device, ScalarType dtype)
    {
        if (lazy) return new EncoderMatrix(null, stored, featuresAreRows, device, dtype);
        using var raw = stored.Load();
        using var rows = featuresAreRows ? raw.alias() : raw.t();
        return new EncoderMatrix(rows.to(dtype, device).contiguous().DetachFromDisposeScope(), null, true, device, dtype);
    }

    public Tensor PreActivations(Tensor x, Tensor bias)
    {
        if (held is not null) return F.linear(x, held, bias);

        // Stream the matrix from disk through one reused chunk buffer, so memory stays at one chunk.
        using var scope = NewDisposeScope();
        long rowsPerChunk = Math.Clamp(StreamChunkBytes / (stored!.RowLength * stored.ElementSize), 1, stored.RowCount);
        var buffer = empty([rowsPerChunk, stored.RowLength], stored.DType);
        var output = bias.expand([.. x.shape.SkipLast(1), bias.shape[0]]).clone();
        for (long start = 0; start < stored.RowCount; start += rowsPerChunk)
        {
            long count = Math.Min(rowsPerChunk, stored.RowCount - start);
            using var chunkScope = NewDisposeScope();
            var chunk = buffer.narrow(0, 0, count);
            stored.ReadRowRangeInto(chunk, start);
            var weights = chunk.to(dtype, device);
            if (featuresAreRows) output.narrow(-1, start, count).add_(x.matmul(weights.t()));   // features [start, start+count)
            else output.add_(x.narrow(-1, start, count).matmul(weights));                       // input dims [start, start+count)
        }
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Encoder rows of the given features: [n, d_model].</summary>
    public Tensor Rows(IReadOnlyList<long> features)
    {
        using var index = tensor(features.ToArray(), device: held?.device ?? CPU);
        if (held is not null) return held.index_select(0, index);
        if (featuresAreRows)
        {
            using var rows = stored!.LoadRows(features);
            return rows.to(dtype, device);
        }
        using var whole = stored!.Load();
        return whole.index_select(1, index).t().to(dtype, device).contiguous();
    }

    public void Dispose() => held?.Dispose();
}
