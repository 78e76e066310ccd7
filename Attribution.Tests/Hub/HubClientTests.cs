namespace Attribution.Tests.Hub;

using System.Net;
using System.Text;
using Attribution.Hub;
using Microsoft.Extensions.Logging;

/// <summary>
/// HubClient against <see cref="FakeHub"/> on 127.0.0.1: tokens, redirects, the cache layout,
/// cache reuse, resumed transfers and error messages. No test touches the internet.
/// </summary>
public sealed class HubClientTests : IDisposable
{
    private const string RepoId = "acme/tiny-model";
    private const string Token = "hf_test_token";

    private readonly FakeHub hub = new();
    private readonly string cacheRoot = Path.Combine(Path.GetTempPath(), "hub-tests-" + Guid.NewGuid().ToString("N"));
    private readonly List<HttpClient> httpClients = [];
    private readonly string commit;
    private readonly byte[] weights = Bytes(300_000, seed: 1);
    private readonly byte[] config = Encoding.UTF8.GetBytes("{\"model_type\": \"gemma2\", \"hidden_size\": 8}\n");

    public HubClientTests()
    {
        commit = hub.AddRepo(RepoId);
        hub.AddFile(RepoId, "model.safetensors", weights, lfs: true);
        hub.AddFile(RepoId, "config.json", config, lfs: false);
        hub.AddFile(RepoId, "nested/dir/notes.txt", config, lfs: false);
    }

    private string RepoFolder => Path.Combine(cacheRoot, "models--acme--tiny-model");

    public void Dispose()
    {
        httpClients.ForEach(c => c.Dispose());
        hub.Dispose();
        if (Directory.Exists(cacheRoot))
        {
            Directory.Delete(cacheRoot, recursive: true);
        }
    }

    [Fact]
    public async Task Token_is_sent_as_a_bearer_header_to_the_hub()
    {
        hub.RequiredToken = Token;

        var file = await Client(token: Token).DownloadFileAsync(RepoId, "config.json");

        Assert.Equal(config, await File.ReadAllBytesAsync(file.LocalPath));
        var hubRequests = hub.Requests.Where(r => r.Server == "hub").ToList();
        Assert.NotEmpty(hubRequests);
        Assert.All(hubRequests, r => Assert.Equal($"Bearer {Token}", r.Authorization));
    }

    [Fact]
    public async Task Redirect_to_another_host_does_not_carry_the_token()
    {
        hub.RequiredToken = Token;

        var file = await Client(token: Token).DownloadFileAsync(RepoId, "model.safetensors");

        Assert.Equal(weights, await File.ReadAllBytesAsync(file.LocalPath));
        Assert.All(hub.Requests.Where(r => r.Server == "hub"), r => Assert.Equal($"Bearer {Token}", r.Authorization));
        var cdnRequests = hub.Requests.Where(r => r.Server == "cdn").ToList();
        Assert.NotEmpty(cdnRequests); // the bytes did come from the other host
        Assert.All(cdnRequests, r => Assert.Null(r.Authorization));
    }

