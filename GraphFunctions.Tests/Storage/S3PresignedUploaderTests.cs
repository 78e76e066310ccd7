namespace GraphFunctions.Tests.Storage;

using System.Net;
using Amazon.S3;
using Amazon.S3.Model;
using Attribution.Tests.Support;
using GraphFunctions.Storage;

/// <summary>
/// Graph delivery through a presigned PUT URL: into s3rver (a URL signed by the AWS SDK, the
/// object read back with the SDK), and against a scripted server for retries and refusals.
/// </summary>
public sealed class S3PresignedUploaderTests : IDisposable
{
    private const string GraphKey = "jobs/sample/graph.json";
    private static readonly UploadRetry FastRetry = new(MaxAttempts: 3, FirstDelay: TimeSpan.FromMilliseconds(10));

    private readonly TempFolder folder = new();
    private readonly LocalWorkspaceStore workspace;
    private readonly HttpClient http = S3PresignedUploader.CreateHttpClient();

    public S3PresignedUploaderTests() => workspace = new LocalWorkspaceStore(folder.Path);

    public void Dispose()
    {
        http.Dispose();
        folder.Dispose();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Upload_to_s3rver_stores_the_graph_and_gzip_when_asked(bool compress)
    {
        using var s3 = await Emulators.S3rverAsync();
        await SampleGraph.StoreAsync(workspace, GraphKey);
        var objectKey = $"tests/{Guid.NewGuid():N}.json";
        var signedUrl = await s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = Emulators.S3Bucket,
            Key = objectKey,
            Verb = HttpVerb.PUT,
            Expires = DateTime.UtcNow.AddMinutes(10),
            Protocol = Protocol.HTTP,
        });

        await Uploader("127.0.0.1").UploadAsync(signedUrl, workspace, GraphKey, compress);

        using var stored = await s3.GetObjectAsync(Emulators.S3Bucket, objectKey);
        var body = await stored.ResponseStream.ReadAllAsync();
        Assert.Equal("application/json", stored.Headers.ContentType);
        if (compress)
        {
            Assert.Equal("gzip", stored.Headers.ContentEncoding);
            Assert.True(body.Length < SampleGraph.Bytes().Length / 2, $"gzip body is {body.Length} bytes");
            body = body.Gunzip();
        }
        else
        {
            Assert.True(string.IsNullOrEmpty(stored.Headers.ContentEncoding), $"Content-Encoding '{stored.Headers.ContentEncoding}'");
        }
        Assert.Equal(SampleGraph.Bytes(), body);
        await s3.DeleteObjectAsync(Emulators.S3Bucket, objectKey);
    }

    [Fact]
    public async Task Upload_retries_after_a_500_and_sends_the_same_gzip_body_with_its_length_again()
    {
        using var server = new ScriptedPutServer(HttpStatusCode.InternalServerError);
        await SampleGraph.StoreAsync(workspace, GraphKey);

        await Uploader("127.0.0.1").UploadAsync(server.Url.ToString(), workspace, GraphKey, compress: true);

        Assert.Equal(2, server.Received.Count);
        var expected = server.Received[0].Body;
        Assert.Equal(SampleGraph.Bytes(), expected.Gunzip());
        foreach (var put in server.Received)
        {
            Assert.Equal("PUT", put.Method);
            Assert.Equal("application/json", put.ContentType);
            Assert.Equal("gzip", put.ContentEncoding);
            Assert.Equal(expected.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), put.ContentLength);
            Assert.Null(put.TransferEncoding); // never chunked: S3 refuses it
            Assert.Equal(expected, put.Body);
        }
    }

    [Fact]
    public async Task Upload_gives_up_after_three_5xx_answers()
    {
        using var server = new ScriptedPutServer(HttpStatusCode.InternalServerError, HttpStatusCode.ServiceUnavailable, HttpStatusCode.BadGateway);
        await SampleGraph.StoreAsync(workspace, GraphKey, nodes: 10);

        var e = await Assert.ThrowsAsync<GraphDeliveryException>(() => Uploader("127.0.0.1").UploadAsync(server.Url.ToString(), workspace, GraphKey, compress: false));

        Assert.Equal(3, server.Received.Count);
        Assert.Contains("after 3 attempt(s): HTTP 502", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal); // the signature stays out of messages
    }

    [Fact]
    public async Task Upload_does_not_retry_a_403()
    {
        using var server = new ScriptedPutServer(HttpStatusCode.Forbidden);
        await SampleGraph.StoreAsync(workspace, GraphKey, nodes: 10);

        var e = await Assert.ThrowsAsync<GraphDeliveryException>(() => Uploader("127.0.0.1").UploadAsync(server.Url.ToString(), workspace, GraphKey, compress: false));

        Assert.Single(server.Received);
        Assert.Contains("after 1 attempt(s): HTTP 403", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upload_does_not_follow_redirects()
    {
        using var server = new ScriptedPutServer(HttpStatusCode.TemporaryRedirect);
        await SampleGraph.StoreAsync(workspace, GraphKey, nodes: 10);

        var e = await Assert.ThrowsAsync<GraphDeliveryException>(() => Uploader("127.0.0.1").UploadAsync(server.Url.ToString(), workspace, GraphKey, compress: false));

        Assert.Single(server.Received);
        Assert.Contains("HTTP 307", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upload_retries_network_errors_and_then_reports_them()
    {
        await SampleGraph.StoreAsync(workspace, GraphKey, nodes: 10);
        string url;
        using (var closed = new ScriptedPutServer())
            url = closed.Url.ToString(); // nothing listens on that port once the server is gone

        var e = await Assert.ThrowsAsync<GraphDeliveryException>(() => Uploader("127.0.0.1").UploadAsync(url, workspace, GraphKey, compress: false));

        Assert.Contains("after 3 attempt(s)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upload_refuses_a_url_off_the_allowlist_without_sending_anything()
    {
        using var server = new ScriptedPutServer();
        await SampleGraph.StoreAsync(workspace, GraphKey, nodes: 10);
        var sameServerOtherName = server.Url.ToString().Replace("127.0.0.1", "localhost", StringComparison.Ordinal);

        var e = await Assert.ThrowsAsync<GraphDeliveryException>(() => Uploader("127.0.0.1").UploadAsync(sameServerOtherName, workspace, GraphKey, compress: false));

        Assert.Equal("signed_url host 'localhost' is not allowed", e.Message);
        Assert.Empty(server.Received);
    }

    [Fact]
    public async Task Upload_of_a_graph_missing_from_the_workspace_fails_before_any_request()
    {
        using var server = new ScriptedPutServer();

        await Assert.ThrowsAsync<FileNotFoundException>(() => Uploader("127.0.0.1").UploadAsync(server.Url.ToString(), workspace, GraphKey, compress: false));
        await Assert.ThrowsAsync<FileNotFoundException>(() => Uploader("127.0.0.1").UploadAsync(server.Url.ToString(), workspace, GraphKey, compress: true));

        Assert.Empty(server.Received);
    }

    private S3PresignedUploader Uploader(string allowedHosts) => new(http, SignedUrlPolicy.FromSetting(allowedHosts), FastRetry);
}
