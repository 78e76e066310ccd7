namespace Benchmarks;

using System.Diagnostics;
using System.Net.Http.Headers;
using Attribution;
using Attribution.Models;
using Attribution.Steering;
using Attribution.Synthetic;
using Attribution.Tracing;
using Attribution.Transcoders;
using GraphFunctions.LocalHost;
using static TorchSharp.torch;

/// <summary>
/// Issue #5's benchmark: tokens/s of default and steered generation on a small model (CPU), with
/// and without the KV cache, and the latency of a /steer request for n_tokens=10 on the bundled tiny model.
/// </summary>
internal static class SteeringBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        Console.WriteLine($"machine: {Measure.Machine()}; {TorchInfo.Describe()}");
        string work = Path.Combine(Path.GetTempPath(), "gf-bench-steering");
        if (!File.Exists(Path.Combine(work, "transcoders", "config.yaml")))
        {
            TinyCheckpoints.WriteModel(Path.Combine(work, "model"), new TinyModelSpec
            {
                Architecture = ModelArchitecture.Gemma2, VocabSize = 4096, DModel = 256, DMlp = 1024, NLayers = 4, NHeads = 4, NKvHeads = 2, HeadDim = 64, Seed = 1, WeightStd = 0.05,
            });
            TinyCheckpoints.WriteTranscoders(Path.Combine(work, "transcoders"), Path.Combine(work, "model"), new TinyTranscoderSpec { DTranscoder = 4096, TargetL0 = 16, Seed = 2 });
        }
        using var replacement = new ReplacementModel(
            DecoderModel.Load(Path.Combine(work, "model"), CPU, ScalarType.Float32),
            TranscoderLoader.LoadLocal(Path.Combine(work, "transcoders", "config.yaml"), new TranscoderLoadOptions()));
        var random = new Random(4);
        int[] prompt = [2, .. Enumerable.Range(0, 15).Select(_ => random.Next(3, 4096))];
        FeatureSetting[] settings = [new(2, 7, Target: 20, AtPosition: null, FromPosition: prompt.Length), new(1, 3, Target: 0, AtPosition: 4, FromPosition: int.MaxValue)];
        Console.WriteLine("small model: Gemma-2 layout, 4 layers, d_model 256, vocab 4096, d_transcoder 4096; prompt 16 tokens, greedy");

        foreach (int n in new[] { 32, 128 })
        {
            var options = new GenerationOptions { NTokens = n, TopK = 5 };
            foreach (bool cache in new[] { true, false })
            {
                RunPolicy Plain() => RunPolicy.Plain;
                RunPolicy Steered() => new InterventionRun(replacement.Transcoders, settings, null, prompt.Length);
                TextGeneration.Generate(replacement.Model, prompt, options with { NTokens = 4 }, Steered, [], cache);   // warm-up
                double plain = Measure.Seconds(() => TextGeneration.Generate(replacement.Model, prompt, options, Plain, [], cache));
                double steered = Measure.Seconds(() => TextGeneration.Generate(replacement.Model, prompt, options, Steered, [], cache));
                Console.WriteLine($"{n,4} new tokens, KV cache {(cache ? "on " : "off")}: default {n / plain,7:F1} tokens/s, steered {n / steered,7:F1} tokens/s");
            }
        }

        // /steer on the bundled tiny model through the local host.
        await using var app = LocalHostApp.Create([], new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0", ["SECRET"] = "bench", ["MODEL_ID"] = "", ["MODEL_PATH"] = "", ["TRANSCODER_SET"] = "",
            ["WORKSPACE_PATH"] = Path.Combine(work, "workspace"),
        });
        await app.StartAsync();
        await app.Services.GetRequiredServiceOf<GraphFunctions.Workers.ModelHost>().GetAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        http.DefaultRequestHeaders.Add("x-secret-key", "bench");
        const string body = """
            {"model_id": "graphfunctions/tiny-gemma-2", "prompt": "Fait: Michael Jordan joue au",
             "features": [{"layer": 2, "index": 145, "token_active_position": 6, "steer_position": 6, "ablate": true},
                          {"layer": 2, "index": 341, "token_active_position": 7, "steer_generated_tokens": true, "delta": 350}],
             "n_tokens": 10, "top_k": 3, "temperature": 0, "freq_penalty": 0, "freeze_attention": false}
            """;
        var latencies = new List<double>();
        for (int i = 0; i < 21; i++)
        {
            using var content = new StringContent(body, new MediaTypeHeaderValue("application/json"));
            var clock = Stopwatch.StartNew();
            using var response = await http.PostAsync("/steer", content);
            response.EnsureSuccessStatusCode();
            await response.Content.ReadAsByteArrayAsync();
            if (i > 0) latencies.Add(clock.Elapsed.TotalMilliseconds);
        }
        latencies.Sort();
        Console.WriteLine($"/steer n_tokens=10 on the bundled tiny model over loopback HTTP: median {latencies[latencies.Count / 2]:F1} ms, p90 {latencies[(int)(latencies.Count * 0.9)]:F1} ms ({latencies.Count} requests)");
        await app.StopAsync();
        return 0;
    }

    private static T GetRequiredServiceOf<T>(this IServiceProvider services) where T : notnull =>
        (T)(services.GetService(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not registered"));
}
