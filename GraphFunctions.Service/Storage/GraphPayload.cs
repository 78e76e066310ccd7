namespace GraphFunctions.Storage;

using System.IO.Compression;

/// <summary>
/// The bytes a delivery sends: the finished graph JSON from the workspace, as is or gzipped.
/// The graph is complete in the workspace before delivery starts, so nothing half-written can be
/// uploaded. Gzip runs once, streaming into a staging file (a 100 MB graph is never held in
/// memory), and every upload attempt reopens the body with its length known (S3 needs
/// Content-Length).
/// </summary>
internal sealed class GraphPayload : IDisposable
{
    public const string JsonContentType = "application/json";
    public const string GzipEncoding = "gzip";

    private readonly IWorkspaceStore workspace;
    private readonly string graphKey;
    private readonly StagingFile? gzipped;

    private GraphPayload(IWorkspaceStore workspace, string graphKey, StagingFile? gzipped)
    {
        this.workspace = workspace;
        this.graphKey = graphKey;
        this.gzipped = gzipped;
    }

    /// <summary>"gzip" when the body is compressed, else null: the Content-Encoding to send.</summary>
    public string? ContentEncoding => gzipped is null ? null : GzipEncoding;

    public static async Task<GraphPayload> PrepareAsync(IWorkspaceStore workspace, string graphKey, bool compress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        if (!compress)
        {
            // Fail here, not on the first attempt, when the graph is missing.
            if (!await workspace.ExistsAsync(graphKey, cancellationToken))
                throw new FileNotFoundException($"Graph '{graphKey}' is not in the workspace.", graphKey);
            return new GraphPayload(workspace, graphKey, gzipped: null);
        }

        var staging = StagingFile.In(Path.GetTempPath());
        try
        {
            await using var graph = await workspace.OpenReadAsync(graphKey, cancellationToken);
            await staging.FillAsync(async (target, ct) =>
            {
                await using var gzip = new GZipStream(target, CompressionLevel.Optimal, leaveOpen: true);
                await graph.CopyToAsync(gzip, ct);
            }, cancellationToken);
            return new GraphPayload(workspace, graphKey, staging);
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }

    /// <summary>A fresh stream over the body, positioned at its start, with a known Length.</summary>
    public async Task<Stream> OpenAsync(CancellationToken cancellationToken) =>
        gzipped is not null ? gzipped.OpenRead() : await workspace.OpenReadAsync(graphKey, cancellationToken);

    public void Dispose() => gzipped?.Dispose();
}
