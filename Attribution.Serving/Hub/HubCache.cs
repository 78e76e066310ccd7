namespace Attribution.Hub;

using System.Text.RegularExpressions;

/// <summary>
/// The Hugging Face cache layout on disk, exactly as huggingface_hub writes it, so either tool
/// reuses what the other downloaded:
/// <code>
/// {root}/models--{org}--{name}/
///   blobs/{etag}                       file contents, named by the hub's ETag (git sha1 or LFS sha256)
///   blobs/{etag}.incomplete            a transfer in progress, resumed from its length
///   snapshots/{commit}/{path}          relative symlink to ../../blobs/{etag} (a copy where links fail)
///   refs/{revision}                    the commit a branch or tag last resolved to (no newline)
/// {root}/.locks/models--{org}--{name}/{etag}.lock   one writer per blob, across processes
/// </code>
/// </summary>
public sealed partial class HubCache
{
    public HubCache(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    /// <summary>A full 40-hex commit id; only these are immutable, so only these skip the network.</summary>
    public static bool IsCommitHash(string revision) => CommitHash().IsMatch(revision);

    /// <summary>ETag header → file name: drop a weak-validator prefix W/ and the quotes.</summary>
    public static string NormalizeEtag(string etag)
    {
        ArgumentNullException.ThrowIfNull(etag);
        var value = etag.Trim();
        if (value.StartsWith("W/", StringComparison.Ordinal))
        {
            value = value[2..];
        }
        return value.Trim('"');
    }

    /// <summary>models--{org}--{name}: the repo id with "/" replaced by "--", one flat folder per repo.</summary>
    public string RepoFolder(string repoId) =>
        Path.Combine(Root, "models--" + HubNames.CheckRepoId(repoId).Replace("/", "--", StringComparison.Ordinal));

    public string BlobPath(string repoId, string etag) =>
        Path.Combine(RepoFolder(repoId), "blobs", HubNames.CheckSegment(etag, "ETag"));

    public string SnapshotFolder(string repoId, string commitHash) =>
        Path.Combine(RepoFolder(repoId), "snapshots", HubNames.CheckSegment(commitHash, "commit"));

    public string SnapshotPath(string repoId, string commitHash, string pathInRepo) =>
        Path.Combine(SnapshotFolder(repoId, commitHash), HubNames.ToLocalPath(pathInRepo));

    /// <summary>refs/{revision}; a revision such as refs/pr/1 nests folders, as in huggingface_hub.</summary>
    public string RefPath(string repoId, string revision) =>
        Path.Combine(RepoFolder(repoId), "refs", HubNames.ToLocalPath(revision));

    public string LockPath(string repoId, string etag) =>
        Path.Combine(Root, ".locks", Path.GetFileName(RepoFolder(repoId)), HubNames.CheckSegment(etag, "ETag") + ".lock");

    /// <summary>The commit a branch or tag last resolved to, or null if it never was.</summary>
    public string? ReadRef(string repoId, string revision)
    {
        var path = RefPath(repoId, revision);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    /// <summary>Records revision → commit; rewrites only on change, so a read-only cache still serves hits.</summary>
    public void WriteRef(string repoId, string revision, string commitHash)
    {
        if (revision == commitHash || ReadRef(repoId, revision) == commitHash)
        {
            return;
        }
        var path = RefPath(repoId, revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, commitHash);
    }

    /// <summary>
    /// The cached file for a revision without asking the hub: a commit hash names its snapshot,
    /// a branch or tag goes through refs/. Null when not cached.
    /// </summary>
    public string? TryGetCachedFile(string repoId, string pathInRepo, string revision)
    {
        var commit = IsCommitHash(revision) ? revision : ReadRef(repoId, revision);
        if (commit is null)
        {
            return null;
        }
        var path = SnapshotPath(repoId, commit, pathInRepo);
        return IsUsableFile(path) ? path : null;
    }

    /// <summary>
    /// Points snapshots/{commit}/{path} at the blob with a relative symlink, so the cache folder
    /// can be moved. Where symlinks fail, a new blob is moved into place (huggingface_hub does the
    /// same) and a blob that may be shared is copied.
    /// </summary>
    public static void LinkSnapshot(string blobPath, string snapshotPath, bool newBlob)
    {
        var folder = Path.GetDirectoryName(snapshotPath)!;
        Directory.CreateDirectory(folder);
        if (File.Exists(snapshotPath))
        {
            File.Delete(snapshotPath); // a stale or broken pointer (File.Exists is true for a broken link)
        }
        try
        {
            File.CreateSymbolicLink(snapshotPath, Path.GetRelativePath(folder, blobPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            if (IsUsableFile(snapshotPath))
            {
                return; // a concurrent download of the same file linked it first
            }
            if (newBlob)
            {
                File.Move(blobPath, snapshotPath, overwrite: true);
            }
            else
            {
                File.Copy(blobPath, snapshotPath, overwrite: true);
            }
        }
    }

    /// <summary>A regular file, or a symlink whose target exists (a broken link is not a cache hit).</summary>
    public static bool IsUsableFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return false;
        }
        return info.LinkTarget is null || info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
    }

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHash();
}
