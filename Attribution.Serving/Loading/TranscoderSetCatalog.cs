namespace Attribution.Loading;

using Attribution.Hub;
using Attribution.Models;
using Attribution.Transcoders;

/// <summary>
/// What a named transcoder set is: its source URLs (written into every graph's metadata.info),
/// and either a built-in description or the hub reference whose config.yaml describes it.
/// </summary>
public sealed record TranscoderSetEntry(string Name, IReadOnlyList<string> SourceUrls, TranscoderSetConfig? BuiltIn, HubReference? Hub);

/// <summary>
/// Resolves transcoder set names (docs/algorithm.md §8): the sets Neuronpedia's graph server
/// names, with its source URLs — `gemma` (GemmaScope per-layer transcoders),
/// `mwhanna/qwen3-4b-transcoders`, `mntss/clt-gemma-2-2b-2.5M` and Gemma-3-4b-it's
/// `mwhanna/gemma-scope-2-4b-it/transcoder_all/width_262k_l0_small_affine` — circuit-tracer's
/// `llama` shortcut, any local config.yaml (or folder holding one), and any hub reference in
/// circuit-tracer's form, org/repo[/subfolder][@revision], with a config.yaml in that folder.
/// </summary>
public static class TranscoderSetCatalog
{
    public const string GemmaScope = "gemma";
    public const string Qwen3Transcoders = "mwhanna/qwen3-4b-transcoders";
    public const string GemmaClt = "mntss/clt-gemma-2-2b-2.5M";
    public const string Gemma3Transcoders = "mwhanna/gemma-scope-2-4b-it/transcoder_all/width_262k_l0_small_affine";

    /// <summary>circuit-tracer's shortcut for the Llama-3.2-1B per-layer transcoders, and the repo it stands for.</summary>
    public const string Llama = "llama";
    public const string LlamaTranscoders = "mntss/transcoder-Llama-3.2-1B";

    // The average L0 of the GemmaScope 16k transcoder circuit-tracer's "gemma" preset picks per layer.
    private static readonly int[] GemmaScopeL0 = [76, 65, 49, 54, 88, 87, 95, 70, 52, 72, 88, 5, 6, 8, 8, 8, 10, 12, 13, 12, 11, 13, 15, 25, 37, 41];

    /// <summary>The source URLs of the named sets, as Neuronpedia's graph server lists them (its Neuronpedia page first).</summary>
    private static readonly Dictionary<string, string[]> NamedSourceUrls = new(StringComparer.Ordinal)
    {
        [GemmaScope] = ["https://neuronpedia.org/gemma-2-2b/gemmascope-transcoder-16k", "https://huggingface.co/google/gemma-scope-2b-pt-transcoders"],
        [Qwen3Transcoders] = ["https://neuronpedia.org/qwen3-4b/transcoder-hp", "https://huggingface.co/mwhanna/qwen3-4b-transcoders"],
        [GemmaClt] = ["https://neuronpedia.org/gemma-2-2b/clt-hp", "https://huggingface.co/mntss/clt-gemma-2-2b-2.5M"],
        [Gemma3Transcoders] =
        [
            "https://neuronpedia.org/gemma-3-4b-it/gemmascope-transcoder-262k",
            "https://huggingface.co/mwhanna/gemma-scope-2-4b-it/transcoder_all/width_262k_l0_small_affine",
            "https://huggingface.co/google/gemma-scope-2-4b-it/transcoder_all",
        ],
        [LlamaTranscoders] = ["https://huggingface.co/mntss/transcoder-Llama-3.2-1B"],
    };

