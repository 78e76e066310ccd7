namespace Attribution.Tests.Engine;

using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Tests.Support;
using Attribution.Transcoders;

/// <summary>Feature dashboards in circuit-tracer's local format: what is written is read back, byte for byte the format's layout.</summary>
public sealed class FeatureDashboardTests : IDisposable
{
    private readonly TempFolder folder = new("gf-dashboards");

    public void Dispose() => folder.Dispose();

    private static JsonObject Feature(int layer, int index) => new()
    {
        ["index"] = index,
        ["examples_quantiles"] = new JsonArray(new JsonObject
        {
            ["quantile_name"] = "Top activations",
            ["examples"] = new JsonArray(new JsonObject { ["tokens"] = new JsonArray("a", $" L{layer}"), ["tokens_acts_list"] = new JsonArray(0.0, 1.5 + index) }),
        }),
        ["top_logits"] = new JsonArray(" up"),
        ["bottom_logits"] = new JsonArray(" down"),
        ["activation_frequency"] = 0.25,
    };

    [Fact]
    public void Written_dashboards_are_read_back_feature_by_feature_beside_a_set()
    {
        var layers = Enumerable.Range(0, 2).Select(l => (IReadOnlyList<JsonObject>)[.. Enumerable.Range(0, 3).Select(i => Feature(l, i))]).ToList();
        File.WriteAllText(folder["config.yaml"], "model_kind: transcoder_set\n");
        FeatureDashboards.Write(folder[FeatureDashboards.FolderName], layers);

        var read = FeatureDashboards.LoadBeside(folder["config.yaml"]);
        Assert.True(read.Available);
        Assert.Equal(2, read.Layers);
        Assert.Equal(3, read.FeaturesIn(1));
        for (int l = 0; l < 2; l++)
            for (int i = 0; i < 3; i++)
                Assert.True(JsonNode.DeepEquals(Feature(l, i), read.Read(l, i)), $"feature {l}/{i}");
        Assert.Null(read.Read(1, 3));
        Assert.Null(read.Read(2, 0));
        // Many at once, layers interleaved and out of order, one missing: each as read alone, in the order asked.
        var many = read.ReadMany([(1, 2), (0, 0), (2, 0), (1, 0), (0, 2)]);
        Assert.Equal(5, many.Length);
        Assert.Null(many[2]);
        foreach (var (at, (l, i)) in new[] { (0, (1, 2)), (1, (0, 0)), (3, (1, 0)), (4, (0, 2)) })
            Assert.True(JsonNode.DeepEquals(Feature(l, i), many[at]), $"feature {l}/{i} at {at}");

        // The layout itself: a record is a little-endian length, then zlib JSON, at the index's offsets.
        using var index = JsonDocument.Parse(new GZipStream(File.OpenRead(folder["features/index.json.gz"]), CompressionMode.Decompress));
        var layer1 = index.RootElement[1];
        long start = layer1.GetProperty("offsets")[2].GetInt64();
        var bytes = File.ReadAllBytes(folder[$"features/{layer1.GetProperty("filename").GetString()}"]);
        int length = BitConverter.ToInt32(bytes, (int)start);
        using var zlib = new ZLibStream(new MemoryStream(bytes, (int)start + 4, length), CompressionMode.Decompress);
        Assert.Equal(2, JsonNode.Parse(zlib)!["index"]!.GetValue<int>());
        Assert.Equal(start + 4 + length, layer1.GetProperty("offsets")[3].GetInt64());
    }

    [Fact]
    public void A_set_without_dashboards_has_none_and_an_index_may_not_name_files_outside_its_folder()
    {
        Assert.False(FeatureDashboards.LoadBeside(folder.Path).Available);
        Directory.CreateDirectory(folder["features"]);
        using (var index = new GZipStream(File.Create(folder["features/index.json.gz"]), CompressionLevel.Fastest))
            JsonSerializer.Serialize(index, new[] { new { filename = "../secrets.bin", offsets = new[] { 0L, 10L } } });
        var error = Assert.Throws<InvalidDataException>(() => FeatureDashboards.LoadBeside(folder.Path));
        Assert.Contains("plain file name", error.Message, StringComparison.Ordinal);
    }
}
