namespace Attribution.Hub;

using System.Net;
using System.Net.Http.Headers;

/// <summary>
/// Requests to the hub and to the CDN its large files redirect to. Redirects are followed here,
/// hop by hop, so each hop decides on the token afresh: it goes to the hub's origin only.
/// </summary>
internal sealed class HubHttp(HttpClient http, HubOptions options)
{
    private const int MaxRedirects = 10;

    /// <summary>
    /// Sends one request and follows its redirects. With followOtherHosts false (HEAD), a redirect
    /// to another host is returned as it is, because its headers are the metadata.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(
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

    public static bool IsRedirect(HttpStatusCode status) =>
        status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    public static bool SameOrigin(Uri a, Uri b) =>
        Uri.Compare(a, b, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
}
