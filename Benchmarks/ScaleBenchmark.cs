namespace Benchmarks;

using Attribution;
using Attribution.Requests;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Attribution.Loading;
using Attribution.Models;
using Attribution.Pipeline;
using Attribution.Synthetic;
using Attribution.Tracing;
using GraphFunctions.LocalHost;
using static TorchSharp.torch;

/// <summary>
/// Issue #11's benchmark: graphs at realistic scale on the paths users run. A random model in the
/// Gemma‑2 layout (default: 12 layers, d_model 512, d_transcoder 8192, L0 ≈ 64 per position) over a
/// grid of prompt lengths × max_feature_nodes; each cell runs the CLI's path
/// (<see cref="GraphPipeline.Generate"/> on a <see cref="LoadedModel"/>) and the service's (HTTP →
/// Durable orchestration → activities → workspace, in a local host started as scripts/run.sh
/// starts it), interleaved, and reports medians: seconds per phase, the bare frozen backward for
/// the same batches, its FLOPs over this run's measured matmul throughput (the roofline), the
/// workspace bytes against dense float32 rows, and peak resident memory.
/// </summary>
internal static class ScaleBenchmark
{
    private const string Secret = "bench";
    private const string ModelId = "bench/scale";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new Options(args);
        int layers = options.Int("--layers", 12), dModel = options.Int("--d-model", 512), dTranscoder = options.Int("--d-transcoder", 8192);
        int l0 = options.Int("--l0", 64), batch = options.Int("--batch", 48), repeats = options.Int("--repeats", 3), warmups = options.Int("--warmups", 1);
        int[] tokenGrid = options.Ints("--tokens", [16, 64]);
        int[] featureGrid = options.Ints("--features", [1000, 5000]);
        string device = options.Text("--device", "cpu"), dtype = options.Text("--dtype", "float32");
        bool orchestrated = !args.Contains("--direct-only");
        string? reportPath = options.TextOrNull("--report");

        int headDim = options.Int("--head-dim", dModel / 8);
        var storeType = ModelSettings.ParseDType(dtype) == ScalarType.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        string work = Path.Combine(options.Text("--work", Path.GetTempPath()), $"gf-bench-scale-{layers}x{dModel}x{dTranscoder}-hd{headDim}-l0-{l0}-{storeType}");
        var (modelFolder, transcoderConfig) = EnsureModel(work, layers, dModel, headDim, dTranscoder, l0, storeType);
        var report = new StringBuilder();
        void Print(string line)
        {
            Console.WriteLine(line);
            report.AppendLine(line);
        }

        var settings = new ModelSettings
        {
            ModelId = ModelId, ModelPath = modelFolder, TranscoderSet = transcoderConfig, Device = device, DType = ModelSettings.ParseDType(dtype),
        };
        using var model = await LoadedModel.LoadAsync(settings, hub: null);
        double weightsMiB = Measure.ResidentMiB();
        double matmulGflops = MatmulThroughput(model.Replacement.Model);
        Print($"machine: {Measure.Machine()}; {TorchInfo.Describe()}");
        // The service's process settings (scripts/run.sh): without them the in-memory Durable
        // dispatcher runs only processor-count activities at once and idles between them.
        string Setting(string name) => $"{name}={Environment.GetEnvironmentVariable(name) ?? "unset"}";
        Print($"process settings: {Setting("DOTNET_PROCESSOR_COUNT")}, {Setting("MALLOC_ARENA_MAX")} (scripts/run.sh sets 8 and 1)");
        Print($"model: Gemma-2 layout, {layers} layers, d_model {dModel}, 8 heads × {headDim}, d_transcoder {dTranscoder}, L0 ≈ {l0}, {dtype} on {device}; batch {batch}, update_interval {RequestSchema.UpdateInterval.DefaultValue}; median of {repeats}");
        Print($"matmul throughput measured in this run: {matmulGflops:F1} GFLOP/s; resident after loading: {weightsMiB:F0} MiB");

