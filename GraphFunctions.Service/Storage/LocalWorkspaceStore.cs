namespace GraphFunctions.Storage;

/// <summary>
/// The workspace as a folder: key "a/b/c" is the file root/a/b/c. Atomicity comes from
/// rename(2): an object is written to a staging file in the root (same file system) and
/// renamed onto its key, so a reader sees the old file or the new one, never a part.
/// </summary>
public sealed class LocalWorkspaceStore : IWorkspaceStore
{
    private const int ReadBufferSize = 1 << 16;

    public LocalWorkspaceStore(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(writeContent);
        var target = PathOf(key);

        using var staging = StagingFile.In(Root);
        await staging.FillAsync(writeContent, cancellationToken);

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Move(staging.Path, target, overwrite: true);
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        try
        {
            // FileShare.Delete: a job cleanup may delete a prefix while a reader still streams from it.
            Stream stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete,
                ReadBufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return Task.FromResult(stream);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new FileNotFoundException($"Workspace object '{key}' does not exist.", path, e);
        }
    }

    public Task<bool> ExistsAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult(File.Exists(PathOf(key)));

    public Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        WorkspaceKey.ValidatePrefix(prefix);
        IReadOnlyList<string> keys = Directory.EnumerateFiles(SearchRootFor(prefix), "*", SearchOption.AllDirectories)
            .Select(RelativeKey)
            .Where(key => WorkspaceKey.IsValid(key) && key.StartsWith(prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        return Task.FromResult(keys);
    }

    public async Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default)
    {
        foreach (var key in await ListAsync(prefix, cancellationToken))
            File.Delete(PathOf(key));
        RemoveEmptyFolders(prefix);
    }

    private string PathOf(string key) => Path.Combine(Root, WorkspaceKey.Validate(key));

    private string RelativeKey(string path) => Path.GetRelativePath(Root, path).Replace(Path.DirectorySeparatorChar, '/');

    /// <summary>The deepest existing folder that can hold keys with this prefix ("jobs/a/ro" → root/jobs/a).</summary>
    private string SearchRootFor(string prefix)
    {
        var folder = prefix.Contains('/', StringComparison.Ordinal) ? Path.Combine(Root, prefix[..prefix.LastIndexOf('/')]) : Root;
        while (!Directory.Exists(folder))
            folder = Path.GetDirectoryName(folder)!;
        return folder;
    }

    /// <summary>Removes folders left empty under the prefix (deepest first); folders outside it are not touched.</summary>
    private void RemoveEmptyFolders(string prefix)
    {
        var searchRoot = SearchRootFor(prefix);
        var folders = Directory.EnumerateDirectories(searchRoot, "*", SearchOption.AllDirectories).Append(searchRoot)
            .Where(folder => folder != Root && (RelativeKey(folder) + "/").StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(folder => folder.Length);
        foreach (var folder in folders)
        {
            try
            {
                if (!Directory.EnumerateFileSystemEntries(folder).Any())
                    Directory.Delete(folder);
            }
            catch (IOException)
            {
                // A writer has just put something there: the folder is not empty after all.
            }
        }
    }
}
