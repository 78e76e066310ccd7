namespace Benchmarks;

using System.Globalization;
using Attribution.Loading;

/// <summary>
/// Issue #29's cost: one prompt's graph by the CLI (a process per graph, as users run it) plain,
/// with head_loadings and with enable_qk_tracing, the three alternating run by run; medians of
/// each phase, the total and the peak resident memory, and what the JSON grew by.
/// </summary>
internal static class AttentionTracingBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var options = new ScaleBenchmark.Options(args);
        string model = options.Text("--model", ""), transcoders = options.Text("--transcoders", "");
        string cli = options.Text("--cli", Path.Combine(AppContext.BaseDirectory, "graphfunctions.dll"));
        int tokens = options.Int("--tokens", 64), features = options.Int("--features", 1000), batch = options.Int("--batch", 48), runs = options.Int("--runs", 3);
        if (!File.Exists(cli)) throw new FileNotFoundException($"the CLI is not at {cli}: pass --cli path/to/graphfunctions.dll");
        string prompt;
        using (var tokenizerOnly = await LoadedModel.LoadAsync(new ModelSettings { ModelId = "bench/attention", ModelPath = model, TranscoderSet = transcoders }, hub: null))
            prompt = ScaleBenchmark.PromptOf(tokenizerOnly, tokens);
        string work = Path.Combine(Path.GetTempPath(), "gf-bench-attention");
        Directory.CreateDirectory(work);

        (string Name, string[] Options)[] modes = [("plain", []), ("head loadings", ["--head-loadings"]), ("QK tracing", ["--enable-qk-tracing"])];
        var results = modes.ToDictionary(m => m.Name, _ => new List<LongPromptBenchmark.CliRun>());
        Console.WriteLine($"machine: {Measure.Machine()}; model {model}; {tokens} tokens, {features} features, batch {batch}; {runs} runs of each, alternating");
        for (int run = 0; run < runs; run++)
        {
            foreach (var (name, extra) in modes)
            {
                var result = await LongPromptBenchmark.RunCliAsync(cli, model, transcoders, prompt, features, batch, Path.Combine(work, $"{name.Replace(' ', '-')}.json"), extra);
                results[name].Add(result);
                Console.WriteLine($"  run {run + 1}, {name}: {result.Phases.GetValueOrDefault("total"):F1} s, peak {result.PeakMiB:F0} MiB; {result.Summary}");
            }
        }

        string[] phases = ["prepare", "feature rows", "head loadings", "qk tracing", "json", "total"];
        Console.WriteLine($"| mode | {string.Join(" | ", phases)} | peak RSS | JSON |");
        Console.WriteLine($"|---|{string.Concat(Enumerable.Repeat("---:|", phases.Length + 2))}");
        foreach (var (name, _) in modes)
        {
            string Median(string phase) => results[name].All(r => r.Phases.ContainsKey(phase))
                ? Measure.Median(results[name].Select(r => r.Phases[phase])).ToString("F1", CultureInfo.InvariantCulture) + " s" : "—";
            long bytes = new FileInfo(Path.Combine(work, $"{name.Replace(' ', '-')}.json")).Length;
            Console.WriteLine($"| {name} | {string.Join(" | ", phases.Select(Median))} | {Measure.Median(results[name].Select(r => r.PeakMiB)):F0} MiB | {bytes / 1024.0:F0} KiB |");
        }
        return 0;
    }
}
