namespace Benchmarks;

using Attribution;
using Attribution.Graphs;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// Issue #3's benchmark: a tiny-but-not-trivial model (4 layers, d_model 256, d_transcoder 4096,
/// 32-token prompt, max_feature_nodes 1000, batch 32). Prints each phase's time, the ratio of
/// attribution time to the bare frozen backward passes for the same targets, and peak memory.
/// </summary>
internal static class AttributionBenchmark
{
    public static int Run(string[] args)
    {
        int layers = 4, dModel = 256, dTranscoder = 4096, positions = 32, maxFeatures = 1000, batch = 32;
        string work = Path.Combine(Path.GetTempPath(), "gf-bench-attribution");
        int updateInterval = Option(args, "--update-interval", 4);
        // The calibration L0 (features per position): real transcoders fire ~10-150 of d_model 2304+.
        int l0 = Option(args, "--l0", 64);
        work += $"-l0-{l0}";
        if (Option(args, "--threads", 0) is int threads and > 0) set_num_threads(threads);
        Console.WriteLine($"machine: {Measure.Machine()}; {TorchInfo.Describe()}");

        var modelSpec = new TinyModelSpec
        {
            Architecture = ModelArchitecture.Gemma2, VocabSize = 4096, DModel = dModel, DMlp = 4 * dModel, NLayers = layers,
            NHeads = 4, NKvHeads = 2, HeadDim = 64, Seed = 1, WeightStd = 0.05,
        };
        if (!File.Exists(Path.Combine(work, "transcoders", "config.yaml")))
        {
            TinyCheckpoints.WriteModel(Path.Combine(work, "model"), modelSpec);
            TinyCheckpoints.WriteTranscoders(Path.Combine(work, "transcoders"), Path.Combine(work, "model"),
                new TinyTranscoderSpec { DTranscoder = dTranscoder, TargetL0 = l0, Seed = 2 });
        }
        using var replacement = new ReplacementModel(
            DecoderModel.Load(Path.Combine(work, "model"), CPU, ScalarType.Float32),
            TranscoderLoader.LoadLocal(Path.Combine(work, "transcoders", "config.yaml"), new TranscoderLoadOptions()));
        var random = new Random(5);
        int[] tokens = [2, .. Enumerable.Range(0, positions - 1).Select(_ => random.Next(3, modelSpec.VocabSize))];
        var settings = new AttributionSettings { BatchSize = batch, MaxFeatureNodes = maxFeatures, MaxNLogits = 10, DesiredLogitProb = 0.95, UpdateInterval = updateInterval };

        // Warm up native kernels and allocators once on a small run.
        using (Attributor.Attribute(replacement, tokens[..8], settings with { MaxFeatureNodes = 64 })) { }

        // Interleave full attributions and bare backward passes over the same batches; report medians
        // (this machine's timings vary run to run).
        int repeats = Option(args, "--repeats", 5);
        var runs = new List<AttributionResult>();
        var bareRuns = new List<double>();
        using var prompt = PreparedPrompt.Prepare(replacement, tokens);
        using var context = new AttributionContext(replacement, prompt, batch);
        using var targets = LogitTargets.For(prompt.LastLogits, replacement.Model.Unembedding, settings);
        for (int r = 0; r < repeats; r++)
        {
            var run = Attributor.Attribute(replacement, tokens, settings);
            runs.Add(run);
            bareRuns.Add(Measure.Seconds(() => context.BareBackward(run.VisitOrder, targets)));   // the same batches
        }
        double Median(IEnumerable<double> values) => values.Order().ElementAt(repeats / 2);
        var result = runs[0];
        var graph = result.Graph;
        PruneResult? pruning = null;
        double pruneSeconds = Median(Enumerable.Range(0, repeats).Select(_ => Measure.Seconds(() => { pruning?.Dispose(); pruning = Pruning.Prune(graph, 0.8, 0.98); })));
        var metadata = new GraphMetadata
        {
            Slug = "bench", Scan = "bench", PromptTokens = tokens.Select(t => $"{t}").ToList(), Prompt = "", NodeThreshold = 0.8, EdgeThreshold = 0.98,
            Scores = GraphScores.Compute(graph),
        };
        long jsonBytes = 0;
        double jsonSeconds = Median(Enumerable.Range(0, repeats).Select(_ => Measure.Seconds(() =>
        {
            using var sink = new CountingStream();
            NeuronpediaGraphWriter.Write(sink, graph, pruning!, metadata, id => $"t{id}");
            jsonBytes = sink.Length;
        })));
        double bareSeconds = Median(bareRuns);
        double PhaseMedian(string phase) => Median(runs.Select(run => run.Timings[phase]));

        double attribution = Median(runs.Select(run => run.Timings[AttributionPlan.LogitRowsPhase] + run.Timings[AttributionPlan.FeatureRowsPhase] + run.Timings[AttributionPlan.RankPhase]));
        string[] phases = [AttributionPlan.PreparePhase, AttributionPlan.LogitRowsPhase, AttributionPlan.RankPhase, AttributionPlan.FeatureRowsPhase, AttributionPlan.AssemblePhase];
        double total = phases.Sum(PhaseMedian) + pruneSeconds + jsonSeconds;
        Console.WriteLine($"model: Gemma-2 layout, {layers} layers, d_model {dModel}, d_transcoder {dTranscoder}, {positions} tokens, batch {batch}, max_feature_nodes {maxFeatures}, update_interval {updateInterval}, threads {get_num_threads()}");
        Console.WriteLine($"active features: {graph.Active.Count} (L0 per position ≈ {graph.Active.Count / (double)(layers * (positions - 1)):F0}), selected {graph.FeatureCount}, logits {graph.LogitTokens.Length}, kept nodes {pruning!.NodeMask.Count(k => k)}");
        Console.WriteLine($"phase              seconds (median of {repeats})");
        foreach (var phase in phases) Console.WriteLine($"  {phase,-16} {PhaseMedian(phase),8:F3}");
        Console.WriteLine($"  {"prune",-16} {pruneSeconds,8:F3}");
        Console.WriteLine($"  {"json",-16} {jsonSeconds,8:F3}   ({jsonBytes / 1024.0:F0} KiB)");
        Console.WriteLine($"  {"total",-16} {total,8:F3}");
        Console.WriteLine($"bare frozen backward for the same batches: {bareSeconds:F3} s");
        Console.WriteLine($"attribution / bare backward: {attribution / bareSeconds:F2} (target ≤ 1.3)");
        Console.WriteLine($"(prune + json) / total: {(pruneSeconds + jsonSeconds) / total:P1} (target ≤ 10%)");
        Console.WriteLine($"peak resident memory: {Measure.PeakResidentMiB():F0} MiB");
        pruning.Dispose();
        foreach (var run in runs) run.Dispose();
        return 0;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>A write-only stream that only counts bytes, so the JSON phase measures serialisation, not disk.</summary>
    private sealed class CountingStream : Stream
    {
        private long length;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => length;
        public override long Position { get => length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => length += count;
        public override void Write(ReadOnlySpan<byte> buffer) => length += buffer.Length;
    }
}
