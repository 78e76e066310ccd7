namespace Attribution.Hub;

using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>
/// Downloads files from a Hugging Face style hub into the Hugging Face cache layout
/// (<see cref="HubCache"/>), the way huggingface_hub's hf_hub_download does:
/// <list type="number">
/// <item>A pinned commit whose file is in the snapshot is returned with no network at all.</item>
/// <item>Offline, the revision resolves through refs/ and the snapshot answers, or nothing does.</item>
/// <item>HEAD {endpoint}/{repo}/resolve/{revision}/{path}, not following a redirect to another
///   host: the hub's headers give the commit (X-Repo-Commit), the blob name (X-Linked-Etag or
///   ETag), its size (X-Linked-Size or Content-Length) and where the bytes are (Location).</item>
/// <item>refs/{revision} records the commit; an existing snapshot file or blob is reused.</item>
/// <item>Under a per-blob lock, GET into blobs/{etag}.incomplete, resuming with Range after a
///   break; verify the size; rename into place; link snapshots/{commit}/{path} to the blob.</item>
/// </list>
/// The token goes only to the hub's own origin: large files redirect to a CDN, which must not see it.
/// </summary>
public sealed class HubClient
{
    public const string DefaultRevision = "main";
    public const string SafetensorsIndexFile = "model.safetensors.index.json";
    public const string SingleSafetensorsFile = "model.safetensors";

    private readonly HubOptions options;
    private readonly ILogger logger;
    private readonly HubMetadataReader metadataReader;
    private readonly HubBlobDownloader blobs;

    /// <summary>
    /// The HttpClient must not follow redirects itself (see <see cref="CreateHttpClient"/>): the
    /// metadata sits on the hub's redirect response, and the token must not follow it to the CDN.
    /// </summary>
    public HubClient(HttpClient http, HubOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.logger = logger ?? NullLogger.Instance;
        Cache = new HubCache(options.CacheDirectory);
        var hubHttp = new HubHttp(http, options);
        metadataReader = new HubMetadataReader(hubHttp, options);
        blobs = new HubBlobDownloader(hubHttp, options, Cache, this.logger);
    }

    public HubCache Cache { get; }

