namespace GraphFunctions.Orchestration;

using System.Buffers.Binary;
using Attribution.Tracing;
using GraphFunctions.Storage;
using static TorchSharp.torch;

/// <summary>
/// Attribution rows in the workspace (<see cref="StoredRows"/>): a header (magic, rows, columns,
/// form, value type), the node of each row, the per-row scales when the values are float16, then
/// the values. Activities exchange only their keys, so orchestration history stays small.
/// </summary>
public static class RowBlocks
{
    private const int Magic = 0x32524647;   // "GFR2"
    private const int HeaderBytes = 24;
    private const int Whole = 0, Compact = 1;
    private const int Float32Values = 0, ScaledFloat16Values = 1;

    public static Task WriteAsync(IWorkspaceStore workspace, string key, StoredRows block, CancellationToken cancellation = default) =>
        workspace.WriteAsync(key, async (stream, ct) =>
        {
            var header = new byte[HeaderBytes];
            BinaryPrimitives.WriteInt32LittleEndian(header, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), block.Count);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), block.Values.shape.Length > 1 ? block.Values.shape[1] : 0);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(16), block.IsCompact ? Compact : Whole);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(20), block.Scales is null ? Float32Values : ScaledFloat16Values);
            await stream.WriteAsync(header, ct);
            await stream.WriteAsync(Int64Bytes(block.Nodes), ct);
            block.Scales?.WriteBytesToStream(stream, 1 << 20);
            block.Values.WriteBytesToStream(stream, 1 << 20);
        }, cancellation);

    public static async Task<StoredRows> ReadAsync(IWorkspaceStore workspace, string key, CancellationToken cancellation = default)
    {
        await using var stream = await workspace.OpenReadAsync(key, cancellation);
        var (rows, columns, compact, scaled, nodes) = await ReadHeaderAsync(stream, key, cancellation);
        var scales = scaled ? empty(rows) : null;
        scales?.ReadBytesFromStream(stream, 1 << 20);
        var values = empty([rows, columns], scaled ? ScalarType.Float16 : ScalarType.Float32);
        values.ReadBytesFromStream(stream, 1 << 20);
        return StoredRows.FromParts(nodes, values, scales, compact);
    }

    /// <summary>Only the nodes of a block (its header), so assembly knows every row's place before it reads any values.</summary>
    public static async Task<long[]> ReadNodesAsync(IWorkspaceStore workspace, string key, CancellationToken cancellation = default)
    {
        await using var stream = await workspace.OpenReadAsync(key, cancellation);
        return (await ReadHeaderAsync(stream, key, cancellation)).Nodes;
    }

    private static async Task<(int Rows, long Columns, bool Compact, bool Scaled, long[] Nodes)> ReadHeaderAsync(Stream stream, string key, CancellationToken cancellation)
    {
        var header = new byte[HeaderBytes];
        await stream.ReadExactlyAsync(header, cancellation);
        if (BinaryPrimitives.ReadInt32LittleEndian(header) != Magic) throw new InvalidDataException($"{key} is not a row block");
        int rows = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
        long columns = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
        bool compact = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(16)) == Compact;
        bool scaled = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(20)) == ScaledFloat16Values;
        var nodeBytes = new byte[rows * 8];
        await stream.ReadExactlyAsync(nodeBytes, cancellation);
        return (rows, columns, compact, scaled, FromInt64Bytes(nodeBytes));
    }

    public static Task WriteQueueAsync(IWorkspaceStore workspace, string key, long[] nodes, CancellationToken cancellation = default) =>
        workspace.WriteAsync(key, async (stream, ct) => await stream.WriteAsync(Int64Bytes(nodes), ct), cancellation);

    public static async Task<long[]> ReadQueueAsync(IWorkspaceStore workspace, string key, CancellationToken cancellation = default)
    {
        await using var stream = await workspace.OpenReadAsync(key, cancellation);
        var bytes = new byte[stream.Length];
        await stream.ReadExactlyAsync(bytes, cancellation);
        return FromInt64Bytes(bytes);
    }

    private static byte[] Int64Bytes(long[] values)
    {
        var bytes = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), values[i]);
        return bytes;
    }

    private static long[] FromInt64Bytes(byte[] bytes) =>
        [.. Enumerable.Range(0, bytes.Length / 8).Select(i => BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 8)))];
}