        string batchesPerActivity = options.Text("--batches-per-activity", "8");
        await using var host = orchestrated ? await HostFor(work, modelFolder, transcoderConfig, device, dtype, batchesPerActivity) : null;
        var rows = new List<string>();
        foreach (int tokens in tokenGrid)
        {
            string prompt = PromptOf(model, tokens);
            foreach (int features in featureGrid)
            {
                var request = new GraphRequest { Prompt = prompt, Slug = "scale", MaxFeatureNodes = features, BatchSize = batch };
                var estimate = request.EstimateMemory(model, tokens);
                // As the service would: a cell that cannot fit this machine is not run.
                if (MemoryLimit.Resolve(null, "this machine", device)?.Refusal(estimate) is { } tooLarge)
                {
                    Print($"  skipped: {tokens} tokens × {features} features: {tooLarge}");
                    continue;
                }
                var cell = new Cell(tokens, features) { EstimateGb = estimate.PeakGb };
                // Warm-up of each path once per cell (native kernels, allocator, the host's job state).
                for (int w = 0; w < warmups; w++)
                {
                    RunDirect(model, request, cell, keep: false);
                    if (host is not null) await host.RunAsync(request, cell, keep: false);
                }
                for (int r = 0; r < repeats; r++)
                {
                    RunDirect(model, request, cell, keep: true);
                    if (host is not null) await host.RunAsync(request, cell, keep: true);
                }
                BareBackward(model, request, cell, repeats);
                rows.Add(cell.Row(matmulGflops));
                Print($"  done: {cell.Label} ({cell.Active} active features): {rows[^1]}");
            }
        }