    /// <summary>An HttpClient fit for the hub: redirects handled here, bytes as stored, no overall time limit.</summary>
    public static HttpClient CreateHttpClient() =>
        new(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
        })
        {
            // Multi-GiB bodies take minutes; stalls are caught per read (HubOptions.ReadTimeout).
            Timeout = Timeout.InfiniteTimeSpan,
        };

    /// <summary>Downloads one file (or finds it in the cache) and returns its snapshot path.</summary>
    public async Task<HubFile> DownloadFileAsync(
        string repoId,
        string pathInRepo,
        string? revision = null,
        IProgress<HubProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        HubNames.CheckRepoId(repoId);
        HubNames.CheckPath(pathInRepo, "path in repo");
        revision ??= DefaultRevision;
        HubNames.CheckPath(revision, "revision");

        // 1. A commit never changes, so a file already in its snapshot needs no network.
        if (HubCache.IsCommitHash(revision) && FromCache(repoId, pathInRepo, revision) is { } pinned)
        {
            return pinned;
        }

        // 2. Offline: the cache alone answers.
        if (options.Offline)
        {
            return FromCache(repoId, pathInRepo, revision) ?? throw new HubException(
                HubErrorKind.NotCached,
                $"Offline mode (HF_HUB_OFFLINE) is on and '{pathInRepo}' of repository '{repoId}' at revision "
                + $"'{revision}' is not in the cache {Cache.Root}.");
        }

        // 3. Ask the hub which commit the revision names and which blob holds the file. If the hub
        //    cannot be reached, the last commit this revision resolved to still serves.
        HubFileMetadata metadata;
        try
        {
            metadata = await GetFileMetadataAsync(repoId, pathInRepo, revision, cancellationToken);
        }
        catch (HubException e) when (e.Kind == HubErrorKind.Unreachable && FromCache(repoId, pathInRepo, revision) is { } cached)
        {
            logger.LogWarning("Hub unreachable ({Reason}); using the cached {Repo}/{Path} at commit {Commit}",
                e.Message, repoId, pathInRepo, cached.CommitHash);
            return cached;
        }

        // 4. Reuse what the cache holds: the snapshot pointer, else the blob (other commits share blobs).
        Cache.WriteRef(repoId, revision, metadata.CommitHash);
        var snapshot = Cache.SnapshotPath(repoId, metadata.CommitHash, pathInRepo);
        var file = new HubFile(repoId, pathInRepo, metadata.CommitHash, snapshot);
        if (HubCache.IsUsableFile(snapshot))
        {
            return file;
        }
        var blob = Cache.BlobPath(repoId, metadata.Etag);
        var newBlob = !HubCache.IsUsableFile(blob)
            && await blobs.DownloadAsync(file, metadata, blob, progress, cancellationToken);

        // 5. Point the snapshot at the blob.
        HubCache.LinkSnapshot(blob, snapshot, newBlob);
        return file;
    }

    /// <summary>Downloads the file an hf://org/repo/path?revision=r URI names.</summary>
    public Task<HubFile> DownloadAsync(HubUri uri, IProgress<HubProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(uri);
        return DownloadFileAsync(uri.RepoId, uri.PathInRepo, uri.Revision, progress, cancellationToken);
    }

    /// <summary>A local path as it is; an hf:// URI downloaded and replaced by its cached path.</summary>
    public async Task<string> ResolveLocalPathAsync(string pathOrUri, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pathOrUri);
        return HubUri.IsHubUri(pathOrUri)
            ? (await DownloadAsync(HubUri.Parse(pathOrUri), cancellationToken: cancellationToken)).LocalPath
            : pathOrUri;
    }

    /// <summary>
    /// Downloads several files of one repo. The first resolves the revision; the rest are fetched
    /// at that commit, so all come from one snapshot even if the branch moves meanwhile.
    /// </summary>
    public async Task<IReadOnlyList<HubFile>> DownloadFilesAsync(
        string repoId,
        IEnumerable<string> pathsInRepo,
        string? revision = null,
        IProgress<HubProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pathsInRepo);
        var files = new List<HubFile>();
        foreach (var path in pathsInRepo)
        {
            var file = await DownloadFileAsync(repoId, path, revision, progress, cancellationToken);
            files.Add(file);
            revision = file.CommitHash;
        }
        return files;
    }

    /// <summary>
    /// Downloads a model's weights: model.safetensors.index.json and every shard its weight_map
    /// names (index first), or the single model.safetensors when there is no index.
    /// </summary>
    public async Task<IReadOnlyList<HubFile>> DownloadSafetensorsAsync(
        string repoId,
        string? revision = null,
        IProgress<HubProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        // 1. A sharded checkpoint has an index; an unsharded one does not.
        HubFile index;
        try
        {
            index = await DownloadFileAsync(repoId, SafetensorsIndexFile, revision, progress, cancellationToken);
        }
        catch (HubException e) when (e.Kind is HubErrorKind.EntryNotFound or HubErrorKind.NotCached)
        {
            return [await DownloadFileAsync(repoId, SingleSafetensorsFile, revision, progress, cancellationToken)];
        }

        // 2. Every distinct shard, at the index's commit.
        var shards = await DownloadFilesAsync(repoId, ShardNames(index), index.CommitHash, progress, cancellationToken);
        return [index, .. shards];
    }

    /// <summary>HEAD of the file's resolve URL: commit, blob ETag, size and download location.</summary>
    public Task<HubFileMetadata> GetFileMetadataAsync(
        string repoId, string pathInRepo, string revision, CancellationToken cancellationToken = default) =>
        metadataReader.ReadAsync(repoId, pathInRepo, revision, cancellationToken);

    private HubFile? FromCache(string repoId, string pathInRepo, string revision)
    {
        var commit = HubCache.IsCommitHash(revision) ? revision : Cache.ReadRef(repoId, revision);
        return commit is not null && Cache.TryGetCachedFile(repoId, pathInRepo, commit) is { } path
            ? new HubFile(repoId, pathInRepo, commit, path)
            : null;
    }

    /// <summary>The shard files a safetensors index's weight_map names, each once, in name order.</summary>
    private static List<string> ShardNames(HubFile index)
    {
        using var stream = File.OpenRead(index.LocalPath);
        using var json = JsonDocument.Parse(stream);
        if (!json.RootElement.TryGetProperty("weight_map", out var weightMap) || weightMap.ValueKind != JsonValueKind.Object)
        {
            throw new HubException(HubErrorKind.InvalidResponse, $"{index.RepoId}/{index.PathInRepo} has no weight_map object.");
        }
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var entry in weightMap.EnumerateObject())
        {
            var shard = entry.Value.GetString() ?? "";
            try
            {
                shards.Add(HubNames.CheckPath(shard, "shard name"));
            }
            catch (ArgumentException e)
            {
                throw new HubException(HubErrorKind.InvalidResponse, $"{index.RepoId}/{index.PathInRepo}: {e.Message}", innerException: e);
            }
        }
        return [.. shards];
    }
}
