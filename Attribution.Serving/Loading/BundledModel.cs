namespace Attribution.Loading;

/// <summary>
/// The embedded default: the demo model trained on the synthetic corpus (docs/demo.md) with its
/// trained per-layer and cross-layer transcoders, shipped in the repository's demo/ folder and
/// copied beside the app by the build, so the service runs with no downloads. `train-demo` writes
/// that folder in the layout named here.
/// </summary>
public static class BundledModel
{
    public const string Id = "graphfunctions/demo";
    public const string Scan = "graphfunctions-demo";
    public const string PerLayerSet = "graphfunctions/demo-plt-topk16";
    public const string CrossLayerSet = "graphfunctions/demo-clt-jumprelu";

    /// <summary>Where each part lies under the bundled folder.</summary>
    public const string ModelFolder = "model";
    public const string PerLayerFolder = "transcoders";
    public const string CrossLayerFolder = "clt";

    /// <summary>TRANSCODER_SET value that selects the cross-layer transcoder instead of the per-layer ones.</summary>
    public const string CrossLayerChoice = "clt";

    /// <summary>
    /// Prompts the README tour and the viewer's example chips start from (docs/demo.md); the transcoders
    /// always train on them, so they show in-distribution circuits. Changing them changes the transcoders' split.
    /// </summary>
    public static readonly string[] TourPrompts =
    [
        "The capital of France is", "La capitale de la France est", "3 + 4 =", "Mary and John went out . John gave it to",
        "The capital of England is", "La capitale de l'Angleterre est",
    ];

    public static string Folder => Path.Combine(AppContext.BaseDirectory, "demo");

    /// <summary>Prompts worth trying on <paramref name="modelId"/>: the tour's for the demo model, none for any other.</summary>
    public static IReadOnlyList<string> ExamplePrompts(string modelId) => modelId == Id ? TourPrompts : [];

    /// <summary>(model folder, transcoder config.yaml, set name) for a TRANSCODER_SET: none (per-layer), <see cref="CrossLayerChoice"/>, or the user's own.</summary>
    public static (string ModelFolder, string TranscoderConfig, string SetName) Locate(string? transcoderSet)
    {
        string folder = Folder;
        if (!File.Exists(Path.Combine(folder, ModelFolder, "config.json")))
            throw new InvalidOperationException($"the bundled demo model is missing from {folder}: the build copies it from the repository's demo/ folder (regenerate it with `graphfunctions train-demo --out demo`)");
        string model = Path.Combine(folder, ModelFolder);
        if (!string.IsNullOrEmpty(transcoderSet) && !string.Equals(transcoderSet, CrossLayerChoice, StringComparison.OrdinalIgnoreCase))
            return (model, transcoderSet, transcoderSet);   // the user's own set on the demo model
        bool crossLayer = transcoderSet is not null;
        return (model, Path.Combine(folder, crossLayer ? CrossLayerFolder : PerLayerFolder, "config.yaml"),
            crossLayer ? CrossLayerSet : PerLayerSet);
    }
}
