namespace Attribution.Transcoders;

using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

/// <summary>
/// Feature dashboards (top activating examples, logit effects, density) in circuit-tracer's local
/// feature format, the one its viewer reads from a <c>features_dir</c>:
/// <list type="bullet">
/// <item><c>index.json.gz</c>: gzip JSON, one entry per layer <c>{"filename": "...bin", "offsets": [...]}</c>;</item>
/// <item>per layer a <c>.bin</c> file where feature f's record spans bytes <c>offsets[f]</c> to
/// <c>offsets[f + 1]</c>: a 4-byte little-endian length, then that many bytes of zlib-compressed JSON.</item>
/// </list>
/// A feature's JSON has <c>index</c>, <c>examples_quantiles</c> (groups of examples, each with
/// <c>tokens</c> and <c>tokens_acts_list</c>), <c>top_logits</c> / <c>bottom_logits</c> (token
/// strings), <c>act_min</c>, <c>act_max</c> and <c>activation_frequency</c>. A set declares its
/// dashboards by a <c>features/</c> folder beside its config.yaml.
/// </summary>
public sealed class FeatureDashboards
{
    public const string FolderName = "features";
    public const string IndexFileName = "index.json.gz";

    /// <summary>A set without dashboards.</summary>
    public static readonly FeatureDashboards None = new(null, []);

    private readonly string? folder;
    private readonly IReadOnlyList<LayerFile> layers;

    private FeatureDashboards(string? folder, IReadOnlyList<LayerFile> layers)
    {
        this.folder = folder;
        this.layers = layers;
    }

    public bool Available => folder is not null;

    /// <summary>Layers with dashboards.</summary>
    public int Layers => layers.Count;

    /// <summary>Features with a record in <paramref name="layer"/> (0 for a layer without dashboards).</summary>
    public int FeaturesIn(int layer) => layer >= 0 && layer < layers.Count ? layers[layer].offsets.Count - 1 : 0;

    /// <summary>The dashboards beside a local set (its config.yaml or folder): its <c>features/</c> folder; none without one.</summary>
    public static FeatureDashboards LoadBeside(string transcoderSet)
    {
        string? setFolder = LocalSetFolder.Of(transcoderSet);
        return setFolder is null ? None : Load(Path.Combine(setFolder, FolderName));
    }

    /// <summary>The dashboards of a features folder (the one holding index.json.gz); none when it has no index.</summary>
    public static FeatureDashboards Load(string featuresFolder)
    {
        string index = Path.Combine(featuresFolder, IndexFileName);
        if (!File.Exists(index)) return None;
        using var gzip = new GZipStream(File.OpenRead(index), CompressionMode.Decompress);
        var entries = JsonSerializer.Deserialize<List<LayerFile>>(gzip) ?? throw new InvalidDataException($"{index} holds no layers");
        foreach (var entry in entries)
        {
            // The index names files in its own folder only: no path may lead out of it.
            if (entry.filename is null || Path.GetFileName(entry.filename) != entry.filename || entry.offsets is not { Count: > 0 })
                throw new InvalidDataException($"{index}: every layer needs a plain file name and its offsets");
        }
        return new FeatureDashboards(featuresFolder, entries);
    }

    /// <summary>Feature <paramref name="index"/> of <paramref name="layer"/> as JSON, or null when the dashboards do not hold it.</summary>
    public JsonObject? Read(int layer, long index) => ReadMany([(layer, index)])[0];

    /// <summary>
    /// Many features at once, in the order asked (null where the dashboards hold none): each
    /// layer's file is opened once, however many of its features are read (a graph's densities).
    /// </summary>
    public JsonObject?[] ReadMany(IReadOnlyList<(int Layer, long Index)> features)
    {
        ArgumentNullException.ThrowIfNull(features);
        var read = new JsonObject?[features.Count];
        var open = new Dictionary<int, FileStream>();
        try
        {
            for (int f = 0; f < features.Count; f++)
            {
                var (layer, index) = features[f];
                if (folder is null || index < 0 || index >= FeaturesIn(layer)) continue;
                var file = layers[layer];
                if (!open.TryGetValue(layer, out var stream)) open[layer] = stream = File.OpenRead(Path.Combine(folder, file.filename!));
                read[f] = Record(stream, file.offsets[(int)index], file.offsets[(int)index + 1], $"feature {layer}/{index} of {folder}");
            }
        }
        finally
        {
            foreach (var stream in open.Values) stream.Dispose();
        }
        return read;
    }

    /// <summary>One record: a 4-byte little-endian length (the format's, and every supported CPU's order), then zlib JSON.</summary>
    private static JsonObject Record(FileStream stream, long start, long end, string what)
    {
        var record = new byte[end - start];
        stream.Seek(start, SeekOrigin.Begin);
        stream.ReadExactly(record);
        int length = BitConverter.ToInt32(record.AsSpan(0, 4));
        using var zlib = new ZLibStream(new MemoryStream(record, 4, length), CompressionMode.Decompress);
        return JsonNode.Parse(zlib)?.AsObject() ?? throw new InvalidDataException($"{what} is empty");
    }

    /// <summary>Writes dashboards: per layer, one JSON object per feature in index order (a feature that never fired still has one).</summary>
    public static void Write(string featuresFolder, IReadOnlyList<IReadOnlyList<JsonObject>> layerFeatures)
    {
        Directory.CreateDirectory(featuresFolder);
        var entries = new List<LayerFile>();
        for (int layer = 0; layer < layerFeatures.Count; layer++)
        {
            string name = $"layer_{layer}.bin";
            var offsets = new List<long> { 0 };
            using (var bin = File.Create(Path.Combine(featuresFolder, name)))
            {
                foreach (var feature in layerFeatures[layer])
                {
                    using var compressed = new MemoryStream();
                    using (var zlib = new ZLibStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
                        zlib.Write(JsonSerializer.SerializeToUtf8Bytes(feature));
                    bin.Write(BitConverter.GetBytes((int)compressed.Length));
                    compressed.WriteTo(bin);
                    offsets.Add(bin.Position);
                }
            }
            entries.Add(new LayerFile { filename = name, offsets = offsets });
        }
        using var index = new GZipStream(File.Create(Path.Combine(featuresFolder, IndexFileName)), CompressionLevel.SmallestSize);
        JsonSerializer.Serialize(index, entries);
    }

#pragma warning disable IDE1006 // the format's own field names
    private sealed class LayerFile
    {
        public string? filename { get; set; }
        public List<long> offsets { get; set; } = [];
    }
#pragma warning restore IDE1006
}
