namespace Attribution.Tests.Engine;

using Attribution;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using Attribution.Transcoders;
using Xunit.Abstractions;
using static TorchSharp.torch;

/// <summary>
/// Transcoder sets are far larger than memory in production (57–160 GiB): loading one and
/// attributing a prompt must read only what it needs (issue #4).
/// </summary>
[Collection(MeasuresProcessMemory.Name)]
public class LazyLoadingTests(ITestOutputHelper output)
{
    [Fact]
    public void Attributing_with_a_large_transcoder_file_keeps_memory_far_below_its_size()
    {
        using var folder = new TempFolder();
        TinyCheckpoints.WriteModel(folder["model"], new TinyModelSpec { Architecture = ModelArchitecture.Llama, Seed = 1 });
        // Three layers of 400k features × d_model 64, float32: W_enc + W_dec ≈ 205 MB per layer file.
        string config = TinyCheckpoints.WriteTranscoders(folder["transcoders"], folder["model"],
            new TinyTranscoderSpec { DTranscoder = 400_000, TargetL0 = 20, Seed = 2 });
        long fileBytes = Directory.GetFiles(folder["transcoders"], "*.safetensors").Sum(f => new FileInfo(f).Length);
        Assert.True(fileBytes > 500L << 20, $"the test set should be several hundred MB, is {fileBytes >> 20} MB");

        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = ProcessMemory.ResidentBytes();
        using var replacement = new ReplacementModel(
            DecoderModel.Load(folder["model"], CPU, ScalarType.Float32),
            TranscoderLoader.LoadLocal(config, new TranscoderLoadOptions { LazyDecoders = true, LazyEncoders = true }));
        TorchInfo.ReleaseFreedMemory();   // as LoadedModel does after loading
        long afterLoad = ProcessMemory.ResidentBytes();
        using var result = Attributor.Attribute(replacement, [2, 17, 101, 5, 66, 9, 200, 31], new AttributionSettings { BatchSize = 16, MaxFeatureNodes = 50 });
        TorchInfo.ReleaseFreedMemory();   // as the service does once it is idle after a job
        long afterGraph = ProcessMemory.ResidentBytes();

        output.WriteLine($"set {fileBytes >> 20} MB; resident growth after load {(afterLoad - before) >> 20} MB, after a graph {(afterGraph - before) >> 20} MB");
        Assert.True(result.Graph.Active.Count > 20, "features should fire");
        long budget = fileBytes / 4;
        Assert.True(afterLoad - before < budget, $"loading grew memory by {(afterLoad - before) >> 20} MB for a {fileBytes >> 20} MB set");
        Assert.True(afterGraph - before < budget, $"attribution grew memory by {(afterGraph - before) >> 20} MB for a {fileBytes >> 20} MB set");
    }
}
