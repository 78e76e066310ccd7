namespace Attribution.Checkpoints;

using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// A tensor that lives in a checkpoint file: where its bytes start, their element type and shape.
/// Reading is explicit, so a caller decides whether it wants the whole tensor or a few rows
/// (decoder rows of the active features only: transcoder sets are far larger than memory).
/// </summary>
public sealed record StoredTensor(string Name, string FilePath, long ByteOffset, ScalarType DType, long[] Shape)
{
    /// <summary>Opens the bytes of an entry that is not a plain byte range (a compressed npz member).</summary>
    internal Func<Stream>? OpenWhole { get; init; }

    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public int ElementSize => DType.ElementSize();

    /// <summary>Elements in one row: the product of every dimension after the first.</summary>
    public long RowLength => Shape.Length == 0 ? 1 : Shape.Skip(1).Aggregate(1L, (a, b) => a * b);

    public long RowCount => Shape.Length == 0 ? 1 : Shape[0];

    /// <summary>The whole tensor, in its stored dtype, on the CPU.</summary>
    public Tensor Load()
    {
        var result = empty(Shape, DType);
        if (OpenWhole is not null)
        {
            using var stream = OpenWhole();
            FillFromStream(result, stream);
            return result;
        }
        FillFromFile(result, ByteOffset);
        return result;
    }

    /// <summary>Rows [start, start + count) along the first dimension.</summary>
    public Tensor LoadRowRange(long start, long count)
    {
        if (start < 0 || count < 0 || start + count > RowCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) outside {Name} with {RowCount} rows");
        var shape = Shape.Length == 0 ? Shape : [count, .. Shape.Skip(1)];
        var result = empty(shape, DType);
        if (count == 0) return result;
        if (OpenWhole is not null)
        {
            using var whole = Load();
            result.copy_(whole.narrow(0, start, count));
            return result;
        }
        FillFromFile(result, ByteOffset + start * RowLength * ElementSize);
        return result;
    }

    /// <summary>
    /// Reads rows [start, start + destination rows) into <paramref name="destination"/> (contiguous,
    /// CPU, this tensor's dtype): streaming a large matrix through one reused buffer.
    /// </summary>
    public void ReadRowRangeInto(Tensor destination, long start)
    {
        long count = destination.shape[0];
        if (start < 0 || start + count > RowCount)
            throw new ArgumentOutOfRangeException(nameof(start), $"rows [{start}, {start + count}) outside {Name} with {RowCount} rows");
        if (OpenWhole is not null)
        {
            using var rows = LoadRowRange(start, count);
            destination.copy_(rows);
            return;
        }
        FillFromFile(destination, ByteOffset + start * RowLength * ElementSize);
    }

    /// <summary>
    /// The given rows (any order, repeats allowed) as a [rows.Length, ...] tensor, reading only
    /// their bytes. Runs of consecutive rows are read with one call each.
    /// </summary>
    public Tensor LoadRows(IReadOnlyList<long> rows)
    {
        var shape = Shape.Length == 0 ? [rows.Count] : new long[] { rows.Count }.Concat(Shape.Skip(1)).ToArray();
        var result = empty(shape, DType);
        if (rows.Count == 0) return result;
        if (OpenWhole is not null)
        {
            using var whole = Load();
            using var index = tensor(rows.ToArray());
            result.copy_(whole.index_select(0, index));
            return result;
        }

        using var handle = File.OpenHandle(FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        long rowBytes = RowLength * ElementSize;
        int i = 0;
        while (i < rows.Count)
        {
            int runEnd = i + 1;
            while (runEnd < rows.Count && rows[runEnd] == rows[runEnd - 1] + 1) runEnd++;
            if (rows[i] < 0 || rows[runEnd - 1] >= RowCount)
                throw new ArgumentOutOfRangeException(nameof(rows), $"row outside {Name} with {RowCount} rows");
            using var run = result.narrow(0, i, runEnd - i);
            ReadInto(handle, run, ByteOffset + rows[i] * rowBytes);
            i = runEnd;
        }
        return result;
    }

    private void FillFromFile(Tensor destination, long fileOffset)
    {
        using var handle = File.OpenHandle(FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        ReadInto(handle, destination, fileOffset);
    }

    /// <summary>Reads a contiguous tensor's bytes at a file offset.</summary>
    private static void ReadInto(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Tensor destination, long fileOffset) =>
        ForEachByteChunk(destination, (chunk, offset) =>
        {
            long position = fileOffset + offset;
            while (!chunk.IsEmpty)
            {
                int read = RandomAccess.Read(handle, chunk, position);
                if (read == 0) throw new EndOfStreamException($"checkpoint file ends before tensor data at byte {position}");
                chunk = chunk[read..];
                position += read;
            }
        });

    private static void FillFromStream(Tensor destination, Stream stream) =>
        ForEachByteChunk(destination, (chunk, _) => stream.ReadExactly(chunk));

    private delegate void ByteChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>Visits a contiguous tensor's memory in chunks: a Span covers at most 2 GB.</summary>
    private static void ForEachByteChunk(Tensor destination, ByteChunkAction action)
    {
        using var flat = destination.view(-1);
        long elementSize = destination.element_size();
        long chunkElements = Math.Max(1, (256L << 20) / elementSize);
        for (long start = 0; start < flat.shape[0]; start += chunkElements)
        {
            using var chunk = flat.narrow(0, start, Math.Min(chunkElements, flat.shape[0] - start));
            action(chunk.bytes, start * elementSize);
        }
    }
}
