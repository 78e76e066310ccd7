namespace Attribution.Hub;

/// <summary>
/// What the hub says about a file before any byte moves, read from the HEAD of its resolve URL
/// (or from the redirect that HEAD gets, for a large file on a CDN).
/// </summary>
internal sealed class HubMetadataReader(HubHttp http, HubOptions options)
{
    /// <summary>HEAD of the file's resolve URL: commit, blob ETag, size and download location.</summary>
    public async Task<HubFileMetadata> ReadAsync(string repoId, string pathInRepo, string revision, CancellationToken cancellationToken)
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
            response = await http.SendAsync(HttpMethod.Head, url, rangeStart: null, followOtherHosts: false, timeout.Token);
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new HubException(HubErrorKind.Unreachable, $"Cannot reach the hub at {options.Endpoint} ({e.Message}).", innerException: e);
        }

        using (response)
        {
            // 2. Errors carry the hub's explanation.
            var redirected = HubHttp.IsRedirect(response.StatusCode);
            if (!response.IsSuccessStatusCode && !redirected)
            {
                throw HubErrors.FromResponse(response, repoId, revision, pathInRepo, fromHub: true, tokenSent: options.Token is not null);
            }

            // 3. The metadata is in the headers.
            return FromHeaders(response, url, redirected, repoId, pathInRepo);
        }
    }

    /// <summary>The cache layout needs a commit and an ETag; the linked (LFS) values win over the pointer's.</summary>
    private HubFileMetadata FromHeaders(HttpResponseMessage response, Uri url, bool redirected, string repoId, string pathInRepo)
    {
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
