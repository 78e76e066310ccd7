namespace GraphFunctions.Storage;

using GraphFunctions.Configuration;

/// <summary>Storage settings → storage objects: the only place that decides which store and targets the app uses.</summary>
public static class StorageSetup
{
    /// <summary>A blob workspace when WORKSPACE_BLOB_CONTAINER is set (jobs fanned out over several instances must share it), else a folder.</summary>
    public static IWorkspaceStore CreateWorkspace(StorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return storage.WorkspaceBlobContainer is { } container
            ? new BlobWorkspaceStore(BlobStorage.CreateServiceClient(storage).GetBlobContainerClient(container))
            : new LocalWorkspaceStore(storage.WorkspacePath);
    }

    /// <summary>Blob delivery when GRAPH_BLOB_CONTAINER is set, else null (graphs go inline or to S3 only).</summary>
    public static BlobGraphDelivery? CreateBlobDelivery(StorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return storage.GraphBlobContainer is { } container
            ? new BlobGraphDelivery(BlobStorage.CreateServiceClient(storage).GetBlobContainerClient(container))
            : null;
    }

    public static SignedUrlPolicy CreateSignedUrlPolicy(StorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return SignedUrlPolicy.FromSetting(storage.SignedUrlAllowedHosts);
    }
}
