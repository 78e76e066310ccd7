namespace GraphFunctions.Tests.Storage;

using Attribution.Tests.Support;
using GraphFunctions.Configuration;
using GraphFunctions.Storage;

/// <summary>Which store and delivery targets the settings select.</summary>
public sealed class StorageSetupTests
{
    [Fact]
    public void The_workspace_is_the_folder_named_by_WORKSPACE_PATH()
    {
        using var folder = new TempFolder();

        var store = StorageSetup.CreateWorkspace(Emulators.Storage((SettingNames.WorkspacePath, folder.Path)));

        Assert.Equal(folder.Path, Assert.IsType<LocalWorkspaceStore>(store).Root);
    }

    [Fact]
    public void Without_settings_the_workspace_is_a_folder_in_the_temp_directory_and_there_is_no_blob_delivery()
    {
        var settings = Emulators.Storage();

        Assert.StartsWith(Path.GetTempPath(), Assert.IsType<LocalWorkspaceStore>(StorageSetup.CreateWorkspace(settings)).Root, StringComparison.Ordinal);
        Assert.Null(StorageSetup.CreateBlobDelivery(settings));
    }

    [Fact]
    public async Task WORKSPACE_BLOB_CONTAINER_selects_a_blob_workspace_in_the_AzureWebJobsStorage_account()
    {
        var service = await Emulators.AzuriteAsync();
        var name = Emulators.UniqueContainerName("setup");
        var settings = Emulators.Storage((SettingNames.WebJobsStorage, Emulators.AzuriteConnectionString), (SettingNames.WorkspaceBlobContainer, name));

        var store = StorageSetup.CreateWorkspace(settings);
        try
        {
            await SampleGraph.StoreAsync(store, "jobs/a/graph.json", nodes: 10);

            Assert.IsType<BlobWorkspaceStore>(store);
            Assert.True(await service.GetBlobContainerClient(name).GetBlobClient("jobs/a/graph.json").ExistsAsync());
        }
        finally
        {
            await service.GetBlobContainerClient(name).DeleteIfExistsAsync();
        }
    }

    [Fact]
    public void Without_a_connection_string_the_blob_endpoint_comes_from_the_identity_based_settings()
    {
        var byUri = BlobStorage.CreateServiceClient(Emulators.Storage(("AzureWebJobsStorage__blobServiceUri".Replace("__", ":", StringComparison.Ordinal), "https://graphsacct.blob.core.windows.net")));
        var byAccount = BlobStorage.CreateServiceClient(Emulators.Storage((SettingNames.WebJobsStorageAccountName.Replace("__", ":", StringComparison.Ordinal), "graphsacct"), (SettingNames.AzureClientId, "00000000-0000-0000-0000-000000000001")));

        Assert.Equal("graphsacct", byUri.AccountName);
        Assert.Equal(new Uri("https://graphsacct.blob.core.windows.net"), byAccount.Uri);
    }

    [Fact]
    public void Blob_storage_without_any_account_setting_is_a_clear_configuration_error()
    {
        var e = Assert.Throws<InvalidOperationException>(() => StorageSetup.CreateBlobDelivery(Emulators.Storage((SettingNames.GraphBlobContainer, "graphs"))));
        Assert.Contains("AzureWebJobsStorage", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_signed_url_allowlist_comes_from_SIGNED_URL_ALLOWED_HOSTS()
    {
        var policy = StorageSetup.CreateSignedUrlPolicy(Emulators.Storage((SettingNames.SignedUrlAllowedHosts, "*.amazonaws.com")));

        Assert.True(policy.TryValidate("https://graphs.s3.amazonaws.com/a.json", out _, out _));
        Assert.False(policy.TryValidate("https://evil.com/a.json", out _, out _));
    }
}
