namespace GraphFunctions.Tests.Storage;

using Azure.Storage.Blobs;
using GraphFunctions.Storage;

/// <summary>The workspace contract on a blob container in Azurite (a fresh container per test).</summary>
public sealed class BlobWorkspaceStoreTests : WorkspaceStoreContract
{
    private BlobContainerClient? container;

    protected override async Task<IWorkspaceStore> CreateStoreAsync()
    {
        var service = await Emulators.AzuriteAsync();
        container = service.GetBlobContainerClient(Emulators.UniqueContainerName("workspace"));
        return new BlobWorkspaceStore(container);
    }

    public override async Task DisposeAsync()
    {
        if (container is not null)
            await container.DeleteIfExistsAsync();
    }

    [Fact]
    public async Task Keys_are_blob_names_and_the_container_is_created_on_first_write()
    {
        Assert.Empty(await Store.ListAsync("")); // no container yet: an empty workspace, not an error
        Assert.False(await container!.ExistsAsync());

        await WriteTextAsync("jobs/a/graph.json", "{}");

        Assert.True(await container.GetBlobClient("jobs/a/graph.json").ExistsAsync());
    }
}
