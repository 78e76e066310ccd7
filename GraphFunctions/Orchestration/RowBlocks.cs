namespace GraphFunctions.Orchestration;

using System.Buffers.Binary;
using GraphFunctions.Storage;
using static TorchSharp.torch;

/// <summary>
/// Attribution rows in the workspace: a small header (rows, columns), the node of each row, then
/// the float32 rows. Activities exchange only their keys, so orchestration history stays small.
/// </summary>
public static class RowBlocks
{
    private const int Magic = 0x47465257;   // "GFRW"

    public static Task WriteAsync(IWorkspaceStore workspace, string key, long[] nodes, Tensor rows, CancellationToken cancellation = default) =>
        workspace.WriteAsync(key, async (stream, ct) =>
        {
            using var cpu = rows.to(ScalarType.Float32).cpu().contiguous();
            var header = new byte[16];
            BinaryPrimitives.WriteInt32LittleEndian(header, Magic);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), nodes.Length);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), cpu.shape.Length > 1 ? cpu.shape[1] : 0);
            await stream.WriteAsync(header, ct);
            var nodeBytes = new byte[nodes.Length * 8];
            for (int i = 0; i < nodes.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(nodeBytes.AsSpan(i * 8), nodes[i]);
            await stream.WriteAsync(nodeBytes, ct);
            cpu.WriteBytesToStream(stream, 1 << 20);
        }, cancellation);

    public static async Task<(long[] Nodes, Tensor Rows)> ReadAsync(IWorkspaceStore workspace, string key, CancellationToken cancellation = default)
    {
        await using var stream = await workspace.OpenReadAsync(key, cancellation);
        var header = new byte[16];
        await stream.ReadExactlyAsync(header, cancellation);
        if (BinaryPrimitives.ReadInt32LittleEndian(header) != Magic) throw new InvalidDataException($"{key} is not a row block");
        int rows = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
        long columns = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
        var nodeBytes = new byte[rows * 8];
        await stream.ReadExactlyAsync(nodeBytes, cancellation);
        var nodes = Enumerable.Range(0, rows).Select(i => BinaryPrimitives.ReadInt64LittleEndian(nodeBytes.AsSpan(i * 8))).ToArray();
        var tensor = empty(rows, columns);
        tensor.ReadBytesFromStream(stream, 1 << 20);
        return (nodes, tensor);
    }

    public static Task WriteQueueAsync(IWorkspaceStore workspace, string key, long[] nodes, CancellationToken cancellation = default) =>
        workspace.WriteAsync(key, async (stream, ct) =>
        {
            var bytes = new byte[nodes.Length * 8];
            for (int i = 0; i < nodes.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), nodes[i]);
            await stream.WriteAsync(bytes, ct);
        }, cancellation);

    public static async Task<long[]> ReadQueueAsync(IWorkspaceStore workspace, string key, CancellationToken cancellation = default)
    {
        await using var stream = await workspace.OpenReadAsync(key, cancellation);
        var bytes = new byte[stream.Length];
        await stream.ReadExactlyAsync(bytes, cancellation);
        return Enumerable.Range(0, bytes.Length / 8).Select(i => BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 8))).ToArray();
    }
}
