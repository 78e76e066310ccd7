namespace GraphFunctions.Storage;

using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

/// <summary>
/// The workspace as a blob container: key "a/b/c" is the block blob "a/b/c". Atomicity comes
/// from the service: an upload becomes visible only when it commits (one Put Blob, or Put Block
/// List after the blocks), so the object is first written whole to a local staging file and
/// uploaded only if the producer succeeded.
/// </summary>
public sealed class BlobWorkspaceStore : IWorkspaceStore
{
    private const int NotFound = 404;

    private readonly LazyContainer container;
    private readonly string stagingDirectory;

    /// <param name="container">The workspace container; created on the first write.</param>
    /// <param name="stagingDirectory">Local folder for staging files (default: the temp folder).</param>
    public BlobWorkspaceStore(BlobContainerClient container, string? stagingDirectory = null)
    {
        this.container = new LazyContainer(container);
        this.stagingDirectory = stagingDirectory ?? Path.GetTempPath();
    }

    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(writeContent);
        var blob = (await container.GetAsync(cancellationToken)).GetBlobClient(WorkspaceKey.Validate(key));

        using var staging = StagingFile.In(stagingDirectory);
        await staging.FillAsync(writeContent, cancellationToken);

        await using var content = staging.OpenRead();
        await blob.UploadAsync(content, overwrite: true, cancellationToken);
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        try
        {
            // allowModifications: false pins the read to the blob's current version (ETag), so a
            // concurrent rewrite fails the reader instead of splicing two versions.
            return await Blob(key).OpenReadAsync(new BlobOpenReadOptions(allowModifications: false), cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == NotFound)
        {
            throw new FileNotFoundException($"Workspace object '{key}' does not exist.", key, e);
        }
    }

    public async Task<bool> ExistsAsync(string key, CancellationToken cancellationToken = default) =>
        await Blob(key).ExistsAsync(cancellationToken);

    public async Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        var options = new GetBlobsOptions { Prefix = WorkspaceKey.ValidatePrefix(prefix) };
        var keys = new List<string>();
        try
        {
            await foreach (var item in container.Client.GetBlobsAsync(options, cancellationToken))
                keys.Add(item.Name);
        }
        catch (RequestFailedException e) when (e.Status == NotFound)
        {
            // No container yet: nothing was ever written.
        }
        keys.Sort(StringComparer.Ordinal);
        return keys;
    }

    public async Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default)
    {
        foreach (var key in await ListAsync(prefix, cancellationToken))
            await container.Client.GetBlobClient(key).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken);
    }

    private BlobClient Blob(string key) => container.Client.GetBlobClient(WorkspaceKey.Validate(key));
}
