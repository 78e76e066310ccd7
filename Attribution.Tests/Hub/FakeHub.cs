namespace Attribution.Tests.Hub;

using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Attribution.Tests.Support;

/// <summary>One request as the fake servers saw it.</summary>
internal sealed record SeenRequest(string Server, string Method, string Path, string? Authorization, string? Range, int Status, long BodyBytes);

/// <summary>
/// A model hub on 127.0.0.1 that serves {endpoint}/{repo}/resolve/{revision}/{path} with the real
/// hub's headers, and a second listener on another port playing the CDN that large (LFS) files
/// redirect to. Small files are served by the hub itself with their git blob sha1 as ETag; LFS files
/// get a 302 carrying X-Linked-Etag (sha256), X-Linked-Size and X-Repo-Commit, as huggingface.co does.
/// </summary>
internal sealed class FakeHub : IDisposable
{
    private readonly LoopbackServer hub;
    private readonly LoopbackServer cdn;
    private readonly ConcurrentDictionary<string, Repo> repos = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]> blobs = new(StringComparer.Ordinal);
    private int cuts;

    public FakeHub()
    {
        hub = new LoopbackServer(context => HandleHubAsync(context, "hub"));
        cdn = new LoopbackServer(context => HandleCdnAsync(context, "cdn"));
    }

    public Uri Endpoint => hub.Address;

    public Uri CdnEndpoint => cdn.Address;

    /// <summary>When set, the hub answers 401 without a bearer token and 403 (GatedRepo) with a wrong one.</summary>
    public string? RequiredToken { get; set; }

    /// <summary>When set, the first body served is cut off (connection aborted) after this many bytes.</summary>
    public long? CutFirstBodyAfter { get; set; }

    /// <summary>Serve 200 with the whole file even when a Range is asked for (some servers do).</summary>
    public bool IgnoreRange { get; set; }

    /// <summary>Added to the X-Linked-Size the hub announces, to play a hub that lies about sizes.</summary>
    public long AnnouncedSizeError { get; set; }

    public ConcurrentQueue<SeenRequest> Requests { get; } = new();

    public IEnumerable<SeenRequest> Seen(string server, string method) =>
        Requests.Where(r => r.Server == server && r.Method == method);

    /// <summary>Creates a repo whose branch "main" points at a fresh commit; returns that commit.</summary>
    public string AddRepo(string repoId)
    {
        var repo = new Repo();
        repo.Branches["main"] = NewCommit(repo);
        repos[repoId] = repo;
        return repo.Branches["main"];
    }

    /// <summary>Adds a file to the commit "main" points at.</summary>
    public void AddFile(string repoId, string path, byte[] content, bool lfs)
    {
        var repo = repos[repoId];
        repo.Commits[repo.Branches["main"]][path] = new RepoFile(content, lfs);
        if (lfs)
        {
            blobs[Sha256(content)] = content;
        }
    }

    /// <summary>A new commit on "main" with the same files (what a commit touching other files does).</summary>
    public string MoveMain(string repoId)
    {
        var repo = repos[repoId];
        var commit = NewCommit(repo);
        foreach (var (path, file) in repo.Commits[repo.Branches["main"]])
        {
            repo.Commits[commit][path] = file;
        }
        repo.Branches["main"] = commit;
        return commit;
    }

    /// <summary>The hub's ETag of a file stored in git: sha1 of "blob {length}\0" + content.</summary>
    public static string GitBlobSha1(byte[] content)
    {
        var header = Encoding.ASCII.GetBytes($"blob {content.Length}\0");
#pragma warning disable CA5350 // git names blobs by SHA-1; this is an identifier, not security
        return Convert.ToHexStringLower(SHA1.HashData([.. header, .. content]));
#pragma warning restore CA5350
    }

    /// <summary>The hub's ETag of an LFS file: the sha256 of its content.</summary>
    public static string Sha256(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    public void Dispose()
    {
        hub.Dispose();
        cdn.Dispose();
    }

    private static string NewCommit(Repo repo)
    {
        var commit = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
        repo.Commits[commit] = new ConcurrentDictionary<string, RepoFile>(StringComparer.Ordinal);
        return commit;
    }

    /// <summary>/{org}/{name}/resolve/{revision}/{path...}, with the hub's auth and error headers.</summary>
    private async Task HandleHubAsync(HttpListenerContext context, string server)
    {
        var request = context.Request;
        var response = context.Response;
        var segments = request.RawUrl!.Split('?')[0].Split('/').Skip(1).Select(Uri.UnescapeDataString).ToArray();
        if (segments.Length < 5 || segments[2] != "resolve")
        {
            Finish(context, server, 404, 0);
            return;
        }
        var (repoId, revision, path) = ($"{segments[0]}/{segments[1]}", segments[3], string.Join('/', segments[4..]));

        // 1. Gated repo: no token → 401, wrong token → 403 GatedRepo.
        var authorization = request.Headers["Authorization"];
        if (RequiredToken is not null && authorization != $"Bearer {RequiredToken}")
        {
            response.Headers["X-Error-Code"] = authorization is null ? "RepoNotFound" : "GatedRepo";
            response.Headers["X-Error-Message"] = $"Access to model {repoId} is restricted.";
            Finish(context, server, authorization is null ? 401 : 403, 0);
            return;
        }

        // 2. Repo, revision, file — each missing one has its own X-Error-Code.
        if (!repos.TryGetValue(repoId, out var repo))
        {
            response.Headers["X-Error-Code"] = "RepoNotFound";
            Finish(context, server, 404, 0);
            return;
        }
        var commit = repo.Branches.TryGetValue(revision, out var head) ? head : revision;
        if (!repo.Commits.TryGetValue(commit, out var files))
        {
            response.Headers["X-Error-Code"] = "RevisionNotFound";
            Finish(context, server, 404, 0);
            return;
        }
        response.Headers["X-Repo-Commit"] = commit;
        if (!files.TryGetValue(path, out var file))
        {
            response.Headers["X-Error-Code"] = "EntryNotFound";
            Finish(context, server, 404, 0);
            return;
        }

        // 3. LFS: redirect to the CDN with the linked metadata; git file: serve it with its sha1 ETag.
        if (file.Lfs)
        {
            var sha256 = Sha256(file.Content);
            response.Headers["ETag"] = $"W/\"pointer-{GitBlobSha1(file.Content)[..8]}\"";
            response.Headers["X-Linked-Etag"] = $"\"{sha256}\"";
            response.Headers["X-Linked-Size"] = (file.Content.Length + AnnouncedSizeError).ToString(System.Globalization.CultureInfo.InvariantCulture);
            response.RedirectLocation = new Uri(CdnEndpoint, $"blobs/{sha256}?signature=fake").AbsoluteUri;
            Finish(context, server, 302, 0);
            return;
        }
        response.Headers["ETag"] = $"\"{GitBlobSha1(file.Content)}\"";
        await ServeBodyAsync(context, server, file.Content);
    }

    /// <summary>/blobs/{sha256}: the bytes, with Range support and the one-time cut.</summary>
    private async Task HandleCdnAsync(HttpListenerContext context, string server)
    {
        var name = context.Request.Url!.AbsolutePath.Split('/').Last();
        if (!blobs.TryGetValue(name, out var content))
        {
            Finish(context, server, 404, 0);
            return;
        }
        await ServeBodyAsync(context, server, content);
    }

    private async Task ServeBodyAsync(HttpListenerContext context, string server, byte[] content)
    {
        var request = context.Request;
        var response = context.Response;

        // 1. Range "bytes={start}-" → 206 with Content-Range, unless this server ignores ranges.
        var start = 0L;
        var status = 200;
        if (request.Headers["Range"] is { } range && !IgnoreRange)
        {
            start = long.Parse(range["bytes=".Length..].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
            if (start >= content.Length)
            {
                response.Headers["Content-Range"] = $"bytes */{content.Length}";
                Finish(context, server, 416, 0);
                return;
            }
            status = 206;
            response.Headers["Content-Range"] = $"bytes {start}-{content.Length - 1}/{content.Length}";
        }
        response.StatusCode = status;
        response.ContentLength64 = content.Length - start;
        if (request.HttpMethod == "HEAD")
        {
            Finish(context, server, status, 0);
            return;
        }

        // 2. The first body may be cut off mid-way: send part, let it arrive, then drop the connection.
        var slice = content.AsMemory((int)start);
        if (CutFirstBodyAfter is long cut && Interlocked.Exchange(ref cuts, 1) == 0)
        {
            Record(context, server, status, cut);
            await response.OutputStream.WriteAsync(slice[..(int)cut]);
            await response.OutputStream.FlushAsync();
            await Task.Delay(50);
            response.Abort();
            return;
        }
        // Recorded before the bytes go out: the client may finish reading before this method resumes.
        Record(context, server, status, slice.Length);
        await response.OutputStream.WriteAsync(slice);
        response.Close();
    }

    private void Finish(HttpListenerContext context, string server, int status, long bodyBytes)
    {
        context.Response.StatusCode = status;
        if (context.Request.HttpMethod != "HEAD" || status != 200 && status != 206)
        {
            context.Response.ContentLength64 = 0;
        }
        Record(context, server, status, bodyBytes);
        context.Response.Close();
    }

    private void Record(HttpListenerContext context, string server, int status, long bodyBytes) =>
        Requests.Enqueue(new SeenRequest(
            server,
            context.Request.HttpMethod,
            context.Request.RawUrl!,
            context.Request.Headers["Authorization"],
            context.Request.Headers["Range"],
            status,
            bodyBytes));

    private sealed record RepoFile(byte[] Content, bool Lfs);

    private sealed class Repo
    {
        public ConcurrentDictionary<string, string> Branches { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<string, ConcurrentDictionary<string, RepoFile>> Commits { get; } = new(StringComparer.Ordinal);
    }
}
