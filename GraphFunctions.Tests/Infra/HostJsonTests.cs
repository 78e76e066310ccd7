namespace GraphFunctions.Tests.Infra;

using System.Globalization;
using System.Text.Json.Nodes;
using GraphFunctions.Configuration;
using GraphFunctions.Workers;

/// <summary>The Functions host settings the deployment relies on (host.json at the repository root).</summary>
public class HostJsonTests
{
    private static readonly JsonObject Host = JsonNode.Parse(File.ReadAllText(RepositoryFiles.PathOf("host.json")))!.AsObject();

    [Fact]
    public void Routes_have_no_api_prefix()
    {
        Assert.Equal("", (string?)Host["extensions"]?["http"]?["routePrefix"]);
    }

    [Fact]
    public void Durable_runs_two_activities_per_gpu_instance_in_a_named_hub_so_a_hung_upload_leaves_one_to_graph_work()
    {
        var durable = Host["extensions"]?["durableTask"];
        int slots = ServiceOptions.ActivitySlotsIn(RepositoryFiles.PathOf("host.json"));
        Assert.Equal(2, slots);
        Assert.Equal(1, new DeliverySlots(slots).Capacity);
        Assert.False(string.IsNullOrWhiteSpace((string?)durable?["hubName"]));
    }

    [Fact]
    public void Durable_runs_on_the_azure_storage_provider_with_short_polling()
    {
        // The provider the local host runs too (DURABLE_STORAGE=azure-storage): the same semantics in both places.
        var provider = Host["extensions"]?["durableTask"]?["storageProvider"];
        Assert.Equal("AzureStorage", (string?)provider?["type"]);
        Assert.InRange((int?)provider?["partitionCount"] ?? 0, 1, 16);
        Assert.True(TimeSpan.Parse((string)provider!["maxQueuePollingInterval"]!, CultureInfo.InvariantCulture) <= TimeSpan.FromSeconds(5),
            "an idle hub polls its queues at most every maxQueuePollingInterval: keep the first activity of a graph prompt");
    }

    [Fact]
    public void Function_timeout_allows_a_long_graph()
    {
        var timeout = (string?)Host["functionTimeout"];
        Assert.NotNull(timeout);
        Assert.True(
            timeout == "-1" || TimeSpan.Parse(timeout, CultureInfo.InvariantCulture) >= TimeSpan.FromHours(1),
            $"functionTimeout {timeout} is too short for a graph");
    }
}
