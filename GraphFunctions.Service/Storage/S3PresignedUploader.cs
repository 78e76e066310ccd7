namespace GraphFunctions.Storage;

using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>
/// Delivers a finished graph to S3 through a presigned PUT URL (the Neuronpedia web app's way of
/// receiving graphs). The URL already carries its signature, so this is one plain HTTP PUT:
/// no AWS SDK, no credentials here.
/// </summary>
/// <remarks>
/// Steps: (1) refuse URLs the allowlist does not accept; (2) prepare the body from the
/// workspace, gzipped once if asked; (3) PUT it with Content-Type, Content-Length and
/// Content-Encoding, retrying network errors and 5xx/408/429 with exponential backoff.
/// Logs and errors name the URL without its query string, which holds the signature.
/// </remarks>
public sealed class S3PresignedUploader(HttpClient http, SignedUrlPolicy policy, UploadRetry? retry = null, ILogger? logger = null)
{
    private readonly UploadRetry retry = retry ?? UploadRetry.Default;
    private readonly ILogger logger = logger ?? NullLogger.Instance;

    /// <summary>How long connecting to the upload host may take: a host that does not accept is given up on quickly.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The HttpClient this uploader is meant for: no redirects (a redirect could lead the graph
    /// off the allowlist), a short connect timeout, and no timeout of its own otherwise — the
    /// caller's deadline (UPLOAD_TIMEOUT_SECONDS) bounds every attempt together.
    /// </summary>
    public static HttpClient CreateHttpClient() =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5), ConnectTimeout = ConnectTimeout })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };

    /// <summary>PUTs the graph stored under <paramref name="graphKey"/>; throws <see cref="GraphDeliveryException"/> when it cannot.</summary>
    public async Task UploadAsync(string signedUrl, IWorkspaceStore workspace, string graphKey, bool compress, CancellationToken cancellationToken = default)
    {
        // Step 1: the HTTP layer validated this already; checking again keeps the rule in force for every caller.
        if (!policy.TryValidate(signedUrl, out var url, out var error))
            throw new GraphDeliveryException(error);
        var target = url.GetLeftPart(UriPartial.Path);

        // Step 2: the body.
        using var payload = await GraphPayload.PrepareAsync(workspace, graphKey, compress, cancellationToken);

        // Step 3: PUT, with retries for failures that a later attempt can fix.
        for (var attempt = 1; ; attempt++)
        {
            var failure = await TryPutAsync(url, payload, cancellationToken);
            if (failure is null)
                return;
            if (!failure.Value.Transient || attempt == retry.MaxAttempts)
                throw new GraphDeliveryException($"PUT to {target} failed after {attempt} attempt(s): {failure.Value.Reason}");

            var delay = retry.DelayBefore(attempt + 1);
            logger.LogWarning("PUT to {Target} failed ({Reason}); attempt {Next} of {Max} in {Delay}",
                target, failure.Value.Reason, attempt + 1, retry.MaxAttempts, delay);
            await Task.Delay(delay, cancellationToken);
        }
    }

    /// <summary>One attempt: null on success, else why it failed and whether retrying can help.</summary>
    private async Task<(bool Transient, string Reason)?> TryPutAsync(Uri url, GraphPayload payload, CancellationToken cancellationToken)
    {
        await using var body = await payload.OpenAsync(cancellationToken);
        using var content = new StreamContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(GraphPayload.JsonContentType);
        content.Headers.ContentLength = body.Length; // S3 refuses chunked uploads
        if (payload.ContentEncoding is { } encoding)
            content.Headers.ContentEncoding.Add(encoding);
        using var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = content };

        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (response.IsSuccessStatusCode)
                return null;
            var status = response.StatusCode;
            var transient = (int)status >= 500 || status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;
            return (transient, $"HTTP {(int)status} {await ErrorSnippetAsync(response, cancellationToken)}".TrimEnd());
        }
        catch (HttpRequestException e)
        {
            return (true, e.Message);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            return (true, $"timed out ({e.Message})");
        }
    }

    /// <summary>The start of the error body (S3 explains failures in a small XML document).</summary>
    private static async Task<string> ErrorSnippetAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        const int MaxChars = 300;
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return text.Length <= MaxChars ? text : text[..MaxChars] + "…";
    }
}

/// <summary>How often and how patiently to retry an upload: attempt n waits FirstDelay × 2^(n-2).</summary>
public sealed record UploadRetry(int MaxAttempts, TimeSpan FirstDelay)
{
    public static UploadRetry Default { get; } = new(MaxAttempts: 3, FirstDelay: TimeSpan.FromSeconds(1));

    public TimeSpan DelayBefore(int attempt) => FirstDelay * Math.Pow(2, attempt - 2);
}

/// <summary>A graph could not be delivered (the HTTP layer answers "Failed to upload file").</summary>
public sealed class GraphDeliveryException : Exception
{
    public GraphDeliveryException()
    {
    }

    public GraphDeliveryException(string message)
        : base(message)
    {
    }

    public GraphDeliveryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
