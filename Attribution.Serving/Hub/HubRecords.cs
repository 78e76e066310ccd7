namespace Attribution.Hub;

/// <summary>A file resolved to a commit and present on disk (LocalPath is the snapshot pointer).</summary>
public sealed record HubFile(string RepoId, string PathInRepo, string CommitHash, string LocalPath)
{
    /// <summary>snapshots/{commit}/: every file of one commit lies under it, as in the repo.</summary>
    public string SnapshotFolder
    {
        get
        {
            var depth = PathInRepo.Count(c => c == '/') + 1;
            var folder = LocalPath;
            for (var i = 0; i < depth; i++)
            {
                folder = Path.GetDirectoryName(folder)!;
            }
            return folder;
        }
    }
}

/// <summary>
/// What the hub says about a file before any byte moves: the commit the revision resolves to,
/// the blob's ETag (its cache name), its size, and where the bytes are (a CDN for large files).
/// </summary>
public sealed record HubFileMetadata(string CommitHash, string Etag, long? Size, Uri Location);

/// <summary>One progress report of a transfer; TotalBytes is null when the hub gave no size.</summary>
public sealed record HubProgress(string RepoId, string PathInRepo, long BytesDone, long? TotalBytes, TimeSpan Elapsed)
{
    public double? Fraction => TotalBytes is > 0 ? (double)BytesDone / TotalBytes.Value : null;
}