    [Fact]
    public async Task Second_download_reuses_the_cache_without_fetching_the_blob_again()
    {
        await Client().DownloadFileAsync(RepoId, "model.safetensors");
        Assert.Single(hub.Seen("cdn", "GET"));

        // A fresh client (as after a restart): the branch costs one HEAD, the bytes come from disk.
        hub.Requests.Clear();
        var again = await Client().DownloadFileAsync(RepoId, "model.safetensors");
        Assert.Equal(weights, await File.ReadAllBytesAsync(again.LocalPath));
        var head = Assert.Single(hub.Requests);
        Assert.Equal(("hub", "HEAD"), (head.Server, head.Method));

        // A pinned commit needs no request at all.
        hub.Requests.Clear();
        var pinned = await Client().DownloadFileAsync(RepoId, "model.safetensors", revision: commit);
        Assert.Equal(again.LocalPath, pinned.LocalPath);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public async Task A_new_commit_with_the_same_file_links_the_existing_blob()
    {
        await Client().DownloadFileAsync(RepoId, "model.safetensors");
        var newCommit = hub.MoveMain(RepoId);
        hub.Requests.Clear();

        var file = await Client().DownloadFileAsync(RepoId, "model.safetensors");

        Assert.Equal(newCommit, file.CommitHash);
        Assert.Equal(newCommit, await File.ReadAllTextAsync(Path.Combine(RepoFolder, "refs", "main")));
        Assert.Empty(hub.Seen("cdn", "GET"));
        Assert.Equal(weights, await File.ReadAllBytesAsync(file.LocalPath));
        Assert.Equal($"../../blobs/{FakeHub.Sha256(weights)}", new FileInfo(file.LocalPath).LinkTarget);
    }

    [Fact]
    public async Task Concurrent_downloads_of_one_file_fetch_it_once()
    {
        var downloads = Enumerable.Range(0, 3).Select(_ => Client().DownloadFileAsync(RepoId, "model.safetensors"));

        var files = await Task.WhenAll(downloads);

        Assert.Single(hub.Seen("cdn", "GET"));
        Assert.All(files, f => Assert.Equal(weights, File.ReadAllBytes(f.LocalPath)));
        Assert.NotNull(new FileInfo(files[0].LocalPath).LinkTarget); // linked, not copied, by the losers
    }

    [Fact]
    public async Task Interrupted_download_is_resumed_with_a_range_request_on_the_next_call()
    {
        hub.CutFirstBodyAfter = 120_000;
        var client = Client(maxResumeAttempts: 0);

        // 1. The connection drops mid-body: the call fails and keeps the partial blob.
        var error = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(RepoId, "model.safetensors"));
        Assert.Equal(HubErrorKind.Interrupted, error.Kind);
        var incomplete = Path.Combine(RepoFolder, "blobs", FakeHub.Sha256(weights) + ".incomplete");
        var partial = new FileInfo(incomplete).Length;
        Assert.Equal(120_000, partial);
        Assert.Equal(weights[..(int)partial], await File.ReadAllBytesAsync(incomplete));

        // 2. The next call asks only for the rest and appends it.
        hub.Requests.Clear();
        var file = await client.DownloadFileAsync(RepoId, "model.safetensors");
        var resumed = Assert.Single(hub.Seen("cdn", "GET"));
        Assert.Equal($"bytes={partial}-", resumed.Range);
        Assert.Equal(206, resumed.Status);
        Assert.Equal(weights.Length - partial, resumed.BodyBytes);
        Assert.Equal(weights, await File.ReadAllBytesAsync(file.LocalPath));
        Assert.False(File.Exists(incomplete));
    }

    [Fact]
    public async Task Interrupted_download_is_resumed_within_the_same_call()
    {
        hub.CutFirstBodyAfter = 50_000;

        var file = await Client(maxResumeAttempts: 3).DownloadFileAsync(RepoId, "model.safetensors");

        Assert.Equal(weights, await File.ReadAllBytesAsync(file.LocalPath));
        Assert.Equal([null, "bytes=50000-"], hub.Seen("cdn", "GET").Select(r => r.Range));
    }

    [Fact]
    public async Task Server_that_ignores_the_range_makes_the_download_start_over()
    {
        hub.CutFirstBodyAfter = 100_000;
        hub.IgnoreRange = true;
        var client = Client(maxResumeAttempts: 0);
        await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(RepoId, "model.safetensors"));

        hub.Requests.Clear();
        var file = await client.DownloadFileAsync(RepoId, "model.safetensors");