        Print("");
        Print(Cell.Header);
        foreach (var row in rows) Print(row);
        Print("");
        Print("Columns: direct = the CLI's path; orch = the service's (local host, Durable in memory, local workspace). Phases are the direct path's.");
        Print("bare = the frozen backward alone for the same batches; roof = those passes' FLOPs ÷ the measured matmul throughput;");
        Print("contract roof = the FLOPs of contracting each batch's gradients with the feature vectors (the rows' own work beyond the backward) ÷ the same throughput.");
        Print("ws = workspace bytes the orchestration wrote for rows ÷ dense float32 rows ((logits + features) × RowLength × 4).");
        Print($"RSS = peak resident memory of this process during each path's runs (the model is loaded twice: once for the direct path, once by the host; {weightsMiB:F0} MiB after the first load).");
        if (reportPath is not null) await File.WriteAllTextAsync(reportPath, report.ToString());
        return 0;
    }

    /// <summary>The CLI's path, once: timings per phase and peak memory.</summary>
    private static void RunDirect(LoadedModel model, GraphRequest request, Cell cell, bool keep)
    {
        Measure.ResetPeakResident();
        var clock = Stopwatch.StartNew();
        var summary = GraphPipeline.Generate(model, request, Stream.Null);
        double seconds = clock.Elapsed.TotalSeconds;
        if (!keep) return;
        cell.Direct.Add(seconds);
        cell.Phases.Add(summary.Timings);
        cell.Active = summary.ActiveFeatures;
        cell.Logits = summary.Logits;
        cell.DirectPeakMiB = Math.Max(cell.DirectPeakMiB, Measure.PeakResidentMiB());
    }

    /// <summary>The bare frozen backward for the batches the direct path ran (its one ranked round), and its FLOPs.</summary>
    private static void BareBackward(LoadedModel model, GraphRequest request, Cell cell, int repeats)
    {
        var replacement = model.Replacement;
        var tokens = model.Tokenize(request.Prompt);
        using var prompt = PreparedPrompt.Prepare(replacement, tokens);
        using var context = new AttributionContext(replacement, prompt, request.BatchSize);
        using var targets = LogitTargets.For(prompt.LastLogits, replacement.Model.Unembedding, request.Attribution);
        var plan = AttributionPlan.For(prompt.Active.Count, request.Attribution);
        long[] queue;
        using (var logitRows = AttributionPlan.LogitRows(context, targets))
            queue = plan.Ranks ? plan.RankedQueue(logitRows, [], targets.Probabilities, plan.QueueSize(0)) : plan.EveryFeature();
        cell.RowLength = context.RowLength;
        for (int r = 0; r < repeats; r++) cell.Bare.Add(Measure.Seconds(() => context.BareBackward(queue, targets)));

        // FLOPs of the frozen backward: only attention's OV path carries gradient (patterns, norms and
        // MLPs are frozen or replaced), through the layers up to each batch's deepest read point.
        var config = replacement.Model.Config;
        long n = tokens.Length, b = request.BatchSize;
        double perAttentionLayer = 2.0 * b * n * config.DModel * config.NHeads * config.HeadDim       // W_O
            + 2.0 * b * n * config.NKvHeads * config.HeadDim * config.DModel                          // W_V
            + 2.0 * b * config.NHeads * n * n * config.HeadDim;                                       // pattern
        // Each batch's deepest read point: a feature's layer (its MLP input, after that layer's
        // attention), or the final residual for logits (after every layer).
        var deepestReads = queue.Chunk(request.BatchSize).Select(chunk => (int)chunk.Max(f => prompt.Active.Layers[f]))
            .Concat(Enumerable.Repeat(replacement.NLayers, (int)Math.Ceiling(targets.Count / (double)request.BatchSize))).ToList();
        cell.BackwardFlops = perAttentionLayer * deepestReads.Sum(read => Math.Min(read + 1, replacement.NLayers));

        // FLOPs of the contraction into rows, which the bare backward leaves out: at each write point
        // below a batch's deepest target, its gradient times every vector written there (one
        // batched matmul over positions, padded to the position with most, the error included).
        var slots = context.ContractionSlots;
        cell.ContractionFlops = deepestReads.Sum(read => Enumerable.Range(0, read).Sum(w => 2.0 * b * n * config.DModel * slots[w]));
    }

    /// <summary>
    /// GFLOP/s of a float matmul shaped like the backward's projections ([batch·tokens, d] × [d, d]),
    /// in the model's dtype: the best of several trials, as a roof should be (a shared machine's
    /// neighbours only ever slow a trial down).
    /// </summary>
    private static double MatmulThroughput(DecoderModel model)
    {
        long d = model.Config.DModel, m = 48 * 64;
        using var a = randn([m, d], model.DType, model.Device);
        using var w = randn([d, d], model.DType, model.Device);
        for (int i = 0; i < 3; i++) a.matmul(w).Dispose();
        int iterations = 10;
        double best = Enumerable.Range(0, 7).Min(_ => Measure.Seconds(() =>
        {
            for (int i = 0; i < iterations; i++) a.matmul(w).Dispose();
            if (model.Device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize();
        }));
        return 2.0 * m * d * d * iterations / best / 1e9;
    }

    /// <summary>A prompt of exactly <paramref name="tokens"/> tokens (BOS included) of plain words.</summary>
    internal static string PromptOf(LoadedModel model, int tokens)
    {
        string[] words = ["the", "cat", "sat", "on", "a", "warm", "mat", "and", "looked", "at", "birds", "in", "spring", "light"];
        var text = new StringBuilder("The");
        for (int i = 0; model.Tokenize(text.ToString()).Length < tokens; i++) text.Append(' ').Append(words[i % words.Length]);
        var ids = model.Tokenize(text.ToString())[..tokens];
        string prompt = model.Tokenizer.Decode(ids[1..]);
        if (model.Tokenize(prompt).Length != tokens) throw new InvalidOperationException($"could not make a {tokens}-token prompt");
        return prompt;
    }

    /// <summary>The random model and transcoders, written once per shape (the bundled model's tokenizer).</summary>
    internal static (string Model, string TranscoderConfig) EnsureModel(string work, int layers, int dModel, int headDim, int dTranscoder, int l0, ScalarType storeType)
    {
        var modelSpec = new TinyModelSpec
        {
            Architecture = ModelArchitecture.Gemma2, VocabSize = 4096, DModel = dModel, DMlp = 4 * dModel, NLayers = layers,
            NHeads = 8, NKvHeads = 4, HeadDim = headDim, Seed = 1, WeightStd = 0.05, StoreDType = storeType,
        };
        var transcoderSpec = new TinyTranscoderSpec { DTranscoder = dTranscoder, TargetL0 = l0, Seed = 2, StoreDType = storeType };
        string model = Path.Combine(work, "model"), transcoders = Path.Combine(work, "transcoders");
        if (!File.Exists(Path.Combine(transcoders, "config.yaml")))
        {
            TinyCheckpoints.WriteModel(model, modelSpec);
            File.Copy(Path.Combine(Path.GetDirectoryName(TinyRandomModelWriter.EnsureWritten().ModelFolder)!, "model", "tokenizer.json"), Path.Combine(model, "tokenizer.json"), overwrite: true);
            TinyCheckpoints.WriteTranscoders(transcoders, model, transcoderSpec);
        }
        return (model, Path.Combine(transcoders, "config.yaml"));
    }

    private static async Task<ServiceUnderTest> HostFor(string work, string model, string transcoders, string device, string dtype, string batchesPerActivity)
    {
        string workspace = Path.Combine(work, "workspace");
        if (Directory.Exists(workspace)) Directory.Delete(workspace, recursive: true);
        var app = LocalHostApp.Create([], new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0", ["SECRET"] = Secret, ["MODEL_ID"] = ModelId, ["MODEL_PATH"] = model, ["TRANSCODER_SET"] = transcoders,
            ["WORKSPACE_PATH"] = workspace, ["DURABLE_STORAGE"] = "in-memory", ["DEVICE"] = device, ["COMPUTE_DTYPE"] = dtype, ["TOKEN_LIMIT"] = "4096",
            ["BATCHES_PER_ACTIVITY"] = batchesPerActivity,
            ["Logging:LogLevel:Default"] = "Warning",
        });
        await app.StartAsync();
        await ((GraphFunctions.Workers.ModelHost)app.Services.GetService(typeof(GraphFunctions.Workers.ModelHost))!).GetAsync();
        return new ServiceUnderTest(app, workspace);
    }

    /// <summary>Polls a folder until stopped; the largest total size of its files seen.</summary>
    internal static long LargestFolderBytes(string folder, CancellationToken stop)
    {
        long largest = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (Directory.Exists(folder)) largest = Math.Max(largest, new DirectoryInfo(folder).EnumerateFiles().Sum(f => f.Length));
            }
            catch (IOException)
            {
                // A block renamed or removed while listed: the next look sees it.
            }
            Thread.Sleep(50);
        }
        return largest;
    }

    /// <summary>The service in this process, driven over HTTP as the webapp drives it.</summary>
    private sealed class ServiceUnderTest(Microsoft.AspNetCore.Builder.WebApplication app, string workspace) : IAsyncDisposable
    {
        private readonly HttpClient http = new() { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(30) };
        private int jobs;

        public async Task RunAsync(GraphRequest request, Cell cell, bool keep)
        {
            string slug = $"scale-{jobs++}";
            string body = $$"""
                {"prompt": {{System.Text.Json.JsonSerializer.Serialize(request.Prompt)}}, "model_id": "{{ModelId}}", "slug_identifier": "{{slug}}",
                 "max_feature_nodes": {{request.MaxFeatureNodes}}, "batch_size": {{request.BatchSize}}}
                """;
            using var content = new StringContent(body, new MediaTypeHeaderValue("application/json"));
            using var message = new HttpRequestMessage(HttpMethod.Post, "/generate-graph?wait_seconds=1800") { Content = content };
            message.Headers.Add("x-secret-key", Secret);
            Measure.ResetPeakResident();
            // Row blocks stay in the workspace until the job's clean-up: their largest total is what the job wrote.
            using var watching = new CancellationTokenSource();
            var rowBytes = Task.Run(() => LargestFolderBytes(Path.Combine(workspace, "jobs", slug, "rows"), watching.Token));
            var clock = Stopwatch.StartNew();
            using var response = await http.SendAsync(message);
            await response.Content.ReadAsByteArrayAsync();
            double seconds = clock.Elapsed.TotalSeconds;
            await watching.CancelAsync();
            long bytes = await rowBytes;
            response.EnsureSuccessStatusCode();
            if (!keep) return;
            cell.Orchestrated.Add(seconds);
            cell.WorkspaceBytes = bytes;
            cell.OrchestratedPeakMiB = Math.Max(cell.OrchestratedPeakMiB, Measure.PeakResidentMiB());
        }

        public async ValueTask DisposeAsync()
        {
            http.Dispose();
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>One grid cell's measurements.</summary>
    private sealed class Cell(int tokens, int features)
    {
        public static readonly string Header =
            "| tokens | features | active | direct s | orch s | orch/direct | feature rows s | bare s | rows/bare | roof s | bare/roof | contract roof s | rows/(bare+contract) | prune+json | ws bytes | ws/dense | RSS direct MiB | RSS orch MiB | estimate MiB |\n"
            + "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

        public string Label => $"{tokens} tokens × {features} features";
        public List<double> Direct { get; } = [];
        public List<double> Orchestrated { get; } = [];
        public List<PhaseTimings> Phases { get; } = [];
        public List<double> Bare { get; } = [];
        public int Active { get; set; }
        public int Logits { get; set; }
        public double BackwardFlops { get; set; }
        public double ContractionFlops { get; set; }
        public long RowLength { get; set; }
        public long WorkspaceBytes { get; set; }
        public double DirectPeakMiB { get; set; }
        public double OrchestratedPeakMiB { get; set; }
        public double EstimateGb { get; init; }

        public string Row(double matmulGflops)
        {
            static double Median(IEnumerable<double> values) => Measure.Median(values);
            double direct = Median(Direct), orchestrated = Median(Orchestrated), bare = Median(Bare);
            double featureRows = Median(Phases.Select(p => p[AttributionPlan.FeatureRowsPhase] + p[AttributionPlan.LogitRowsPhase]));
            double pruneJson = Median(Phases.Select(p => (p[GraphPipeline.PrunePhase] + p[GraphPipeline.JsonPhase]) / p.Total));
            double roof = BackwardFlops / (matmulGflops * 1e9), contraction = ContractionFlops / (matmulGflops * 1e9);
            int selected = Math.Min(features, Active);
            double dense = (double)(Logits + selected) * RowLength * 4;
            string I(double v) => v.ToString("F2", CultureInfo.InvariantCulture);
            return $"| {tokens} | {features} | {Active} | {I(direct)} | {I(orchestrated)} | {I(orchestrated / direct)} | {I(featureRows)} | {I(bare)} | {I(featureRows / bare)} | "
                + $"{I(roof)} | {I(bare / roof)} | {I(contraction)} | {I(featureRows / (bare + contraction))} | {pruneJson:P1} | {WorkspaceBytes / 1048576.0:F1} MiB | {WorkspaceBytes / dense:P1} | {DirectPeakMiB:F0} | {OrchestratedPeakMiB:F0} | {EstimateGb * 1e9 / 1048576:F0} |";
        }
    }

    /// <summary>The benchmarks' <c>--name value</c> options.</summary>
    internal sealed class Options(string[] args)
    {
        public string? TextOrNull(string name)
        {
            int at = Array.IndexOf(args, name);
            return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
        }

        public string Text(string name, string fallback) => TextOrNull(name) ?? fallback;

        public int Int(string name, int fallback) => TextOrNull(name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

        public int[] Ints(string name, int[] fallback) =>
            TextOrNull(name) is { } text ? [.. text.Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture))] : fallback;
    }
}
