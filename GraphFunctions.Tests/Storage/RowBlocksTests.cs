namespace GraphFunctions.Tests.Storage;

using Attribution.Tests.Support;
using Attribution.Tracing;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using static TorchSharp.torch;

/// <summary>Row blocks travel through the workspace unchanged, in each form <see cref="StoredRows"/> has.</summary>
public class RowBlocksTests
{
    public static TheoryData<string> Forms => ["whole", "compact float32", "compact float16"];

    [Theory]
    [MemberData(nameof(Forms))]
    public async Task A_row_block_reads_back_as_written(string form)
    {
        using var folder = new TempFolder();
        var workspace = new LocalWorkspaceStore(folder.Path);
        long[] nodes = [3, 17, 5];
        using var rows = randn(3, 11) * 1000;
        using var block = form switch
        {
            "whole" => StoredRows.Whole(nodes, rows.clone()),
            "compact float32" => StoredRows.Compact(nodes, rows, ScalarType.Float32),
            _ => StoredRows.Compact(nodes, rows, ScalarType.BFloat16),
        };

        await RowBlocks.WriteAsync(workspace, "jobs/j/rows/b0", block);
        using var read = await RowBlocks.ReadAsync(workspace, "jobs/j/rows/b0");

        Assert.Equal(nodes, read.Nodes);
        Assert.Equal(nodes, await RowBlocks.ReadNodesAsync(workspace, "jobs/j/rows/b0"));
        Assert.Equal(block.IsCompact, read.IsCompact);
        Assert.Equal(block.Values.dtype, read.Values.dtype);
        Assert.True(block.Values.eq(read.Values).all().item<bool>());
        Assert.Equal(block.Scales is null, read.Scales is null);
        if (block.Scales is not null) Assert.True(block.Scales.eq(read.Scales!).all().item<bool>());
        using var decoded = read.ToFloat32();
        Assert.True(decoded.allclose(rows, rtol: form == "compact float16" ? 1e-3 : 0, atol: 0));
        Assert.Equal(block.ValueBytes, (form == "compact float16" ? 2 : 4) * 33 + (form == "compact float16" ? 12 : 0));
    }
}
