namespace Attribution.Transcoders;

using System.Globalization;
using System.Text.Json;

/// <summary>
/// Short human labels of transcoder features (a graph node's <c>clerp</c>), read from a
/// <c>labels.json</c> beside a local set's config.yaml: <c>{"labels": {"layer/index": "label"}}</c>.
/// Neuronpedia keeps its own labels; this file lets a local set carry some (the demo's do).
/// </summary>
public sealed class FeatureLabels
{
    public const string FileName = "labels.json";

    public static readonly FeatureLabels None = new(new Dictionary<string, string>());

    private static readonly JsonSerializerOptions Readable = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly IReadOnlyDictionary<string, string> labels;

    private FeatureLabels(IReadOnlyDictionary<string, string> labels) => this.labels = labels;

    /// <summary>The label of feature <paramref name="index"/> of layer <paramref name="layer"/>, or "" when it has none.</summary>
    public string Of(long layer, long index) => labels.GetValueOrDefault(Key(layer, index), "");

    /// <summary>The labels beside a local set (its config.yaml or folder); none for a hub set or without the file.</summary>
    public static FeatureLabels LoadBeside(string transcoderSet)
    {
        string? folder = LocalSetFolder.Of(transcoderSet);
        string? path = folder is null ? null : Path.Combine(folder, FileName);
        if (path is null || !File.Exists(path)) return None;
        using var stream = File.OpenRead(path);
        var file = JsonSerializer.Deserialize<LabelFile>(stream) ?? throw new InvalidDataException($"{path} is empty");
        return new FeatureLabels(file.labels ?? []);
    }

    public static void Write(string folder, IEnumerable<(int Layer, long Index, string Label)> labels)
    {
        var file = new LabelFile { labels = labels.Where(l => l.Label.Length > 0).ToDictionary(l => Key(l.Layer, l.Index), l => l.Label) };
        File.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(file, Readable));
    }

    private static string Key(long layer, long index) => string.Create(CultureInfo.InvariantCulture, $"{layer}/{index}");

#pragma warning disable IDE1006 // the file's own field name
    private sealed class LabelFile
    {
        public Dictionary<string, string>? labels { get; set; }
    }
#pragma warning restore IDE1006
}
