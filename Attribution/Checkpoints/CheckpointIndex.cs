namespace Attribution.Checkpoints;

using System.Text.Json;

/// <summary>
/// Every tensor of a Hugging Face model folder by name: `model.safetensors`, or the shards
/// listed in `model.safetensors.index.json` (weight_map: tensor name → shard file).
/// </summary>
public static class CheckpointIndex
{
    public const string SingleFile = "model.safetensors";
    public const string ShardIndex = "model.safetensors.index.json";

    public static IReadOnlyDictionary<string, StoredTensor> ReadModelFolder(string folder)
    {
        string single = Path.Combine(folder, SingleFile);
        if (File.Exists(single)) return SafetensorsFormat.ReadHeader(single);

        string index = Path.Combine(folder, ShardIndex);
        if (!File.Exists(index))
            throw new FileNotFoundException($"{folder} has neither {SingleFile} nor {ShardIndex}");
        using var json = JsonDocument.Parse(File.ReadAllBytes(index));
        var shards = json.RootElement.GetProperty("weight_map").EnumerateObject()
            .Select(e => e.Value.GetString()!).Distinct(StringComparer.Ordinal);
        var all = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (string shard in shards)
        {
            foreach (var (name, tensor) in SafetensorsFormat.ReadHeader(Path.Combine(folder, shard)))
                all[name] = tensor;
        }
        return all;
    }

    /// <summary>Reads a checkpoint file by extension: .safetensors or .npz.</summary>
    public static IReadOnlyDictionary<string, StoredTensor> ReadFile(string path) =>
        Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".safetensors" => SafetensorsFormat.ReadHeader(path),
            ".npz" => NpzFormat.ReadHeader(path),
            _ => throw new NotSupportedException($"{path}: unknown checkpoint format (expected .safetensors or .npz)"),
        };

    public static StoredTensor Require(this IReadOnlyDictionary<string, StoredTensor> tensors, string name, string source) =>
        tensors.TryGetValue(name, out var tensor) ? tensor
            : throw new InvalidDataException($"{source}: tensor '{name}' is missing");
}
