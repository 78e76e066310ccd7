namespace Attribution.Synthetic;

using Attribution.Loading;
using Attribution.Models;

/// <summary>Writes <see cref="TinyRandomModel"/>: model, tokenizer and transcoders in the real formats, once per folder.</summary>
public static class TinyRandomModelWriter
{
    /// <summary>Writes the model under <paramref name="folder"/> unless it is there; returns (model folder, transcoder config).</summary>
    public static (string ModelFolder, string TranscoderConfig) EnsureWritten(string? folder = null)
    {
        folder ??= TinyRandomModel.DefaultFolder;
        if (File.Exists(Path.Combine(folder, TinyRandomModel.CompleteMarker))) return TinyRandomModel.Locate(folder);

        // Written beside, then moved into place: concurrent first starts never see half a model.
        string staging = folder + ".staging-" + Guid.NewGuid().ToString("N");
        var spec = new TinyModelSpec
        {
            Architecture = ModelArchitecture.Gemma2, VocabSize = TinyTokenizerFactory.VocabSize, DModel = 64, DMlp = 256,
            NLayers = 4, NHeads = 4, NKvHeads = 2, HeadDim = 16, Seed = 2026,
            BosTokenId = TinyTokenizerFactory.BosId, EosTokenId = TinyTokenizerFactory.EosId,
        };
        string model = TinyRandomModel.ModelFolder(staging);
        TinyCheckpoints.WriteModel(model, spec);
        TinyTokenizerFactory.Write(Path.Combine(model, "tokenizer.json"));
        TinyCheckpoints.WriteTranscoders(Path.GetDirectoryName(TinyRandomModel.TranscoderConfig(staging))!, model,
            new TinyTranscoderSpec { DTranscoder = 512, TargetL0 = 16, Seed = 7 });
        File.WriteAllText(Path.Combine(staging, TinyRandomModel.CompleteMarker), TinyRandomModel.Version);
        try
        {
            Directory.Move(staging, folder);
        }
        catch (IOException) when (File.Exists(Path.Combine(folder, TinyRandomModel.CompleteMarker)))
        {
            Directory.Delete(staging, recursive: true);   // another process finished first
        }
        return TinyRandomModel.Locate(folder);
    }
}
