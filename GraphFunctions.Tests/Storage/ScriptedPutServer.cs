namespace GraphFunctions.Tests.Storage;

using System.Net;
using Attribution.Tests.Support;

/// <summary>
/// A tiny HTTP server on 127.0.0.1 that records every request and answers with a scripted
/// sequence of status codes (then 200): a stand-in for S3 when a test needs S3 to fail. A 3xx
/// answer points back at the server itself.
/// </summary>
internal sealed class ScriptedPutServer : IDisposable
{
    private readonly LoopbackServer server;
    private readonly Queue<HttpStatusCode> answers;
    private readonly List<ReceivedRequest> received = [];

    public ScriptedPutServer(params HttpStatusCode[] answers)
    {
        this.answers = new Queue<HttpStatusCode>(answers);
        server = new LoopbackServer(AnswerAsync);
        Url = new Uri(server.Address, "graphs/graph.json?X-Amz-Signature=secret");
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

    public void Dispose() => server.Dispose();

    private async Task AnswerAsync(HttpListenerContext context)
    {
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

internal sealed record ReceivedRequest(string Method, string? ContentType, string? ContentEncoding, string? ContentLength, string? TransferEncoding, byte[] Body);
