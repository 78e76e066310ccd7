namespace GraphFunctions.Tests.Storage;

using System.Net;

/// <summary>
/// A tiny HTTP server on 127.0.0.1 that records every request and answers with a scripted
/// sequence of status codes (then 200): a stand-in for S3 when a test needs S3 to fail. A 3xx
/// answer points back at the server itself.
/// </summary>
internal sealed class ScriptedPutServer : IDisposable
{
    private readonly HttpListener listener = new();
    private readonly Queue<HttpStatusCode> answers;
    private readonly List<ReceivedRequest> received = [];
    private readonly Task loop;

    public ScriptedPutServer(params HttpStatusCode[] answers)
    {
        this.answers = new Queue<HttpStatusCode>(answers);
        Url = new Uri($"http://127.0.0.1:{GraphFunctions.LocalHost.LocalHostApp.FreeLoopbackPort()}/graphs/graph.json?X-Amz-Signature=secret");
        listener.Prefixes.Add(Url.GetLeftPart(UriPartial.Authority) + "/");
        listener.Start();
        loop = Task.Run(ServeAsync);
    }

    public Uri Url { get; }

    public IReadOnlyList<ReceivedRequest> Received
    {
        get
        {
            lock (received)
                return [.. received];
        }
    }

    public void Dispose()
    {
        listener.Close();
        try
        {
            loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The accept loop ends by failing on the closed listener.
        }
    }

    private async Task ServeAsync()
    {
        while (listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var request = context.Request;
            using var body = new MemoryStream();
            await request.InputStream.CopyToAsync(body);
            HttpStatusCode status;
            lock (received)
            {
                received.Add(new ReceivedRequest(
                    request.HttpMethod, request.ContentType, request.Headers["Content-Encoding"],
                    request.Headers["Content-Length"], request.Headers["Transfer-Encoding"], body.ToArray()));
                status = answers.Count > 0 ? answers.Dequeue() : HttpStatusCode.OK;
            }
            context.Response.StatusCode = (int)status;
            if ((int)status is >= 300 and < 400)
                context.Response.RedirectLocation = Url.ToString(); // back to this server: a client that follows would PUT twice
            context.Response.Close();
        }
    }
}

internal sealed record ReceivedRequest(string Method, string? ContentType, string? ContentEncoding, string? ContentLength, string? TransferEncoding, byte[] Body);
