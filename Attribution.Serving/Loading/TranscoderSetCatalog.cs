namespace Attribution.Loading;

using Attribution.Hub;
using Attribution.Models;
using Attribution.Transcoders;

/// <summary>What a named transcoder set is and where its description comes from.</summary>
public sealed record TranscoderSetEntry(string Name, IReadOnlyList<string> SourceUrls, TranscoderSetConfig? BuiltIn, string? HubRepo);

/// <summary>
/// Resolves the names the Neuronpedia graph server accepts (docs/algorithm.md §8) — `gemma` (GemmaScope per-layer
/// transcoders), `mwhanna/qwen3-4b-transcoders`, `mntss/clt-gemma-2-2b-2.5M` — plus any local
/// config.yaml (or folder holding one) and any hub repo with a config.yaml at its root.
/// </summary>
public static class TranscoderSetCatalog
{
    public const string GemmaScope = "gemma";
    public const string Qwen3Transcoders = "mwhanna/qwen3-4b-transcoders";
    public const string GemmaClt = "mntss/clt-gemma-2-2b-2.5M";

    // The average L0 of the GemmaScope 16k transcoder circuit-tracer's "gemma" preset picks per layer.
    private static readonly int[] GemmaScopeL0 = [76, 65, 49, 54, 88, 87, 95, 70, 52, 72, 88, 5, 6, 8, 8, 8, 10, 12, 13, 12, 11, 13, 15, 25, 37, 41];

    public static TranscoderSetEntry Describe(string name) => name switch
    {
        GemmaScope => new(name,
            ["https://neuronpedia.org/gemma-2-2b/gemmascope-transcoder-16k", "https://huggingface.co/google/gemma-scope-2b-pt-transcoders"],
            new TranscoderSetConfig
            {
                ModelName = "google/gemma-2-2b",
                Kind = TranscoderKind.PerLayer,
                InputHook = ReadHook.Ln2Normalized,
                OutputHook = WriteHook.MlpOut,
                Transcoders = GemmaScopeL0.Select((l0, layer) =>
                    $"hf://google/gemma-scope-2b-pt-transcoders/layer_{layer}/width_16k/average_l0_{l0}/params.npz").ToList(),
            },
            null),
        Qwen3Transcoders => new(name,
            ["https://neuronpedia.org/qwen3-4b/transcoder-hp", "https://huggingface.co/mwhanna/qwen3-4b-transcoders"], null, name),
        GemmaClt => new(name,
            ["https://neuronpedia.org/gemma-2-2b/clt-hp", "https://huggingface.co/mntss/clt-gemma-2-2b-2.5M"], null, name),
        _ when LocalConfigPath(name) is not null => new(name, [], null, null),
        _ when name.Count(c => c == '/') == 1 && !name.StartsWith('/') && !name.StartsWith('.') =>
            new(name, [$"https://huggingface.co/{name}"], null, name),
        _ => throw new ArgumentException($"transcoder set '{name}' is neither a known name, a config.yaml, nor an org/repo on the hub"),
    };

    /// <summary>A config.yaml path, or a folder holding one; null otherwise.</summary>
    public static string? LocalConfigPath(string name)
    {
        if (File.Exists(name)) return Path.GetFullPath(name);
        string inFolder = Path.Combine(name, "config.yaml");
        return Directory.Exists(name) && File.Exists(inFolder) ? Path.GetFullPath(inFolder) : null;
    }

    /// <summary>
    /// Loads a named set, downloading what it needs through <paramref name="hub"/> (entries may be
    /// hf:// URIs). <paramref name="nLayers"/> tells how many CLT layer files to fetch.
    /// </summary>
    public static async Task<TranscoderSet> LoadAsync(string name, int nLayers, HubClient? hub, TranscoderLoadOptions options, CancellationToken cancellation = default)
    {
        var entry = Describe(name);
        TranscoderSetConfig config;
        if (LocalConfigPath(name) is { } local) config = TranscoderSetConfig.Load(local);
        else if (entry.BuiltIn is { } builtIn) config = builtIn;
        else
        {
            var hubClient = hub ?? throw new InvalidOperationException($"transcoder set '{name}' lives on the hub but no hub client is configured");
            var file = await hubClient.DownloadFileAsync(entry.HubRepo!, "config.yaml", cancellationToken: cancellation);
            config = TranscoderSetConfig.Load(file.LocalPath);
            if (config.Kind == TranscoderKind.CrossLayer)
            {
                var layerFiles = Enumerable.Range(0, nLayers).SelectMany(i => new[] { $"W_enc_{i}.safetensors", $"W_dec_{i}.safetensors" });
                await hubClient.DownloadFilesAsync(entry.HubRepo!, layerFiles, file.CommitHash, cancellationToken: cancellation);
                config = config with { Transcoders = [] };
            }
        }

        var resolved = new List<string>();
        foreach (var path in config.Transcoders)
        {
            if (HubUri.IsHubUri(path))
            {
                var hubClient = hub ?? throw new InvalidOperationException($"'{path}' needs the hub but no hub client is configured");
                resolved.Add((await hubClient.DownloadAsync(HubUri.Parse(path), cancellationToken: cancellation)).LocalPath);
            }
            else if (entry.HubRepo is not null && !Path.IsPathRooted(path))
            {
                var hubClient = hub!;
                resolved.Add((await hubClient.DownloadFileAsync(entry.HubRepo, path, cancellationToken: cancellation)).LocalPath);
            }
            else
            {
                resolved.Add(Path.GetFullPath(path, config.BaseDirectory));
            }
        }
        return TranscoderLoader.Load(config with { Transcoders = resolved }, p => p, options);
    }
}
