namespace GraphFunctions.Storage;

using GraphFunctions.Configuration;
using Microsoft.Extensions.Configuration;

/// <summary>Settings → storage objects: the only place that decides which store and targets the app uses.</summary>
public static class StorageSetup
{
    /// <summary>
    /// A blob workspace when WORKSPACE_BLOB_CONTAINER is set (jobs fanned out over several
    /// instances must share it), else a folder: WORKSPACE_PATH, or a folder in the temp directory.
    /// </summary>
    public static IWorkspaceStore CreateWorkspace(IConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings[SettingNames.WorkspaceBlobContainer] is { Length: > 0 } container)
            return new BlobWorkspaceStore(BlobStorage.CreateServiceClient(settings).GetBlobContainerClient(container));
        var path = settings[SettingNames.WorkspacePath] is { Length: > 0 } configured
            ? configured
            : Path.Combine(Path.GetTempPath(), "graphfunctions-workspace");
        return new LocalWorkspaceStore(path);
    }

    /// <summary>Blob delivery when GRAPH_BLOB_CONTAINER is set, else null (graphs go inline or to S3 only).</summary>
    public static BlobGraphDelivery? CreateBlobDelivery(IConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings[SettingNames.GraphBlobContainer] is { Length: > 0 } container
            ? new BlobGraphDelivery(BlobStorage.CreateServiceClient(settings).GetBlobContainerClient(container))
            : null;
    }

    public static SignedUrlPolicy CreateSignedUrlPolicy(IConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return SignedUrlPolicy.FromSetting(settings[SettingNames.SignedUrlAllowedHosts]);
    }
}
