namespace GraphFunctions.Orchestration;

using GraphFunctions.Storage;
using Microsoft.Extensions.Logging;

/// <summary>Delivers a finished graph from the workspace to S3 (presigned PUT) or Azure Blob, worded as the Neuronpedia graph server answers.</summary>
/// <param name="deadline">The most one delivery may take (UPLOAD_TIMEOUT_SECONDS).</param>
public sealed class GraphDelivery(IWorkspaceStore workspace, S3PresignedUploader s3, BlobGraphDelivery? blobs, ILogger<GraphDelivery> log, TimeSpan deadline)
{
    public const string UploadFailed = "Failed to upload file";

    public bool BlobConfigured => blobs is not null;

    /// <summary>Delivers within the deadline: a host that accepts and never answers fails the job instead of holding a worker.</summary>
    public async Task<DeliveryOutcome> DeliverAsync(GraphJob job, string graphKey, CancellationToken cancellation = default)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        bounded.CancelAfter(deadline);
        try
        {
            return await DeliverOnceAsync(job, graphKey, bounded.Token);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            log.LogError("Delivering graph {Job} did not finish within {Deadline}", job.JobId, deadline);
            return new DeliveryOutcome(false, $"{UploadFailed}: no answer within the upload deadline of {deadline.TotalSeconds:0} s (UPLOAD_TIMEOUT_SECONDS)", null);
        }
    }

    private async Task<DeliveryOutcome> DeliverOnceAsync(GraphJob job, string graphKey, CancellationToken cancellation)
    {
        try
        {
            if (job.SignedUrl is { } url)
            {
                await s3.UploadAsync(url, workspace, graphKey, job.Compress, cancellation);
                return new DeliveryOutcome(true, $"Graph uploaded successfully to url: {url}", url);
            }
            if (job.ToBlob && blobs is not null)
            {
                var location = await blobs.DeliverAsync(workspace, graphKey, job.Request.Slug, job.Compress, cancellation);
                return new DeliveryOutcome(true, $"Graph uploaded successfully to url: {location}", location.ToString());
            }
            return new DeliveryOutcome(false, UploadFailed, null);
        }
        catch (Exception e) when (e is GraphDeliveryException or Azure.RequestFailedException or IOException or HttpRequestException)
        {
            log.LogError(e, "Delivering graph {Job} failed", job.JobId);
            return new DeliveryOutcome(false, $"{UploadFailed}: {e.Message}", null);
        }
    }
}
