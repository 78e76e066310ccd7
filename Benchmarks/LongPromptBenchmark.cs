namespace Benchmarks;

using System.Diagnostics;
using System.Globalization;
using Attribution.Loading;

/// <summary>
/// Issue #28's grid: one model (e.g. create-tiny's mid model) over prompt lengths × the two paths
/// users run, each in a process of its own so its peak resident memory is its own: the CLI
/// (<c>graphfunctions graph</c>, a process per graph; its phase table and its printed estimate) and
/// the service (<see cref="ServiceProcess"/>, one process for every graph, peak reset before each;
/// the estimate its job status reports). Rows print as they finish.
/// </summary>
internal static class LongPromptBenchmark
{
    private const string Secret = "bench";
    private const string ModelId = "bench/long";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new ScaleBenchmark.Options(args);
        string model = options.Text("--model", ""), transcoders = options.Text("--transcoders", "");
        string cli = options.Text("--cli", Path.Combine(AppContext.BaseDirectory, "graphfunctions.dll"));
        int features = options.Int("--features", 1000), batch = options.Int("--batch", 48);
        int[] tokenGrid = options.Ints("--tokens", [64, 256, 1024, 2048]);
        string durable = options.Text("--durable", "azure-storage");
        string[] paths = options.Text("--paths", "cli,service").Split(',');
        int runs = options.Int("--runs", 1);
        if (!File.Exists(cli)) throw new FileNotFoundException($"the CLI is not at {cli}: pass --cli path/to/graphfunctions.dll");

        var prompts = new Dictionary<int, string>();
        using (var tokenizerOnly = await LoadedModel.LoadAsync(new ModelSettings { ModelId = ModelId, ModelPath = model, TranscoderSet = transcoders }, hub: null))
            foreach (int tokens in tokenGrid) prompts[tokens] = ScaleBenchmark.PromptOf(tokenizerOnly, tokens);

