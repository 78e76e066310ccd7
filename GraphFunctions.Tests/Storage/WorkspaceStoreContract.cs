namespace GraphFunctions.Tests.Storage;

using System.Text;
using GraphFunctions.Storage;

/// <summary>
/// The behaviour every <see cref="IWorkspaceStore"/> promises, run against each implementation
/// (the derived classes provide the store).
/// </summary>
public abstract class WorkspaceStoreContract : IAsyncLifetime
{
    private IWorkspaceStore? store;

    protected IWorkspaceStore Store => store ?? throw new InvalidOperationException("InitializeAsync has not run.");

    protected abstract Task<IWorkspaceStore> CreateStoreAsync();

    public virtual async Task InitializeAsync() => store = await CreateStoreAsync();

    public virtual Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Write_then_read_returns_the_same_bytes_with_a_known_length()
    {
        await SampleGraph.StoreAsync(Store, "jobs/a/graph.json");

        await using var read = await Store.OpenReadAsync("jobs/a/graph.json");
        var expected = SampleGraph.Bytes();
        Assert.Equal(expected.Length, read.Length);
        Assert.Equal(expected, await read.ReadAllAsync());
        Assert.True(await Store.ExistsAsync("jobs/a/graph.json"));
    }

    [Fact]
    public async Task Writing_from_a_stream_stores_a_copy_of_it()
    {
        var bytes = Encoding.UTF8.GetBytes("row block");
        using var source = new MemoryStream(bytes);

        await Store.WriteAsync("jobs/a/rows/0000.bin", source);

        await using var read = await Store.OpenReadAsync("jobs/a/rows/0000.bin");
        Assert.Equal(bytes, await read.ReadAllAsync());
    }

    [Fact]
    public async Task Rewriting_a_key_replaces_the_object_whole()
    {
        await WriteTextAsync("jobs/a/x", "a much longer first version");
        await WriteTextAsync("jobs/a/x", "second");

        Assert.Equal("second", await ReadTextAsync("jobs/a/x"));
    }

    [Fact]
    public async Task An_object_is_invisible_while_it_is_being_written()
    {
        bool? existsMidway = null;
        IReadOnlyList<string>? listedMidway = null;

        await Store.WriteAsync("jobs/a/graph.json", async (stream, ct) =>
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes("{\"nodes\": ["), ct);
            await stream.FlushAsync(ct);
            existsMidway = await Store.ExistsAsync("jobs/a/graph.json", ct);
            listedMidway = await Store.ListAsync("", ct);
            await stream.WriteAsync(Encoding.UTF8.GetBytes("]}"), ct);
        });

        Assert.False(existsMidway);
        Assert.Empty(listedMidway!);
        Assert.Equal("{\"nodes\": []}", await ReadTextAsync("jobs/a/graph.json"));
    }

    [Fact]
    public async Task A_failed_write_leaves_no_object_and_keeps_the_previous_version()
    {
        await WriteTextAsync("jobs/a/old", "previous");

        static async Task FailHalfway(Stream stream, CancellationToken ct)
        {
            await stream.WriteAsync(new byte[100_000], ct);
            throw new IOException("producer failed");
        }
        await Assert.ThrowsAsync<IOException>(() => Store.WriteAsync("jobs/a/new", FailHalfway));
        await Assert.ThrowsAsync<IOException>(() => Store.WriteAsync("jobs/a/old", FailHalfway));

        Assert.False(await Store.ExistsAsync("jobs/a/new"));
        Assert.Equal("previous", await ReadTextAsync("jobs/a/old"));
        Assert.Equal(["jobs/a/old"], await Store.ListAsync(""));
    }

    [Fact]
    public async Task List_returns_the_keys_under_a_prefix_in_ordinal_order()
    {
        foreach (var key in new[] { "jobs/b/rows/0001.bin", "jobs/a/rows/0010.bin", "jobs/a/rows/0002.bin", "jobs/a/graph.json", "jobs/ab/graph.json" })
            await WriteTextAsync(key, key);

        Assert.Equal(["jobs/a/graph.json", "jobs/a/rows/0002.bin", "jobs/a/rows/0010.bin"], await Store.ListAsync("jobs/a/"));
        Assert.Equal(["jobs/a/rows/0002.bin", "jobs/a/rows/0010.bin"], await Store.ListAsync("jobs/a/rows/"));
        Assert.Equal(["jobs/a/rows/0010.bin"], await Store.ListAsync("jobs/a/rows/001"));
        Assert.Equal(["jobs/a/graph.json", "jobs/a/rows/0002.bin", "jobs/a/rows/0010.bin", "jobs/ab/graph.json"], await Store.ListAsync("jobs/a"));
        Assert.Equal(5, (await Store.ListAsync("")).Count);
        Assert.Empty(await Store.ListAsync("jobs/c/"));
    }

    [Fact]
    public async Task DeletePrefix_removes_exactly_the_keys_under_the_prefix()
    {
        foreach (var key in new[] { "jobs/a/rows/0001.bin", "jobs/a/graph.json", "jobs/ab/graph.json", "jobs/b/graph.json" })
            await WriteTextAsync(key, key);

        await Store.DeletePrefixAsync("jobs/a/");

        Assert.Equal(["jobs/ab/graph.json", "jobs/b/graph.json"], await Store.ListAsync(""));
        Assert.False(await Store.ExistsAsync("jobs/a/graph.json"));
        await Store.DeletePrefixAsync("jobs/a/"); // nothing left: still fine
    }

    [Fact]
    public async Task Opening_a_missing_key_throws_FileNotFoundException()
    {
        await WriteTextAsync("jobs/a/graph.json", "{}");

        await Assert.ThrowsAsync<FileNotFoundException>(() => Store.OpenReadAsync("jobs/a/other.json"));
        await Assert.ThrowsAsync<FileNotFoundException>(() => Store.OpenReadAsync("jobs/missing/graph.json"));
        Assert.False(await Store.ExistsAsync("jobs/missing/graph.json"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/jobs/a")]
    [InlineData("jobs//a")]
    [InlineData("jobs/a/")]
    [InlineData("../outside")]
    [InlineData("jobs/../../outside")]
    [InlineData("jobs/.staging-x")]
    [InlineData("jobs\\a")]
    public async Task Keys_that_are_not_relative_clean_paths_are_rejected(string key)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => WriteTextAsync(key, "x"));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.ExistsAsync(key));
    }

    protected Task WriteTextAsync(string key, string text) =>
        Store.WriteAsync(key, (stream, ct) => stream.WriteAsync(Encoding.UTF8.GetBytes(text), ct).AsTask());

    protected async Task<string> ReadTextAsync(string key)
    {
        await using var read = await Store.OpenReadAsync(key);
        return Encoding.UTF8.GetString(await read.ReadAllAsync());
    }
}
