namespace Attribution.Hub;

using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
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

    private const int BufferSize = 1 << 20;
    private const int MaxRedirects = 10;
    private static readonly TimeSpan LockPollInterval = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan LockNoticeInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan MaxResumeDelay = TimeSpan.FromSeconds(30);

    private readonly HttpClient http;
    private readonly HubOptions options;
    private readonly ILogger logger;

    /// <summary>
    /// The HttpClient must not follow redirects itself (see <see cref="CreateHttpClient"/>): the
    /// metadata sits on the hub's redirect response, and the token must not follow it to the CDN.
    /// </summary>
    public HubClient(HttpClient http, HubOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(options);
        this.http = http;
        this.options = options;
        this.logger = logger ?? NullLogger.Instance;
        Cache = new HubCache(options.CacheDirectory);
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
            && await DownloadBlobAsync(file, metadata, blob, progress, cancellationToken);

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
    public async Task<HubFileMetadata> GetFileMetadataAsync(
        string repoId, string pathInRepo, string revision, CancellationToken cancellationToken = default)
    {
        if (options.Offline)
        {
            throw new HubException(HubErrorKind.NotCached, $"Offline mode (HF_HUB_OFFLINE) is on: no metadata for '{pathInRepo}' of '{repoId}'.");
        }
        var url = HubNames.ResolveUrl(options.Endpoint, repoId, revision, pathInRepo);

        // 1. HEAD, following only same-origin redirects (a renamed repo); the CDN redirect carries the metadata.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.MetadataTimeout);
        HttpResponseMessage response;
        try
        {
            response = await SendAsync(HttpMethod.Head, url, rangeStart: null, followOtherHosts: false, timeout.Token);
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new HubException(HubErrorKind.Unreachable, $"Cannot reach the hub at {options.Endpoint} ({e.Message}).", innerException: e);
        }

        using (response)
        {
            // 2. Errors carry the hub's explanation.
            var redirected = IsRedirect(response.StatusCode);
            if (!response.IsSuccessStatusCode && !redirected)
            {
                throw HubErrors.FromResponse(response, repoId, revision, pathInRepo, fromHub: true, tokenSent: options.Token is not null);
            }

            // 3. The cache layout needs a commit and an ETag; the linked (LFS) values win over the pointer's.
            var commit = HubErrors.Header(response, "X-Repo-Commit") ?? throw new HubException(
                HubErrorKind.InvalidResponse,
                $"{options.Endpoint} sent no X-Repo-Commit header for '{pathInRepo}' of '{repoId}': it does not look like a Hugging Face hub.");
            var etag = HubErrors.Header(response, "X-Linked-Etag") ?? HubErrors.Header(response, "ETag") ?? throw new HubException(
                HubErrorKind.InvalidResponse,
                $"{options.Endpoint} sent no ETag for '{pathInRepo}' of '{repoId}', so the blob cannot be named in the cache.");
            // A redirect's own Content-Length is that of its (empty) body, not the file's.
            var size = long.TryParse(HubErrors.Header(response, "X-Linked-Size"), out var linkedSize)
                ? linkedSize
                : redirected ? null : response.Content.Headers.ContentLength;
            var location = redirected && response.Headers.Location is { } target
                ? new Uri(response.RequestMessage?.RequestUri ?? url, target)
                : response.RequestMessage?.RequestUri ?? url;
            return new HubFileMetadata(
                HubNames.CheckSegment(commit.Trim(), "commit"),
                HubNames.CheckSegment(HubCache.NormalizeEtag(etag), "ETag"),
                size,
                location);
        }
    }

    private HubFile? FromCache(string repoId, string pathInRepo, string revision)
    {
        var commit = HubCache.IsCommitHash(revision) ? revision : Cache.ReadRef(repoId, revision);
        return commit is not null && Cache.TryGetCachedFile(repoId, pathInRepo, commit) is { } path
            ? new HubFile(repoId, pathInRepo, commit, path)
            : null;
    }

    /// <summary>
    /// Fetches the blob into blobs/{etag} under the blob's lock. Returns false when another process
    /// finished it while we waited for the lock.
    /// </summary>
    private async Task<bool> DownloadBlobAsync(
        HubFile file, HubFileMetadata metadata, string blob, IProgress<HubProgress>? progress, CancellationToken cancellationToken)
    {
        var what = $"{file.RepoId}/{file.PathInRepo}";
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        await using var blobLock = await AcquireLockAsync(Cache.LockPath(file.RepoId, metadata.Etag), what, cancellationToken);
        if (HubCache.IsUsableFile(blob))
        {
            return false;
        }

        // 1. Transfer, resuming from the partial file after each break, up to MaxResumeAttempts times.
        var incomplete = blob + ".incomplete";
        var meter = new ProgressMeter(file, metadata.Size, progress, logger, options.ProgressLogInterval);
        logger.LogInformation("Downloading {What} at commit {Commit} ({Size}) from {Host}",
            what, file.CommitHash, ProgressMeter.Bytes(metadata.Size), metadata.Location.Host);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await TransferAsync(file, metadata, incomplete, meter, cancellationToken);
                break;
            }
            catch (Exception e) when (IsBrokenTransfer(e, cancellationToken))
            {
                var have = LengthOf(incomplete);
                if (attempt >= options.MaxResumeAttempts)
                {
                    throw new HubException(
                        HubErrorKind.Interrupted,
                        $"Download of {what} broke off after {have} of {ProgressMeter.Bytes(metadata.Size)} ({e.Message}). "
                        + $"The partial file {incomplete} is kept; the next call resumes it.",
                        innerException: e);
                }
                var delay = TimeSpan.FromTicks(Math.Min(options.ResumeDelay.Ticks << Math.Min(attempt, 16), MaxResumeDelay.Ticks));
                logger.LogWarning("Download of {What} broke off at {Bytes} bytes ({Reason}); resuming in {Delay} s (attempt {Attempt} of {Max})",
                    what, have, e.Message, delay.TotalSeconds, attempt + 1, options.MaxResumeAttempts);
                await Task.Delay(delay, cancellationToken);
            }
        }

        // 2. Verify the size, then publish atomically: readers see the whole blob or none.
        var length = LengthOf(incomplete);
        if (metadata.Size is long expected && length != expected)
        {
            File.Delete(incomplete);
            throw new HubException(
                HubErrorKind.InvalidResponse,
                $"Download of {what} produced {length} bytes but the hub announced {expected}; the file was discarded, retry the download.");
        }
        File.Move(incomplete, blob, overwrite: true);
        meter.Finish(length);
        return true;
    }

    /// <summary>One GET of the rest of the blob, appended to the partial file.</summary>
    private async Task TransferAsync(
        HubFile file, HubFileMetadata metadata, string incomplete, ProgressMeter meter, CancellationToken cancellationToken)
    {
        // 1. Resume from what is on disk, unless it is already whole or longer than the file can be.
        var offset = LengthOf(incomplete);
        if (metadata.Size is long size && offset >= size)
        {
            if (offset == size)
            {
                return;
            }
            File.Delete(incomplete);
            offset = 0;
        }

        // 2. Ask for the rest. A range the server cannot satisfy means the partial file is no good.
        //    Silence longer than ReadTimeout, for the headers or any later read, counts as a break.
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(options.ReadTimeout);
        var response = await SendAsync(HttpMethod.Get, metadata.Location, offset > 0 ? offset : null, followOtherHosts: true, stall.Token);
        if (offset > 0 && response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            response.Dispose();
            File.Delete(incomplete);
            offset = 0;
            stall.CancelAfter(options.ReadTimeout);
            response = await SendAsync(HttpMethod.Get, metadata.Location, rangeStart: null, followOtherHosts: true, stall.Token);
        }

        using (response)
        {
            var requested = response.RequestMessage?.RequestUri ?? metadata.Location;
            if (!response.IsSuccessStatusCode)
            {
                var fromHub = SameOrigin(requested, options.Endpoint);
                throw HubErrors.FromResponse(response, file.RepoId, file.CommitHash, file.PathInRepo, fromHub, fromHub && options.Token is not null);
            }

            // 3. Append only to a 206 that starts where the file ends; a 200 to a range request is the
            //    whole file again, so start over.
            var partial = response.StatusCode == HttpStatusCode.PartialContent;
            if (partial && (offset == 0 || response.Content.Headers.ContentRange?.From != offset))
            {
                throw new HubException(
                    HubErrorKind.InvalidResponse,
                    $"{requested.Host} sent bytes {response.Content.Headers.ContentRange} of {file.PathInRepo} but bytes {offset}- were asked for.");
            }
            if (offset > 0 && !partial)
            {
                logger.LogInformation("{Host} ignored the range request; downloading {Path} from the start", requested.Host, file.PathInRepo);
                offset = 0;
            }

            // 4. Stream the body to disk.
            var done = offset;
            meter.Begin(offset);
            var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            try
            {
                await using var output = new FileStream(
                    incomplete, partial ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0, useAsync: true);
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                while (true)
                {
                    stall.CancelAfter(options.ReadTimeout);
                    var read = await body.ReadAsync(buffer.AsMemory(0, BufferSize), stall.Token);
                    if (read == 0)
                    {
                        break;
                    }
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    done += read;
                    meter.Report(done);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            // 5. A body that ended early is a break to resume, not a finished file.
            if (metadata.Size is long expected && done < expected)
            {
                throw new IOException($"the body ended after {done} of {expected} bytes");
            }
        }
    }

    /// <summary>
    /// Sends one request, following redirects here so each hop decides on the token afresh: it
    /// goes to the hub's origin only. With followOtherHosts false (HEAD), a redirect to another
    /// host is returned as it is, because its headers are the metadata.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(
        HttpMethod method, Uri url, long? rangeStart, bool followOtherHosts, CancellationToken cancellationToken)
    {
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, url);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity")); // sizes and ranges count stored bytes
            request.Headers.UserAgent.Add(new ProductInfoHeaderValue("GraphFunctions-Attribution", "1.0"));
            if (rangeStart is long start)
            {
                request.Headers.Range = new RangeHeaderValue(start, null);
            }
            if (options.Token is { } token && SameOrigin(url, options.Endpoint))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (response.RequestMessage?.RequestUri is { } sent && sent != url)
            {
                response.Dispose();
                throw new InvalidOperationException(
                    "The HttpClient given to HubClient follows redirects itself; create it with AllowAutoRedirect = false "
                    + "(HubClient.CreateHttpClient does) so the hub's metadata is read and the token stays on the hub.");
            }
            if (!IsRedirect(response.StatusCode) || response.Headers.Location is null)
            {
                return response;
            }
            var next = new Uri(url, response.Headers.Location);
            if (!followOtherHosts && !SameOrigin(next, url))
            {
                return response;
            }
            response.Dispose();
            if (hop >= MaxRedirects)
            {
                throw new HubException(HubErrorKind.InvalidResponse, $"More than {MaxRedirects} redirects from {url}.");
            }
            url = next;
        }
    }

    /// <summary>Waits for the blob's lock file (flock through FileShare.None, as Python's filelock uses).</summary>
    private async Task<FileStream> AcquireLockAsync(string lockPath, string what, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var nextNotice = TimeSpan.Zero;
        while (true)
        {
            try
            {
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (IsLockContention(e))
            {
                if (waited.Elapsed >= nextNotice)
                {
                    logger.LogInformation("Another download of {What} holds {Lock}; waiting", what, lockPath);
                    nextNotice += LockNoticeInterval;
                }
                await Task.Delay(LockPollInterval, cancellationToken);
            }
        }
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

    private static bool IsBrokenTransfer(Exception e, CancellationToken cancellationToken) =>
        e is IOException
        || (e is HttpRequestException { StatusCode: null })
        || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    /// <summary>EWOULDBLOCK from flock (Linux 11, macOS 35), or a Windows sharing/lock violation.</summary>
    private static bool IsLockContention(IOException e) =>
        e.HResult is 11 or 35 || (e.HResult & 0xFFFF) is 32 or 33;

    private static bool IsRedirect(HttpStatusCode status) =>
        status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private static bool SameOrigin(Uri a, Uri b) =>
        Uri.Compare(a, b, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private static long LengthOf(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    /// <summary>
    /// Progress of one blob: the callback at every 5 %, the log at most every ProgressLogInterval,
    /// and one closing line with the rate.
    /// </summary>
    private sealed class ProgressMeter(
        HubFile file, long? total, IProgress<HubProgress>? progress, ILogger logger, TimeSpan logInterval)
    {
        private readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
        private long firstByte = -1;
        private int lastStep = -1;
        private TimeSpan lastLog;

        public void Begin(long offset)
        {
            if (firstByte < 0)
            {
                firstByte = offset;
            }
            Report(offset);
        }

        public void Report(long done)
        {
            var step = total is > 0 ? (int)(done * 20 / total.Value) : -1;
            if (step > lastStep)
            {
                lastStep = step;
                progress?.Report(new HubProgress(file.RepoId, file.PathInRepo, done, total, clock.Elapsed));
            }
            if (clock.Elapsed - lastLog >= logInterval)
            {
                lastLog = clock.Elapsed;
                logger.LogInformation("{Repo}/{Path}: {Percent} ({Done} of {Total}, {Rate}/s)",
                    file.RepoId, file.PathInRepo, Percent(done), Bytes(done), Bytes(total), Bytes(Rate(done)));
            }
        }

        public void Finish(long done)
        {
            if (lastStep < 20)
            {
                progress?.Report(new HubProgress(file.RepoId, file.PathInRepo, done, total ?? done, clock.Elapsed));
            }
            logger.LogInformation("Downloaded {Repo}/{Path}: {Size} in {Seconds:F1} s ({Rate}/s)",
                file.RepoId, file.PathInRepo, Bytes(done), clock.Elapsed.TotalSeconds, Bytes(Rate(done)));
        }

        public static string Bytes(long? bytes) => bytes switch
        {
            null => "unknown size",
            < 1L << 10 => $"{bytes} B",
            < 1L << 20 => $"{bytes / 1024.0:F1} KiB",
            < 1L << 30 => $"{bytes / (1024.0 * 1024):F1} MiB",
            _ => $"{bytes / (1024.0 * 1024 * 1024):F2} GiB",
        };

        private string Percent(long done) => total is > 0 ? $"{100.0 * done / total.Value:F0}%" : "?%";

        private long Rate(long done) =>
            (long)(Math.Max(0, done - Math.Max(firstByte, 0)) / Math.Max(clock.Elapsed.TotalSeconds, 1e-3));
    }
}
