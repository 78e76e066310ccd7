namespace Attribution.Loading;

/// <summary>
/// The random fixture model: a seeded tiny Gemma-2 with random JumpReLU transcoders and a byte-level
/// BPE tokenizer. The tests and benchmarks write it (TinyRandomModelWriter, in the fixtures) and serve
/// it: any text tokenizes, and its numbers are fixed by the seed; its graphs are noise. The default
/// is <see cref="BundledModel"/>.
/// </summary>
public static class TinyRandomModel
{
    public const string Id = "graphfunctions/tiny-gemma-2";
    public const string Scan = "tiny-gemma-2";
    public const string TranscoderSetName = "tiny-gemma-2-jumprelu-512";

    /// <summary>Changes whenever the writer makes different files, so that a stale copy is never served.</summary>
    public const string Version = "v1";

    /// <summary>Marks a finished copy (the writer moves a whole folder into place).</summary>
    public const string CompleteMarker = "complete";

    public static string DefaultFolder => Path.Combine(Path.GetTempPath(), "graphfunctions-bundled-" + Version);

    public static string ModelFolder(string folder) => Path.Combine(folder, "model");

    public static string TranscoderConfig(string folder) => Path.Combine(folder, "transcoders", "config.yaml");

    /// <summary>(model folder, transcoder config) of the written copy under <paramref name="folder"/> (default <see cref="DefaultFolder"/>).</summary>
    public static (string ModelFolder, string TranscoderConfig) Locate(string? folder = null)
    {
        folder ??= DefaultFolder;
        if (!File.Exists(Path.Combine(folder, CompleteMarker)))
            throw new InvalidOperationException($"the seeded random model {Id} is not written at {folder}: it is a test fixture, written by the tests and benchmarks before they serve it");
        return (ModelFolder(folder), TranscoderConfig(folder));
    }
}
