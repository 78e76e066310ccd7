namespace GraphFunctions.Tests.Storage;

using Attribution.Tests.Support;
using GraphFunctions.Storage;

/// <summary>The workspace contract on a folder, plus what only a folder can show: no leftovers on disk.</summary>
public sealed class LocalWorkspaceStoreTests : WorkspaceStoreContract, IDisposable
{
    private readonly TempFolder folder = new();

    protected override Task<IWorkspaceStore> CreateStoreAsync() => Task.FromResult<IWorkspaceStore>(new LocalWorkspaceStore(folder.Path));

    public void Dispose() => folder.Dispose();

    [Fact]
    public async Task A_failed_write_leaves_no_staging_file_behind()
    {
        await Assert.ThrowsAsync<IOException>(() => Store.WriteAsync("jobs/a/graph.json", (_, _) => throw new IOException("producer failed")));

        Assert.Empty(Directory.EnumerateFileSystemEntries(folder.Path, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Keys_map_to_files_under_the_root_and_deleting_a_prefix_removes_emptied_folders()
    {
        await WriteTextAsync("jobs/a/rows/0001.bin", "rows");
        await WriteTextAsync("jobs/b/graph.json", "{}");
        Assert.True(File.Exists(Path.Combine(folder.Path, "jobs", "a", "rows", "0001.bin")));

        await Store.DeletePrefixAsync("jobs/a/");

        Assert.False(Directory.Exists(Path.Combine(folder.Path, "jobs", "a")));
        Assert.True(File.Exists(Path.Combine(folder.Path, "jobs", "b", "graph.json")));
    }
}
