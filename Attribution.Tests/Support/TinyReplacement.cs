namespace Attribution.Tests.Support;

using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>A seeded tiny model and transcoder set written to disk in the real formats and loaded back.</summary>
public sealed class TinyReplacement : IDisposable
{
    private readonly TempFolder folder = new("gf-tiny");

    public TinyReplacement(TinyModelSpec model, TinyTranscoderSpec transcoders, ScalarType? dtype = null, TranscoderLoadOptions? options = null)
    {
        ModelFolder = folder["model"];
        TinyCheckpoints.WriteModel(ModelFolder, model);
        ConfigPath = TinyCheckpoints.WriteTranscoders(folder["transcoders"], ModelFolder, transcoders);
        var computeType = dtype ?? ScalarType.Float32;
        var loadOptions = (options ?? new TranscoderLoadOptions()) with { DType = computeType, Device = Device };
        Replacement = new ReplacementModel(
            DecoderModel.Load(ModelFolder, Device, computeType),
            TranscoderLoader.LoadLocal(ConfigPath, loadOptions));
    }

    /// <summary>Where tiny models run: GF_TEST_DEVICE (scripts/gpu-check.sh sets "cuda"), else the CPU.</summary>
    public static Device Device { get; } = device(Environment.GetEnvironmentVariable("GF_TEST_DEVICE") is { Length: > 0 } name ? name : "cpu");

    public string ModelFolder { get; }

    public string ConfigPath { get; }

    public string TranscoderFolder => System.IO.Path.GetDirectoryName(ConfigPath)!;

    public ReplacementModel Replacement { get; }

    /// <summary>BOS followed by seeded random token ids.</summary>
    public int[] Prompt(int length, int seed = 3)
    {
        var random = new Random(seed);
        int vocab = Replacement.Model.Config.VocabSize;
        return [Replacement.Model.Config.BosTokenId ?? 2, .. Enumerable.Range(0, length - 1).Select(_ => random.Next(3, vocab))];
    }

    public void Dispose()
    {
        Replacement.Dispose();
        folder.Dispose();
    }
}