    public static TranscoderSetEntry Describe(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name == GemmaScope) return new(name, NamedSourceUrls[name], GemmaScopeConfig(), null);
        if (LocalConfigPath(name) is not null) return new(name, [], null, null);
        string reference = name == Llama ? LlamaTranscoders : name;
        if (!HubReference.Looks(reference))
            throw new ArgumentException($"transcoder set '{name}' is neither a known name ({GemmaScope}, {Llama}, {Qwen3Transcoders}, {GemmaClt}, {Gemma3Transcoders}), a config.yaml or a folder holding one, nor a hub reference (org/repo[/subfolder][@revision])");
        HubReference hub;
        try
        {
            hub = HubReference.Parse(reference);
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"transcoder set '{name}': {e.Message}", e);
        }
        return new(name, NamedSourceUrls.GetValueOrDefault(reference) ?? [hub.WebUrl], null, hub);
    }

    /// <summary>GemmaScope's 16k per-layer transcoders at the L0 circuit-tracer's preset picks, read from Google's own repo.</summary>
    private static TranscoderSetConfig GemmaScopeConfig() => new()
    {
        ModelName = "google/gemma-2-2b",
        Kind = TranscoderKind.PerLayer,
        InputHook = ReadHook.Ln2Normalized,
        OutputHook = WriteHook.MlpOut,
        Transcoders = GemmaScopeL0.Select((l0, layer) =>
            $"hf://google/gemma-scope-2b-pt-transcoders/layer_{layer}/width_16k/average_l0_{l0}/params.npz").ToList(),
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
    /// hf:// URIs). <paramref name="nLayers"/> tells how many layer files to fetch where the config
    /// lists none (a CLT's W_enc_i/W_dec_i; circuit-tracer's layer_i.safetensors).
    /// </summary>
    public static async Task<TranscoderSet> LoadAsync(string name, int nLayers, HubClient? hub, TranscoderLoadOptions options, CancellationToken cancellation = default)
    {
        var entry = Describe(name);
        if (LocalConfigPath(name) is { } local) return TranscoderLoader.LoadLocal(local, options);
        if (entry.BuiltIn is { } builtIn) return TranscoderLoader.Load(builtIn with { Transcoders = await ResolveAsync(builtIn.Transcoders, null, null, hub, cancellation) }, p => p, options);

        // A hub reference: its config.yaml, then the files it names, all at the commit the config came from.
        var set = entry.Hub!;
        var hubClient = hub ?? throw new InvalidOperationException($"transcoder set '{name}' lives on the hub but no hub client is configured");
        var configFile = await hubClient.DownloadFileAsync(set.RepoId, set.PathOf("config.yaml"), set.Revision, cancellationToken: cancellation);
        var config = TranscoderSetConfig.Load(configFile.LocalPath);
        string commit = configFile.CommitHash;
        if (config.Transcoders.Count == 0)
        {
            // No list: the layer files beside the config, in circuit-tracer's names.
            var layerFiles = config.Kind == TranscoderKind.CrossLayer
                ? Enumerable.Range(0, nLayers).SelectMany(i => new[] { $"W_enc_{i}.safetensors", $"W_dec_{i}.safetensors" })
                : Enumerable.Range(0, nLayers).Select(i => $"layer_{i}.safetensors");
            var fetched = await hubClient.DownloadFilesAsync(set.RepoId, layerFiles.Select(set.PathOf), commit, cancellationToken: cancellation);
            return config.Kind == TranscoderKind.CrossLayer
                ? TranscoderLoader.Load(config with { Transcoders = [], BaseDirectory = Path.GetDirectoryName(fetched[0].LocalPath)! }, p => p, options)
                : TranscoderLoader.Load(config with { Transcoders = [.. fetched.Select(f => f.LocalPath)] }, p => p, options);
        }
        return TranscoderLoader.Load(config with { Transcoders = await ResolveAsync(config.Transcoders, set, commit, hub, cancellation) }, p => p, options);
    }

    /// <summary>
    /// A config's entries as local files: hf:// URIs downloaded; paths relative to a hub set's
    /// folder downloaded from it at <paramref name="commit"/>; local paths as they are.
    /// </summary>
    private static async Task<List<string>> ResolveAsync(IReadOnlyList<string> entries, HubReference? set, string? commit, HubClient? hub, CancellationToken cancellation)
    {
        var resolved = new List<string>();
        foreach (var path in entries)
        {
            if (HubUri.IsHubUri(path))
            {
                var hubClient = hub ?? throw new InvalidOperationException($"'{path}' needs the hub but no hub client is configured");
                resolved.Add((await hubClient.DownloadAsync(HubUri.Parse(path), cancellationToken: cancellation)).LocalPath);
            }
            else if (set is not null && !Path.IsPathRooted(path))
            {
                resolved.Add((await hub!.DownloadFileAsync(set.RepoId, set.PathOf(path), commit, cancellationToken: cancellation)).LocalPath);
            }
            else
            {
                resolved.Add(path);
            }
        }
        return resolved;
    }
}
