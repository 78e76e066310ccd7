namespace GraphFunctions.Configuration;

/// <summary>Where job files are kept and graphs delivered; read with the other settings by <see cref="ServiceOptions"/>.</summary>
public sealed record StorageOptions
{
    public static string DefaultWorkspacePath => Path.Combine(Path.GetTempPath(), "graphfunctions-workspace");

    /// <summary>WORKSPACE_BLOB_CONTAINER: a blob workspace, which jobs fanned out over several instances must share.</summary>
    public string? WorkspaceBlobContainer { get; init; }

    /// <summary>WORKSPACE_PATH: the workspace folder when there is no blob workspace.</summary>
    public string WorkspacePath { get; init; } = DefaultWorkspacePath;

    /// <summary>GRAPH_BLOB_CONTAINER: deliver graphs to this container (otherwise inline or S3 only).</summary>
    public string? GraphBlobContainer { get; init; }

    /// <summary>SIGNED_URL_ALLOWED_HOSTS: the hosts a presigned upload URL may point at.</summary>
    public string? SignedUrlAllowedHosts { get; init; }

    /// <summary>
    /// The storage account, from AzureWebJobsStorage: a connection string (locally
    /// "UseDevelopmentStorage=true", i.e. Azurite), or, with no connection string, its identity-based
    /// form (AzureWebJobsStorage__blobServiceUri or __accountName, and AZURE_CLIENT_ID for a
    /// user-assigned identity).
    /// </summary>
    public string? ConnectionString { get; init; }

    public Uri? BlobEndpoint { get; init; }

    public string? ManagedIdentityClientId { get; init; }
}
