namespace Benchmarks;

using System.Diagnostics;
using System.Net.Http.Headers;
using Attribution;
using Attribution.Models;
using Attribution.Pipeline;
using Attribution.Synthetic;
using GraphFunctions.LocalHost;
using GraphFunctions.Workers;
using Microsoft.DurableTask.Client;

/// <summary>
/// Issue #6's benchmark: one graph of the engine benchmark's model through the local host (HTTP,
/// Durable orchestration, activities, workspace) against the engine called directly, and the
/// orchestration history size per job.
/// </summary>
internal static class OrchestrationBenchmark
{
    // About 32 tokens of the bundled byte-level tokenizer, as in the engine benchmark.
    private const string Prompt = "The quick brown fox jumps over the lazy dog";

    public static async Task<int> RunAsync(string[] args)
    {
        Console.WriteLine($"machine: {Measure.Machine()}; {TorchInfo.Describe()}");
        var options = new ScaleBenchmark.Options(args);
        string work = Path.Combine(Path.GetTempPath(), "gf-bench-orchestration");
        // --model and --transcoders: another model (e.g. graphfunctions create-tiny's mid model); --copies: the prompt repeated.
        string model = options.Text("--model", Path.Combine(work, "model"));
        string transcoderConfig = options.Text("--transcoders", Path.Combine(work, "transcoders", "config.yaml"));
        string transcoders = Path.GetDirectoryName(transcoderConfig)!;
        string prompt = string.Concat(Enumerable.Repeat(Prompt, options.Int("--copies", 1)));
        int features = options.Int("--features", 1000), runs = options.Int("--runs", 6);
        string durable = options.Text("--durable", "in-memory");
        if (options.TextOrNull("--model") is null && !File.Exists(Path.Combine(transcoders, "config.yaml")))
        {
            TinyCheckpoints.WriteModel(model, new TinyModelSpec
            {
                Architecture = ModelArchitecture.Gemma2, VocabSize = 4096, DModel = 256, DMlp = 1024, NLayers = 4, NHeads = 4, NKvHeads = 2, HeadDim = 64, Seed = 1, WeightStd = 0.05,
            });
            File.Copy(Path.Combine(Path.GetDirectoryName(TinyRandomModelWriter.EnsureWritten().ModelFolder)!, "model", "tokenizer.json"), Path.Combine(model, "tokenizer.json"), overwrite: true);
            TinyCheckpoints.WriteTranscoders(transcoders, model, new TinyTranscoderSpec { DTranscoder = 4096, TargetL0 = 8, Seed = 2 });
        }

        int updateInterval = args.Contains("--rank-often") ? 4 : 1000;
        int batchSize = options.Int("--batch", 32);
        var meter = new HistoryMeter();
        await using var app = LocalHostApp.Create([], new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0", ["SECRET"] = "bench", ["MODEL_ID"] = "bench/gemma2-4l-256", ["MODEL_PATH"] = model,
            ["TRANSCODER_SET"] = transcoderConfig, ["WORKSPACE_PATH"] = Path.Combine(work, "workspace"),
            ["UPDATE_INTERVAL"] = updateInterval.ToString(System.Globalization.CultureInfo.InvariantCulture), ["TOKEN_LIMIT"] = "4096",
            ["DURABLE_STORAGE"] = durable, ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true", ["DURABLE_TASK_HUB"] = $"bench{Environment.ProcessId}",
            ["BATCHES_PER_ACTIVITY"] = options.Text("--batches-per-activity", "8"),
        }, meter.Register);
        await app.StartAsync();
        // Direct and hosted runs alternate on the host's own loaded model, so both see the same machine
        // (a shared machine drifts by ±10% over minutes); the direct runs share the process with the idle
        // host, whose background CPU is measured and printed.
        var loaded = await ((ModelHost)app.Services.GetService(typeof(ModelHost))!).GetAsync();
        var directRequest = new GraphRequest { Prompt = prompt, Slug = "direct", MaxFeatureNodes = features, BatchSize = batchSize, UpdateInterval = updateInterval };
        var config = loaded.Replacement.Model.Config;
        Console.WriteLine($"model: {model} ({config.NLayers} layers, d_model {config.DModel}, d_transcoder {loaded.Replacement.Transcoders.DTranscoder}); prompt {loaded.Tokenize(prompt).Length} tokens; max_feature_nodes {features}, batch {batchSize}, update_interval {updateInterval}; Durable {durable}");
        var direct = new List<double>();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(10) };
        http.DefaultRequestHeaders.Add("x-secret-key", "bench");

        var hosted = new List<double>();
        var historyBytes = new List<long>();
        var client = (DurableTaskClient)app.Services.GetService(typeof(DurableTaskClient))!;
        var activityCounts = new List<int>();
        var activitySeconds = new List<double>();
        var busySeconds = new List<double>();
        for (int run = 0; run < runs; run++)
        {
            direct.Add(Measure.Seconds(() => GraphPipeline.Generate(loaded, directRequest, Stream.Null)));
            string slug = $"bench-{run}";
            string body = $$"""{"prompt": "{{prompt}}", "model_id": "bench/gemma2-4l-256", "max_feature_nodes": {{features}}, "batch_size": {{batchSize}}, "slug_identifier": "{{slug}}"}""";
            using var content = new StringContent(body, new MediaTypeHeaderValue("application/json"));
            var clock = Stopwatch.StartNew();
            using var response = await http.PostAsync("/generate-graph?wait_seconds=600", content);
            response.EnsureSuccessStatusCode();
            await response.Content.ReadAsByteArrayAsync();
            hosted.Add(clock.Elapsed.TotalSeconds);
            // The payloads a job's history holds: its input and output, every activity input and result.
            var instance = await client.GetInstanceAsync(slug, getInputsAndOutputs: true);
            var (calls, bytes) = meter.TakeTotals();
            historyBytes.Add(bytes + (instance!.SerializedInput?.Length ?? 0) + (instance.SerializedOutput?.Length ?? 0) + (instance.SerializedCustomStatus?.Length ?? 0));
            activityCounts.Add(calls);
            // Work vs dispatch: the activities' own time (they run one after another here) and the rest.
            var timeline = meter.TakeRuns();
            activitySeconds.Add(timeline.Sum(r => (r.End - r.Start).TotalSeconds));
            busySeconds.Add(BusySeconds(timeline));
            if (run == runs - 1)
                foreach (var group in timeline.GroupBy(r => r.Activity))
                    Console.WriteLine($"  {group.Key,-28} ×{group.Count(),-3} {group.Sum(r => (r.End - r.Start).TotalSeconds),7:F3} s");
        }
        // The first round of each warms caches: report the median of the other five.
        double Median(List<double> values) => values.Skip(1).Order().ElementAt((values.Count - 1) / 2);
        Console.WriteLine($"one graph, engine directly:         {Median(direct):F3} s (median of {runs - 1})");
        Console.WriteLine($"one graph, through the local host:  {Median(hosted):F3} s (HTTP + Durable + activities + workspace)");
        Console.WriteLine($"  activities: {Median(activitySeconds):F3} s of work, some at once; at least one running for {Median(busySeconds):F3} s; none for the other {Median(hosted) - Median(busySeconds):F3} s (dispatch, HTTP)");
        Console.WriteLine($"  direct runs: {string.Join(", ", direct.Select(t => t.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))} s; hosted: {string.Join(", ", hosted.Select(t => t.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))} s");
        var ratios = hosted.Zip(direct, (h, d) => h / d).ToList();
        Console.WriteLine($"orchestration overhead ratio: {Median(hosted) / Median(direct):F2} of the medians; run by run (after the first): {string.Join(", ", ratios.Skip(1).Select(r => r.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))} (target ≤ 1.1 for graphs of 5 s and more)");
        Console.WriteLine($"orchestration history per job: {activityCounts[^1]} activities, {historyBytes.Skip(1).Average() / 1024:F1} KiB of payloads (inputs, outputs, status; rows stay in the workspace)");
        Console.WriteLine($"the idle host's own CPU after the runs: {IdleCpuShare(TimeSpan.FromSeconds(20)):P1} of one core (the storage emulator's is not counted)");
        await app.StopAsync();
        return 0;
    }

    /// <summary>The share of one core this process uses over <paramref name="window"/> while nothing is asked of it.</summary>
    private static double IdleCpuShare(TimeSpan window)
    {
        var self = Process.GetCurrentProcess();
        var before = self.TotalProcessorTime;
        Thread.Sleep(window);
        self.Refresh();
        return (self.TotalProcessorTime - before).TotalSeconds / window.TotalSeconds;
    }

    /// <summary>How long at least one activity was running: the length of the union of their intervals.</summary>
    private static double BusySeconds(List<(string Activity, DateTime Start, DateTime End)> timeline)
    {
        double busy = 0;
        DateTime coveredUntil = DateTime.MinValue;
        foreach (var (_, start, end) in timeline.OrderBy(r => r.Start))
        {
            if (end <= coveredUntil) continue;
            busy += (end - (start > coveredUntil ? start : coveredUntil)).TotalSeconds;
            coveredUntil = end;
        }
        return busy;
    }
}
