namespace Attribution.Loading;

using Attribution.Demo;

/// <summary>
/// The embedded default: the demo model trained on the synthetic corpus (docs/demo.md) with its
/// trained per-layer and cross-layer transcoders, shipped in the repository's demo/ folder and
/// copied beside the app by the build, so the service runs with no downloads.
/// </summary>
public static class BundledModel
{
    public const string Id = DemoBuild.ModelName;
    public const string Scan = "graphfunctions-demo";

    /// <summary>TRANSCODER_SET value that selects the cross-layer transcoder instead of the per-layer ones.</summary>
    public const string CrossLayerChoice = "clt";

    public static string Folder => Path.Combine(AppContext.BaseDirectory, "demo");

    /// <summary>Prompts worth trying on <paramref name="modelId"/>: the tour's for the demo model, none for any other.</summary>
    public static IReadOnlyList<string> ExamplePrompts(string modelId) => modelId == Id ? DemoCorpus.TourPrompts : [];

    /// <summary>(model folder, transcoder config.yaml, set name) for a TRANSCODER_SET: none (per-layer), <see cref="CrossLayerChoice"/>, or the user's own.</summary>
    public static (string ModelFolder, string TranscoderConfig, string SetName) Locate(string? transcoderSet)
    {
        string folder = Folder;
        if (!File.Exists(Path.Combine(folder, "model", "config.json")))
            throw new InvalidOperationException($"the bundled demo model is missing from {folder}: the build copies it from the repository's demo/ folder (regenerate it with `graphfunctions train-demo --out demo`)");
        string model = Path.Combine(folder, DemoBuild.ModelFolder);
        if (!string.IsNullOrEmpty(transcoderSet) && !string.Equals(transcoderSet, CrossLayerChoice, StringComparison.OrdinalIgnoreCase))
            return (model, transcoderSet, transcoderSet);   // the user's own set on the demo model
        bool crossLayer = transcoderSet is not null;
        return (model, Path.Combine(folder, crossLayer ? DemoBuild.CrossLayerFolder : DemoBuild.PerLayerFolder, "config.yaml"),
            crossLayer ? DemoBuild.CrossLayerSet : DemoBuild.PerLayerSet);
    }
}
