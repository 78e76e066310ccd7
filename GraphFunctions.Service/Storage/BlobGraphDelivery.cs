namespace GraphFunctions.Storage;

using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

/// <summary>
/// Delivers a finished graph to an Azure Blob container (setting GRAPH_BLOB_CONTAINER) as
/// <c>{slug}.json</c>, or <c>{slug}.json.gz</c> with Content-Encoding gzip. The blob appears
/// when the upload commits, so readers never see part of a graph.
/// </summary>
public sealed class BlobGraphDelivery
{
    private readonly LazyContainer container;

    /// <param name="container">The graph container; created on the first delivery.</param>
    public BlobGraphDelivery(BlobContainerClient container) => this.container = new LazyContainer(container);

    public static string BlobName(string slug, bool compress)
    {
        // A slug names one blob in the container: no path separators, no dot-names.
        if (string.IsNullOrWhiteSpace(slug) || slug.IndexOfAny(['/', '\\']) >= 0 || slug[0] == '.' || slug.Any(char.IsControl))
            throw new ArgumentException($"'{slug}' cannot name a graph blob.", nameof(slug));
        return compress ? $"{slug}.json.gz" : $"{slug}.json";
    }

    /// <summary>Uploads the graph stored under <paramref name="graphKey"/>; returns the blob's URI (without credentials).</summary>
    public async Task<Uri> DeliverAsync(IWorkspaceStore workspace, string graphKey, string slug, bool compress, CancellationToken cancellationToken = default)
    {
        var blob = (await container.GetAsync(cancellationToken)).GetBlobClient(BlobName(slug, compress));

        using var payload = await GraphPayload.PrepareAsync(workspace, graphKey, compress, cancellationToken);
        await using var body = await payload.OpenAsync(cancellationToken);
        var headers = new BlobHttpHeaders { ContentType = GraphPayload.JsonContentType, ContentEncoding = payload.ContentEncoding };
        try
        {
            await blob.UploadAsync(body, new BlobUploadOptions { HttpHeaders = headers }, cancellationToken);
        }
        catch (RequestFailedException e)
        {
            throw new GraphDeliveryException($"Upload of blob '{blob.Name}' to container '{blob.BlobContainerName}' failed: {e.Status} {e.ErrorCode}", e);
        }
        return blob.Uri;
    }
}
