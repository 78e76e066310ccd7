namespace Attribution.Loading;

using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tokenization;

/// <summary>
/// The random fixture model: a seeded tiny Gemma-2 with random JumpReLU transcoders and a byte-level
/// BPE tokenizer, written in the real formats on first use. Tests serve it (any text tokenizes, and
/// its numbers are fixed by the seed); its graphs are noise. The default is <see cref="BundledModel"/>.
/// </summary>
public static class TinyRandomModel
{
    public const string Id = "graphfunctions/tiny-gemma-2";
    public const string Scan = "tiny-gemma-2";
    public const string TranscoderSetName = "tiny-gemma-2-jumprelu-512";
    private const string Version = "v1";

    public static string DefaultFolder => Path.Combine(Path.GetTempPath(), "graphfunctions-bundled-" + Version);

    /// <summary>Writes the model, tokenizer and transcoders under <paramref name="folder"/> once; returns (model folder, transcoder config).</summary>
    public static (string ModelFolder, string TranscoderConfig) EnsureWritten(string? folder = null)
    {
        folder ??= DefaultFolder;
        string model = Path.Combine(folder, "model"), transcoders = Path.Combine(folder, "transcoders");
        string config = Path.Combine(transcoders, "config.yaml"), done = Path.Combine(folder, "complete");
        if (File.Exists(done)) return (model, config);

        // Written beside, then moved into place: concurrent first starts never see half a model.
        string staging = folder + ".staging-" + Guid.NewGuid().ToString("N");
        var spec = new TinyModelSpec
        {
            Architecture = ModelArchitecture.Gemma2, VocabSize = TinyTokenizerFactory.VocabSize, DModel = 64, DMlp = 256,
            NLayers = 4, NHeads = 4, NKvHeads = 2, HeadDim = 16, Seed = 2026,
            BosTokenId = TinyTokenizerFactory.BosId, EosTokenId = TinyTokenizerFactory.EosId,
        };
        TinyCheckpoints.WriteModel(Path.Combine(staging, "model"), spec);
        TinyTokenizerFactory.Write(Path.Combine(staging, "model", "tokenizer.json"));
        TinyCheckpoints.WriteTranscoders(Path.Combine(staging, "transcoders"), Path.Combine(staging, "model"),
            new TinyTranscoderSpec { DTranscoder = 512, TargetL0 = 16, Seed = 7 });
        File.WriteAllText(Path.Combine(staging, "complete"), Version);
        try
        {
            Directory.Move(staging, folder);
        }
        catch (IOException) when (File.Exists(done))
        {
            Directory.Delete(staging, recursive: true);   // another process finished first
        }
        return (model, config);
    }
}
