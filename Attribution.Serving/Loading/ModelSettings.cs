namespace Attribution.Loading;

using System.Text.Json;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>Which model and transcoder set to serve, and how to place them.</summary>
public sealed record ModelSettings
{
    /// <summary>The Hugging Face model id (e.g. google/gemma-2-2b), or the bundled demo model's id.</summary>
    public string ModelId { get; init; } = BundledModel.Id;

    /// <summary>A local model folder; when empty the model comes from the hub by <see cref="ModelId"/>.</summary>
    public string? ModelPath { get; init; }

    /// <summary>A transcoder set name (gemma, mwhanna/qwen3-4b-transcoders, ...), config.yaml, or folder.</summary>
    public string? TranscoderSet { get; init; }

    /// <summary>The Neuronpedia model id written as the graph's scan; defaults from <see cref="ModelId"/>.</summary>
    public string? NeuronpediaModelId { get; init; }

    public string Device { get; init; } = "cpu";

    public ScalarType DType { get; init; } = ScalarType.Float32;

    public bool LazyEncoders { get; init; }

    /// <summary>Where <see cref="TinyRandomModel"/> was written (default: its <see cref="TinyRandomModel.DefaultFolder"/>).</summary>
    public string? BundledFolder { get; init; }

    public static ScalarType ParseDType(string? name) => (name ?? "float32").ToLowerInvariant() switch
    {
        "float32" or "f32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "f16" or "fp16" => ScalarType.Float16,
        "float64" or "f64" => ScalarType.Float64,
        var other => throw new ArgumentException($"compute dtype '{other}' is not one of float32, bfloat16, float16, float64"),
    };
}

/// <summary>What a local model folder is called when no model id is given.</summary>
public static class LocalModelName
{
    /// <summary>
    /// The hub id the model was saved from (config.json `_name_or_path`, as transformers writes
    /// it), else the `model_name` of a local transcoder config.yaml, else the folder's name:
    /// the graph's scan is derived from it, and a folder is often just called "model".
    /// </summary>
    public static string Of(string modelFolder, string? transcoderSet = null)
    {
        string? HubLike(string? name) =>
            name is { Length: > 0 } && name.Count(c => c == '/') == 1 && !name.StartsWith('/') && !name.StartsWith('.') && !Directory.Exists(name) ? name : null;
        string configJson = Path.Combine(modelFolder, "config.json");
        if (File.Exists(configJson))
        {
            using var json = JsonDocument.Parse(File.ReadAllBytes(configJson));
            if (json.RootElement.TryGetProperty("_name_or_path", out var saved) && saved.ValueKind == JsonValueKind.String && HubLike(saved.GetString()) is { } id)
                return id;
        }
        if (transcoderSet is not null && TranscoderSetCatalog.LocalConfigPath(transcoderSet) is { } config
            && HubLike(TranscoderSetConfig.Load(config).ModelName) is { } declared)
            return declared;
        return Path.GetFileName(Path.GetFullPath(modelFolder).TrimEnd('/'));
    }
}

/// <summary>Neuronpedia's model ids for the Neuronpedia graph server's models (docs/graph-format.md); other models use their repo name.</summary>
public static class NeuronpediaIds
{
    public static string ScanFor(string modelId) => modelId switch
    {
        "google/gemma-2-2b" => "gemma-2-2b",
        "Qwen/Qwen3-4B" => "qwen3-4b",
        "google/gemma-3-4b-it" => "gemma-3-4b-it",
        _ => modelId[(modelId.LastIndexOf('/') + 1)..].ToLowerInvariant(),
    };
}
