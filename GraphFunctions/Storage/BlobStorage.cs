namespace GraphFunctions.Storage;

using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using GraphFunctions.Configuration;
using Microsoft.Extensions.Configuration;

/// <summary>How the app reaches Azure Blob Storage: one client setup for the workspace and graph containers.</summary>
public static class BlobStorage
{
    /// <summary>
    /// Pinned so that the local emulator understands us: Azurite 3.35 knows service versions up
    /// to 2025-11-05, while Azure.Storage.Blobs 12.30 defaults to 2026-10-06. Every feature used
    /// here (block upload, list, delete) predates it.
    /// </summary>
    public const BlobClientOptions.ServiceVersion PinnedServiceVersion = BlobClientOptions.ServiceVersion.V2025_11_05;

    // The Functions host's identity-based form of AzureWebJobsStorage; IConfiguration reads "__" as ":".
    // Used when AzureWebJobsStorage holds no connection string.
    public static readonly string WebJobsStorageBlobServiceUri = SettingNames.WebJobsStorageBlobServiceUri.Replace("__", ":", StringComparison.Ordinal);
    public static readonly string WebJobsStorageAccountName = SettingNames.WebJobsStorageAccountName.Replace("__", ":", StringComparison.Ordinal);

    public static BlobClientOptions ClientOptions() => new(PinnedServiceVersion);

    /// <summary>
    /// The service client from settings: a connection string in AzureWebJobsStorage (locally
    /// "UseDevelopmentStorage=true", i.e. Azurite), otherwise the account's blob endpoint with a
    /// managed identity (user-assigned when AZURE_CLIENT_ID is set).
    /// </summary>
    public static BlobServiceClient CreateServiceClient(IConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(settings);

        var connectionString = settings[SettingNames.WebJobsStorage];
        if (!string.IsNullOrWhiteSpace(connectionString))
            return new BlobServiceClient(connectionString, ClientOptions());

        var endpoint = BlobEndpoint(settings)
            ?? throw new InvalidOperationException(
                $"Blob storage is not configured: set {SettingNames.WebJobsStorage} to a connection string, "
                + "or AzureWebJobsStorage__blobServiceUri (or __accountName) for a managed identity.");
        return new BlobServiceClient(endpoint, Credential(settings), ClientOptions());
    }

    private static Uri? BlobEndpoint(IConfiguration settings)
    {
        if (settings[WebJobsStorageBlobServiceUri] is { Length: > 0 } uri)
            return new Uri(uri);
        if (settings[WebJobsStorageAccountName] is { Length: > 0 } account)
            return new Uri($"https://{account}.blob.core.windows.net");
        return null;
    }

    private static TokenCredential Credential(IConfiguration settings) =>
        settings[SettingNames.AzureClientId] is { Length: > 0 } clientId
            ? new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(clientId))
            : new DefaultAzureCredential();
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
