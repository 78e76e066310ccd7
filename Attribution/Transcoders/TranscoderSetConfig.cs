namespace Attribution.Transcoders;

using Attribution.Models;
using YamlDotNet.RepresentationModel;

public enum TranscoderKind
{
    PerLayer,
    CrossLayer,
}

/// <summary>
/// A circuit-tracer style transcoder set description (config.yaml): what kind of transcoder,
/// where it reads and writes, its files (local paths or hf://repo/path?revision=r URIs) and the
/// activation when the files carry no thresholds. Both circuit-tracer layouts of the
/// `transcoders` list are read: plain paths, and {id, layer, filepath} entries.
/// </summary>
public sealed record TranscoderSetConfig
{
    public string? ModelName { get; init; }

    /// <summary>The set's identifier (circuit-tracer's `scan`; its hub loader reads it, and it names the set's features).</summary>
    public string? Scan { get; init; }

    /// <summary>The hub repository of the set (circuit-tracer reads `repo_id`, for CLTs to download the folder).</summary>
    public string? RepoId { get; init; }

    public required TranscoderKind Kind { get; init; }
    public required ReadHook InputHook { get; init; }
    public required WriteHook OutputHook { get; init; }
    public ActivationSpec? Activation { get; init; }

    /// <summary>Layer files in layer order (PLT); for a CLT, at most one entry: the folder (empty: the config's folder).</summary>
    public IReadOnlyList<string> Transcoders { get; init; } = [];

    /// <summary>The folder relative paths are resolved against.</summary>
    public string BaseDirectory { get; init; } = ".";

    public static TranscoderSetConfig Load(string path) =>
        Parse(File.ReadAllText(path), Path.GetDirectoryName(Path.GetFullPath(path))!, path);

    public static TranscoderSetConfig Parse(string yaml, string baseDirectory, string source = "config.yaml")
    {
        var stream = new YamlStream();
        try
        {
            using var reader = new StringReader(yaml);
            stream.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new InvalidDataException($"{source} is not valid YAML: {e.Message}", e);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new InvalidDataException($"{source}: expected a YAML mapping");

        string? Scalar(string key) => root.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode s ? s.Value : null;

        string kindName = Scalar("model_kind") ?? KindName(TranscoderKind.PerLayer);   // circuit-tracer's default
        var kind = Kinds.TryGetValue(kindName, out var parsedKind) ? parsedKind
            : throw new InvalidDataException($"{source}: unknown model_kind '{kindName}'");
        var activationName = Scalar("activation") ?? Scalar("activation_function");
        int k = int.TryParse(Scalar("k"), out int parsedK) ? parsedK : 0;

        return new TranscoderSetConfig
        {
            ModelName = Scalar("model_name"),
            Scan = Scalar("scan"),
            RepoId = Scalar("repo_id"),
            Kind = kind,
            InputHook = ParseReadHook(Scalar("feature_input_hook") ?? throw new InvalidDataException($"{source}: feature_input_hook is missing")),
            OutputHook = ParseWriteHook(Scalar("feature_output_hook") ?? throw new InvalidDataException($"{source}: feature_output_hook is missing")),
            Activation = activationName is null ? null : new ActivationSpec(activationName, k),
            Transcoders = ParseTranscoderList(root, source),
            BaseDirectory = baseDirectory,
        };
    }

    // One table per mapping: the parser and the writer (ToYaml) ask the same names.
    private static readonly NameTable<TranscoderKind> Kinds = new(
        ("transcoder_set", TranscoderKind.PerLayer),
        ("cross_layer_transcoder", TranscoderKind.CrossLayer));

    private static readonly NameTable<ReadHook> ReadHooks = new(
        ("hook_resid_mid", ReadHook.ResidMid),
        ("ln2.hook_normalized", ReadHook.Ln2Normalized),
        ("mlp.hook_in", ReadHook.MlpIn));

    private static readonly NameTable<WriteHook> WriteHooks = new(
        ("hook_mlp_out", WriteHook.MlpOut),
        ("mlp.hook_out", WriteHook.MlpHookOut));

    public static ReadHook ParseReadHook(string name) =>
        ReadHooks.TryGetValue(name, out var hook) ? hook
            : throw new InvalidDataException($"feature_input_hook '{name}' is not supported ({string.Join(", ", ReadHooks.Names)})");

    public static WriteHook ParseWriteHook(string name) =>
        WriteHooks.TryGetValue(name, out var hook) ? hook
            : throw new InvalidDataException($"feature_output_hook '{name}' is not supported ({string.Join(", ", WriteHooks.Names)})");

    public static string HookName(ReadHook hook) =>
        ReadHooks.TryGetName(hook, out var name) ? name : throw new ArgumentOutOfRangeException(nameof(hook), hook, null);

    public static string HookName(WriteHook hook) =>
        WriteHooks.TryGetName(hook, out var name) ? name : throw new ArgumentOutOfRangeException(nameof(hook), hook, null);

    private static string KindName(TranscoderKind kind) =>
        Kinds.TryGetName(kind, out var name) ? name : throw new ArgumentOutOfRangeException(nameof(kind), kind, null);

    /// <summary>Paths of the transcoder list; {layer, filepath} entries are sorted by layer.</summary>
    private static List<string> ParseTranscoderList(YamlMappingNode root, string source)
    {
        if (!root.Children.TryGetValue(new YamlScalarNode("transcoders"), out var node) || node is not YamlSequenceNode list) return [];
        var entries = new List<(int Layer, string Path)>();
        foreach (var item in list)
        {
            switch (item)
            {
                case YamlScalarNode path:
                    entries.Add((entries.Count, path.Value ?? ""));
                    break;
                case YamlMappingNode entry:
                    string? filePath = (entry.Children.TryGetValue(new YamlScalarNode("filepath"), out var f) ? f : null) is YamlScalarNode fs ? fs.Value : null;
                    int layer = entry.Children.TryGetValue(new YamlScalarNode("layer"), out var l) && l is YamlScalarNode ls && int.TryParse(ls.Value, out int parsed) ? parsed : entries.Count;
                    entries.Add((layer, filePath ?? throw new InvalidDataException($"{source}: a transcoder entry has no filepath")));
                    break;
                default:
                    throw new InvalidDataException($"{source}: unexpected entry in transcoders");
            }
        }
        var layers = entries.Select(e => e.Layer).Order().ToList();
        if (!layers.SequenceEqual(Enumerable.Range(0, layers.Count)))
            throw new InvalidDataException($"{source}: transcoders must cover layers 0..{layers.Count - 1} once each");
        return entries.OrderBy(e => e.Layer).Select(e => e.Path).ToList();
    }

    /// <summary>Writes a config.yaml in the circuit-tracer layout.</summary>
    public string ToYaml()
    {
        var lines = new List<string>();
        if (ModelName is not null) lines.Add($"model_name: \"{ModelName}\"");
        if (Scan is not null) lines.Add($"scan: \"{Scan}\"");
        if (RepoId is not null) lines.Add($"repo_id: \"{RepoId}\"");
        lines.Add($"model_kind: {KindName(Kind)}");
        lines.Add($"feature_input_hook: \"{HookName(InputHook)}\"");
        lines.Add($"feature_output_hook: \"{HookName(OutputHook)}\"");
        if (Activation is not null) lines.Add($"activation: {Activation.Kind}");
        if (Activation is { K: > 0 }) lines.Add($"k: {Activation.K}");
        if (Transcoders.Count > 0)
        {
            lines.Add("transcoders:");
            lines.AddRange(Transcoders.Select(t => $"  - \"{t}\""));
        }
        return string.Join('\n', lines) + "\n";
    }
}