        string work = Path.Combine(Path.GetTempPath(), "gf-bench-long");
        if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        Directory.CreateDirectory(work);
        foreach (var (tokens, prompt) in prompts) await File.WriteAllTextAsync(Path.Combine(work, $"prompt-{tokens}.txt"), prompt);   // to rerun a cell by hand
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["SECRET"] = Secret, ["MODEL_ID"] = ModelId, ["MODEL_PATH"] = model, ["TRANSCODER_SET"] = transcoders, ["WORKSPACE_PATH"] = Path.Combine(work, "workspace"),
            ["DURABLE_STORAGE"] = durable, ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true", ["DURABLE_TASK_HUB"] = $"long{Environment.ProcessId}",
            ["TOKEN_LIMIT"] = tokenGrid.Max().ToString(CultureInfo.InvariantCulture),
        }, Secret);
        Console.WriteLine($"machine: {Measure.Machine()}; model {model}, transcoders {transcoders}; {features} features, batch {batch}; service on Durable {durable}");
        await service.GraphAsync(ModelId, prompts[tokenGrid.Min()], 10, batch, "load");
        Console.WriteLine($"service resident after a 10-feature graph: {service.ResidentMiB:F0} MiB");
        Console.WriteLine("| tokens | path | total s | prepare | logit rows | rank | feature rows | assemble + prune + json | peak RSS MiB | estimate MiB |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        var cliTimes = tokenGrid.ToDictionary(t => t, _ => new List<double>());
        var serviceTimes = tokenGrid.ToDictionary(t => t, _ => new List<double>());
        foreach (int tokens in tokenGrid)
        {
            // Run by run the two paths alternate: a shared machine drifts by ±10% over minutes.
            for (int run = 0; run < runs; run++)
            {
                if (paths.Contains("cli")) cliTimes[tokens].Add(await CliCellAsync(tokens));
                if (paths.Contains("service")) serviceTimes[tokens].Add(await ServiceCellAsync(tokens, run));
            }
        }
        if (runs > 1 && paths.Contains("cli") && paths.Contains("service"))
        {
            Console.WriteLine("| tokens | CLI total, median | service, median | service / CLI |");
            Console.WriteLine("|---:|---:|---:|---:|");
            foreach (int tokens in tokenGrid)
            {
                double cliMedian = Measure.Median(cliTimes[tokens]), serviceMedian = Measure.Median(serviceTimes[tokens]);
                Console.WriteLine($"| {tokens} | {cliMedian:F2} s | {serviceMedian:F2} s | {serviceMedian / cliMedian:F2} |");
            }
        }
        Console.WriteLine("Phases are the CLI's own table; the service's time is the client's (HTTP, Durable, activities, workspace). Peak RSS: VmHWM of the path's process");
        Console.WriteLine("(the CLI's sampled every 50 ms until it exits; the service's reset before each graph, so it includes what the service holds between graphs).");
        return 0;

        async Task<double> CliCellAsync(int tokens)
        {
            var direct = await RunCliAsync(cli, model, transcoders, prompts[tokens], features, batch, Path.Combine(work, $"cli-{tokens}.json"));
            string Phase(string name) => direct.Phases.TryGetValue(name, out double s) ? s.ToString("F1", CultureInfo.InvariantCulture) : "—";
            double tail = direct.Phases.GetValueOrDefault("assemble") + direct.Phases.GetValueOrDefault("prune") + direct.Phases.GetValueOrDefault("json");
            Console.WriteLine($"  {tokens} tokens, CLI: {direct.Summary}");
            Console.WriteLine($"| {tokens} | CLI | {direct.Phases.GetValueOrDefault("total"):F1} | {Phase("prepare")} | {Phase("logit rows")} | {Phase("rank")} | {Phase("feature rows")} | {tail:F1} | {direct.PeakMiB:F0} | {direct.EstimateGb * 1e9 / 1048576:F0} |");
            return direct.Phases.GetValueOrDefault("total");
        }

        async Task<double> ServiceCellAsync(int tokens, int run)
        {
            service.ResetPeak();
            string slug = $"long-{tokens}-{run}";
            double seconds = await service.GraphAsync(ModelId, prompts[tokens], features, batch, slug);
            Console.WriteLine($"| {tokens} | service | {seconds:F1} | | | | | | {service.PeakMiB:F0} | {await service.EstimateGbAsync(slug) * 1e9 / 1048576:F0} |");
            return seconds;
        }
    }

    internal sealed record CliRun(Dictionary<string, double> Phases, double PeakMiB, double EstimateGb, string Summary);

    /// <summary>One graph by the CLI, as a user runs it, in a process of its own; <paramref name="extra"/>: more options.</summary>
    internal static async Task<CliRun> RunCliAsync(string cli, string model, string transcoders, string prompt, int features, int batch, string output, params string[] extra)
    {
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[] { cli, "graph", "--model", model, "--transcoders", transcoders, "--prompt", prompt, "--out", output,
            "--max-feature-nodes", features.ToString(CultureInfo.InvariantCulture), "--batch-size", batch.ToString(CultureInfo.InvariantCulture) }.Concat(extra))
            start.ArgumentList.Add(argument);
        start.Environment["DOTNET_PROCESSOR_COUNT"] = "8";
        start.Environment["MALLOC_ARENA_MAX"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        string pid = process.Id.ToString(CultureInfo.InvariantCulture);
        double peak = 0;
        while (!process.HasExited)
        {
            try
            {
                peak = Math.Max(peak, Measure.StatusMiB(pid, "VmHWM"));
            }
            catch (IOException)
            {
                // Exited between the check and the read.
            }
            await Task.Delay(50);
        }
        string text = await stdout;
        if (process.ExitCode != 0) throw new InvalidOperationException($"the CLI failed ({process.ExitCode}): {await stderr}\n{text}");
        var phases = new Dictionary<string, double>();
        double estimate = 0;
        string summary = "";
        foreach (string line in text.Split('\n'))
        {
            const string Estimated = "estimated peak memory: ";
            if (line.StartsWith(Estimated, StringComparison.Ordinal)) estimate = double.Parse(line[Estimated.Length..].Split(' ')[0], CultureInfo.InvariantCulture);
            if (line.StartsWith("wrote ", StringComparison.Ordinal)) summary = line[(line.IndexOf(": ", StringComparison.Ordinal) + 2)..];
            // The phase table: "  feature rows        4.419".
            var parts = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (line.StartsWith("  ", StringComparison.Ordinal) && parts.Length >= 2 && double.TryParse(parts[^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds))
                phases[string.Join(' ', parts[..^1])] = seconds;
        }
        return new CliRun(phases, peak, estimate, summary);
    }
}
