namespace GraphFunctions.Tests.Storage;

using Attribution.Tests.Support;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using GraphFunctions.Storage;

/// <summary>Graph delivery into an Azurite container, read back with the Blob SDK.</summary>
public sealed class BlobGraphDeliveryTests : IAsyncLifetime, IDisposable
{
    private const string GraphKey = "jobs/sample/graph.json";

    private readonly TempFolder folder = new();
    private readonly LocalWorkspaceStore workspace;
    private BlobContainerClient? container;

    public BlobGraphDeliveryTests() => workspace = new LocalWorkspaceStore(folder.Path);

    public async Task InitializeAsync()
    {
        var service = await Emulators.AzuriteAsync();
        container = service.GetBlobContainerClient(Emulators.UniqueContainerName("graphs"));
    }

    public async Task DisposeAsync()
    {
        if (container is not null)
            await container.DeleteIfExistsAsync();
    }

    public void Dispose() => folder.Dispose();

    [Theory]
    [InlineData(false, "count-1-2.json", null)]
    [InlineData(true, "count-1-2.json.gz", "gzip")]
    public async Task Delivery_uploads_the_graph_as_slug_json_with_its_content_headers(bool compress, string blobName, string? encoding)
    {
        await SampleGraph.StoreAsync(workspace, GraphKey);

        var uri = await new BlobGraphDelivery(container!).DeliverAsync(workspace, GraphKey, "count-1-2", compress);

        var blob = container!.GetBlobClient(blobName);
        Assert.Equal(blob.Uri, uri);
        var download = (await blob.DownloadContentAsync()).Value;
        Assert.Equal("application/json", download.Details.ContentType);
        Assert.Equal(encoding, download.Details.ContentEncoding);
        var body = download.Content.ToArray();
        Assert.Equal(SampleGraph.Bytes(), compress ? body.Gunzip() : body);
    }

    [Fact]
    public async Task Delivery_of_a_graph_missing_from_the_workspace_uploads_nothing()
    {
        await Assert.ThrowsAsync<FileNotFoundException>(() => new BlobGraphDelivery(container!).DeliverAsync(workspace, GraphKey, "count-1-2", compress: false));

        await foreach (var blob in container!.GetBlobsAsync()) Assert.Fail($"unexpected blob {blob.Name}");
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData(".hidden")]
    [InlineData("a\\b")]
    public void A_slug_that_cannot_name_one_blob_is_rejected(string slug) =>
        Assert.Throws<ArgumentException>(() => BlobGraphDelivery.BlobName(slug, compress: false));

    [Fact]
    public async Task Clients_send_a_service_version_that_Azurite_3_35_knows()
    {
        var recorder = new VersionRecorder();
        var options = BlobStorage.ClientOptions();
        options.AddPolicy(recorder, HttpPipelinePosition.PerCall);
        var service = new BlobServiceClient(Emulators.AzuriteConnectionString, options);

        await service.GetBlobContainerClient(container!.Name).ExistsAsync();

        Assert.Equal(["2025-11-05"], recorder.Versions);
    }

    /// <summary>Notes the x-ms-version header of every request the client sends.</summary>
    private sealed class VersionRecorder : HttpPipelineSynchronousPolicy
    {
        public List<string> Versions { get; } = [];

        public override void OnSendingRequest(HttpMessage message)
        {
            if (message.Request.Headers.TryGetValue("x-ms-version", out var version))
                Versions.Add(version);
        }
    }
}
