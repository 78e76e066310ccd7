namespace Benchmarks;

using System.Diagnostics;
using Attribution;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// Issue #4's benchmark: a synthetic cross-layer transcoder shaped like the 2.5M CLT scaled down
/// (8 layers × 65,536 features × d_model 512, bfloat16 on disk): load time, resident memory after
/// load and after one graph, and decoder-row read throughput.
/// </summary>
internal static class CltLoadingBenchmark
{
    public static int Run(string[] args)
    {
        const int layers = 8, dModel = 512, features = 65_536;
        string work = Path.Combine(Path.GetTempPath(), "gf-bench-clt");
        string model = Path.Combine(work, "model"), transcoders = Path.Combine(work, "transcoders");
        Console.WriteLine($"machine: {Measure.Machine()}; {TorchInfo.Describe()}");
        if (!File.Exists(Path.Combine(transcoders, "config.yaml")))
        {
            Console.WriteLine("writing the synthetic set (once)...");
            TinyCheckpoints.WriteModel(model, new TinyModelSpec
            {
                Architecture = ModelArchitecture.Gemma2, VocabSize = 4096, DModel = dModel, DMlp = 2048, NLayers = layers,
                NHeads = 8, NKvHeads = 4, HeadDim = 64, Seed = 3, WeightStd = 0.04,
            });
            TinyCheckpoints.WriteTranscoders(transcoders, model, new TinyTranscoderSpec
            {
                Kind = TranscoderKind.CrossLayer, DTranscoder = features, TargetL0 = 24, Seed = 4, StoreDType = ScalarType.BFloat16,
                InputHook = ReadHook.ResidMid, OutputHook = WriteHook.MlpOut,
            });
        }
        long setBytes = Directory.GetFiles(transcoders, "*.safetensors").Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"set: {layers} layers × {features} features × d_model {dModel}, bf16, {setBytes / (1 << 20)} MiB on disk");

        using var decoder = DecoderModel.Load(model, CPU, ScalarType.Float32);
        foreach (bool lazyEncoders in new[] { true, false })
        {
            GC.Collect();
            long before = (long)(Measure.ResidentMiB() * 1024 * 1024);
            var clock = Stopwatch.StartNew();
            var set = TranscoderLoader.LoadLocal(Path.Combine(transcoders, "config.yaml"), new TranscoderLoadOptions { LazyEncoders = lazyEncoders });
            double loadSeconds = clock.Elapsed.TotalSeconds;
            double afterLoad = Measure.ResidentMiB() - before / (1024.0 * 1024);

            var replacement = new ReplacementModel(decoder, set);
            var random = new Random(2);
            int[] tokens = [2, .. Enumerable.Range(0, 31).Select(_ => random.Next(3, 4096))];
            clock.Restart();
            using (var graph = Attributor.Attribute(replacement, tokens, new AttributionSettings { BatchSize = 32, MaxFeatureNodes = 500, UpdateInterval = 1000 }))
            {
                double graphSeconds = clock.Elapsed.TotalSeconds;
                double afterGraph = Measure.ResidentMiB() - before / (1024.0 * 1024);
                Console.WriteLine($"encoders {(lazyEncoders ? "streamed" : "held")}: load {loadSeconds:F2} s, resident +{afterLoad:F0} MiB after load, " +
                    $"+{afterGraph:F0} MiB after a graph ({graph.Graph.Active.Count} active features, {graphSeconds:F2} s)");
            }
            if (!lazyEncoders) Throughput(set, features, layers);
            set.Dispose();
        }
        return 0;
    }

    /// <summary>Decoder rows of random features, as attribution reads them (sorted per layer), page cache warm.</summary>
    private static void Throughput(TranscoderSet set, int features, int layers)
    {
        var random = new Random(9);
        foreach (int perLayer in new[] { 100, 2000 })
        {
            long rows = 0;
            var clock = Stopwatch.StartNew();
            for (int l = 0; l < layers; l++)
            {
                var chosen = Enumerable.Range(0, perLayer).Select(_ => (long)random.Next(features)).Distinct().Order().ToArray();
                using var read = set.DecoderRows(l, chosen);
                rows += chosen.Length;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"decoder rows: {rows} random rows (all written layers each, {perLayer}/layer) in {seconds:F3} s = {rows / seconds:F0} rows/s");
        }
    }
}