        var retry = Assert.Single(hub.Seen("cdn", "GET"));
        Assert.Equal(("bytes=100000-", 200), (retry.Range, retry.Status)); // asked to resume, got the whole file
        Assert.Equal(weights, await File.ReadAllBytesAsync(file.LocalPath));
    }

    [Fact]
    public async Task A_blob_whose_size_differs_from_the_announced_size_is_rejected()
    {
        hub.AnnouncedSizeError = -10;

        var error = await Assert.ThrowsAsync<HubException>(() => Client().DownloadFileAsync(RepoId, "model.safetensors"));

        Assert.Equal(HubErrorKind.InvalidResponse, error.Kind);
        Assert.Contains($"{weights.Length} bytes", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs")));
        Assert.False(Directory.Exists(Path.Combine(RepoFolder, "snapshots", commit)));
    }

    [Fact]
    public async Task Missing_token_gives_an_error_that_names_the_gated_repo_and_HF_TOKEN()
    {
        hub.RequiredToken = Token;

        var error = await Assert.ThrowsAsync<HubException>(() => Client().DownloadFileAsync(RepoId, "config.json"));

        Assert.Equal(HubErrorKind.AccessDenied, error.Kind);
        Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
        Assert.Contains(RepoId, error.Message, StringComparison.Ordinal);
        Assert.Contains("gated or private", error.Message, StringComparison.Ordinal);
        Assert.Contains("No HF_TOKEN is set", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_token_gives_an_error_that_says_the_token_was_refused()
    {
        hub.RequiredToken = Token;

        var error = await Assert.ThrowsAsync<HubException>(() => Client(token: "hf_wrong").DownloadFileAsync(RepoId, "config.json"));

        Assert.Equal(HubErrorKind.AccessDenied, error.Kind);
        Assert.Equal(HttpStatusCode.Forbidden, error.StatusCode);
        Assert.Contains(RepoId, error.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN was sent but is wrong or has no access", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_file_revision_or_repo_gives_a_not_found_error_naming_it()
    {
        var client = Client();

        var file = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(RepoId, "absent.safetensors"));
        Assert.Equal((HubErrorKind.EntryNotFound, HttpStatusCode.NotFound), (file.Kind, file.StatusCode));
        Assert.Contains($"File 'absent.safetensors' was not found in repository '{RepoId}' at revision 'main'", file.Message, StringComparison.Ordinal);

        var revision = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(RepoId, "config.json", "v9"));
        Assert.Equal(HubErrorKind.RevisionNotFound, revision.Kind);
        Assert.Contains($"Revision 'v9' was not found in repository '{RepoId}'", revision.Message, StringComparison.Ordinal);

        var repo = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync("acme/absent", "config.json"));
        Assert.Equal(HubErrorKind.RepositoryNotFound, repo.Kind);
        Assert.Contains("Repository 'acme/absent' was not found", repo.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cache_layout_on_disk_is_the_one_huggingface_hub_writes()
    {
        var client = Client();
        var weightsFile = await client.DownloadFileAsync(RepoId, "model.safetensors");
        var notesFile = await client.DownloadFileAsync(RepoId, "nested/dir/notes.txt");
        var lfsEtag = FakeHub.Sha256(weights);
        var gitEtag = FakeHub.GitBlobSha1(config);

        // refs/main holds the commit, without a newline.
        Assert.Equal(["blobs", "refs", "snapshots"], Directory.GetDirectories(RepoFolder).Select(Path.GetFileName).Order());
        Assert.Equal(commit, await File.ReadAllTextAsync(Path.Combine(RepoFolder, "refs", "main")));

        // blobs/ named by the normalised ETag: sha256 for LFS (X-Linked-Etag wins over the pointer's), git sha1 otherwise.
        Assert.Equal([gitEtag, lfsEtag], Directory.GetFiles(Path.Combine(RepoFolder, "blobs")).Select(Path.GetFileName).Order());
        Assert.Equal(weights, await File.ReadAllBytesAsync(Path.Combine(RepoFolder, "blobs", lfsEtag)));

        // snapshots/{commit}/{path} are relative symlinks into blobs/.
        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit, "model.safetensors"), weightsFile.LocalPath);
        Assert.Equal($"../../blobs/{lfsEtag}", new FileInfo(weightsFile.LocalPath).LinkTarget);
        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit, "nested", "dir", "notes.txt"), notesFile.LocalPath);
        Assert.Equal($"../../../../blobs/{gitEtag}", new FileInfo(notesFile.LocalPath).LinkTarget);
        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit), notesFile.SnapshotFolder);

        // One lock per blob under .locks/, as huggingface_hub keeps them.
        Assert.True(File.Exists(Path.Combine(cacheRoot, ".locks", "models--acme--tiny-model", lfsEtag + ".lock")));
    }

    [Fact]
    public async Task A_cache_written_by_huggingface_hub_is_used_offline_and_online()
    {
        // 1. The layout Python leaves behind, made by hand.
        var etag = FakeHub.Sha256(weights);
        Directory.CreateDirectory(Path.Combine(RepoFolder, "blobs"));
        Directory.CreateDirectory(Path.Combine(RepoFolder, "refs"));
        Directory.CreateDirectory(Path.Combine(RepoFolder, "snapshots", commit));
        await File.WriteAllBytesAsync(Path.Combine(RepoFolder, "blobs", etag), weights);
        await File.WriteAllTextAsync(Path.Combine(RepoFolder, "refs", "main"), commit);
        File.CreateSymbolicLink(Path.Combine(RepoFolder, "snapshots", commit, "model.safetensors"), $"../../blobs/{etag}");

        // 2. Offline: refs/main resolves the branch; no request is made.
        var offline = await Client(offline: true).DownloadFileAsync(RepoId, "model.safetensors");
        Assert.Equal(commit, offline.CommitHash);
        Assert.Equal(weights, await File.ReadAllBytesAsync(offline.LocalPath));
        Assert.Empty(hub.Requests);
        var missing = await Assert.ThrowsAsync<HubException>(() => Client(offline: true).DownloadFileAsync(RepoId, "config.json"));
        Assert.Equal(HubErrorKind.NotCached, missing.Kind);

        // 3. Online: one HEAD confirms the commit; the bytes are not fetched again.
        var online = await Client().DownloadFileAsync(RepoId, "model.safetensors");
        Assert.Equal(offline.LocalPath, online.LocalPath);
        Assert.Equal(["HEAD"], hub.Requests.Select(r => r.Method));
    }

    [Fact]
    public async Task Unreachable_hub_falls_back_to_the_last_cached_commit()
    {
        await Client().DownloadFileAsync(RepoId, "config.json");
        var endpoint = hub.Endpoint;
        hub.Dispose();

        var client = Client(endpoint: endpoint);
        var cached = await client.DownloadFileAsync(RepoId, "config.json");
        var error = await Assert.ThrowsAsync<HubException>(() => client.DownloadFileAsync(RepoId, "model.safetensors"));

        Assert.Equal(commit, cached.CommitHash);
        Assert.Equal(config, await File.ReadAllBytesAsync(cached.LocalPath));
        Assert.Equal(HubErrorKind.Unreachable, error.Kind);
    }

    [Fact]
    public async Task Progress_is_reported_up_to_the_total_and_logged()
    {
        var reports = new List<HubProgress>();
        var logger = new RecordingLogger();

        await Client(logger: logger).DownloadFileAsync(RepoId, "model.safetensors", progress: new SyncProgress<HubProgress>(reports.Add));

        Assert.NotEmpty(reports);
        Assert.Equal(weights.Length, reports[^1].BytesDone);
        Assert.All(reports, r => Assert.Equal(weights.Length, r.TotalBytes));
        Assert.Equal(reports.Select(r => r.BytesDone).Order(), reports.Select(r => r.BytesDone));
        Assert.Contains(logger.Lines, line => line.StartsWith($"Downloaded {RepoId}/model.safetensors", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Safetensors_index_downloads_each_named_shard_once_at_the_index_commit()
    {
        const string shardedRepo = "acme/sharded";
        var shardedCommit = hub.AddRepo(shardedRepo);
        var first = Bytes(1000, seed: 2);
        var second = Bytes(2000, seed: 3);
        var index = """
            {"metadata": {"total_size": 3000}, "weight_map": {
              "a.weight": "model-00001-of-00002.safetensors",
              "b.weight": "model-00002-of-00002.safetensors",
              "c.weight": "model-00001-of-00002.safetensors"}}
            """;
        hub.AddFile(shardedRepo, HubClient.SafetensorsIndexFile, Encoding.UTF8.GetBytes(index), lfs: false);
        hub.AddFile(shardedRepo, "model-00001-of-00002.safetensors", first, lfs: true);
        hub.AddFile(shardedRepo, "model-00002-of-00002.safetensors", second, lfs: true);

        var files = await Client().DownloadSafetensorsAsync(shardedRepo);
        var single = await Client().DownloadSafetensorsAsync(RepoId);

        Assert.Equal(
            [HubClient.SafetensorsIndexFile, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
            files.Select(f => f.PathInRepo));
        Assert.All(files, f => Assert.Equal(shardedCommit, f.CommitHash));
        Assert.Equal(second, await File.ReadAllBytesAsync(files[2].LocalPath));
        Assert.Equal(["model.safetensors"], single.Select(f => f.PathInRepo));
    }

    [Fact]
    public async Task Hf_uri_downloads_the_named_file_at_its_revision()
    {
        var client = Client();

        var path = await client.ResolveLocalPathAsync($"hf://{RepoId}/nested/dir/notes.txt?revision={commit}");

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", commit, "nested", "dir", "notes.txt"), path);
        Assert.Equal("/local/file.safetensors", await client.ResolveLocalPathAsync("/local/file.safetensors"));
    }

    [Fact]
    public async Task An_http_client_that_follows_redirects_itself_is_refused()
    {
        using var following = new HttpClient();
        var client = new HubClient(following, new HubOptions { Endpoint = hub.Endpoint, CacheDirectory = cacheRoot });

        await Assert.ThrowsAsync<InvalidOperationException>(() => client.DownloadFileAsync(RepoId, "model.safetensors"));
    }

    private static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private HubClient Client(
        string? token = null, int maxResumeAttempts = 0, bool offline = false, Uri? endpoint = null, ILogger? logger = null)
    {
        var http = HubClient.CreateHttpClient();
        httpClients.Add(http);
        var options = new HubOptions
        {
            Endpoint = endpoint ?? hub.Endpoint,
            Token = token,
            CacheDirectory = cacheRoot,
            Offline = offline,
            MaxResumeAttempts = maxResumeAttempts,
            ResumeDelay = TimeSpan.Zero,
            MetadataTimeout = TimeSpan.FromSeconds(5),
            ReadTimeout = TimeSpan.FromSeconds(5),
        };
        return new HubClient(http, options, logger);
    }

    /// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; posts to the pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    private sealed class RecordingLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
