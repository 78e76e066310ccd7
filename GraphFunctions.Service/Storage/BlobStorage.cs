namespace GraphFunctions.Storage;

using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using GraphFunctions.Configuration;

/// <summary>How the app reaches Azure Blob Storage: one client setup for the workspace and graph containers.</summary>
public static class BlobStorage
{
    /// <summary>
    /// Pinned so that the local emulator understands us: Azurite 3.35 knows service versions up
    /// to 2025-11-05, while Azure.Storage.Blobs 12.30 defaults to 2026-10-06. Every feature used
    /// here (block upload, list, delete) predates it.
    /// </summary>
    public const BlobClientOptions.ServiceVersion PinnedServiceVersion = BlobClientOptions.ServiceVersion.V2025_11_05;

    public static BlobClientOptions ClientOptions() => new(PinnedServiceVersion);

    /// <summary>
    /// The service client of the account the settings name: by connection string, otherwise its blob
    /// endpoint with a managed identity (user-assigned when AZURE_CLIENT_ID is set).
    /// </summary>
    public static BlobServiceClient CreateServiceClient(StorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (!string.IsNullOrWhiteSpace(storage.ConnectionString))
            return new BlobServiceClient(storage.ConnectionString, ClientOptions());

        var endpoint = storage.BlobEndpoint
            ?? throw new InvalidOperationException(
                $"Blob storage is not configured: set {SettingNames.WebJobsStorage} to a connection string, "
                + "or AzureWebJobsStorage__blobServiceUri (or __accountName) for a managed identity.");
        TokenCredential credential = storage.ManagedIdentityClientId is { } clientId
            ? new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId))
            : new DefaultAzureCredential();
        return new BlobServiceClient(endpoint, credential, ClientOptions());
    }
}

/// <summary>A container that is created on first use, so that clients can be built without I/O.</summary>
internal sealed class LazyContainer(BlobContainerClient client)
{
    private volatile bool created;

    public BlobContainerClient Client { get; } = client ?? throw new ArgumentNullException(nameof(client));

    public async ValueTask<BlobContainerClient> GetAsync(CancellationToken cancellationToken)
    {
        // Racing first calls both run CreateIfNotExists; it is idempotent.
        if (!created)
        {
            await Client.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            created = true;
        }
        return Client;
    }
}
