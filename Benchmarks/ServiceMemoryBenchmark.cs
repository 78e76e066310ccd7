namespace Benchmarks;

using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using Attribution.Loading;

/// <summary>
/// Issue #11's memory bounds, on the service as users start it: the local host in its own process
/// (with scripts/run.sh's process settings, Durable in memory), one small graph to load the model, then
/// <c>--graphs</c> consecutive graphs of <c>--features</c> features on the scale benchmark's model.
/// Prints the service's peak resident memory during each graph (VmHWM, reset before each) and its
/// resident memory after each, against the weights (resident after the first small graph) and the
/// row storage the job wrote to the workspace.
/// </summary>
internal static class ServiceMemoryBenchmark
{
    private const string Secret = "bench";
    private const string ModelId = "bench/scale";

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new ScaleBenchmark.Options(args);
        int layers = options.Int("--layers", 12), dModel = options.Int("--d-model", 512), dTranscoder = options.Int("--d-transcoder", 8192), l0 = options.Int("--l0", 64);
        int tokens = options.Int("--tokens", 64), features = options.Int("--features", 5000), graphs = options.Int("--graphs", 10);
        string work = Path.Combine(Path.GetTempPath(), $"gf-bench-scale-{layers}x{dModel}x{dTranscoder}-hd{dModel / 8}-l0-{l0}-Float32");
        var (model, transcoders) = ScaleBenchmark.EnsureModel(work, layers, dModel, dModel / 8, dTranscoder, l0, TorchSharp.torch.ScalarType.Float32);
        string prompt;
        using (var tokenizerOnly = await LoadedModel.LoadAsync(new ModelSettings { ModelId = ModelId, ModelPath = model, TranscoderSet = transcoders }, hub: null))
            prompt = ScaleBenchmark.PromptOf(tokenizerOnly, tokens);

        string workspace = Path.Combine(work, "service-workspace");
        if (Directory.Exists(workspace)) Directory.Delete(workspace, recursive: true);
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "GraphFunctions.LocalHost.dll"));
        // On the command line, not in the environment: the in-memory Durable sidecar reads a
        // `urls` variable too and would take the address itself.
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        foreach (var (name, value) in new Dictionary<string, string>
        {
            ["SECRET"] = Secret, ["MODEL_ID"] = ModelId, ["MODEL_PATH"] = model, ["TRANSCODER_SET"] = transcoders,
            ["WORKSPACE_PATH"] = workspace, ["DURABLE_STORAGE"] = "in-memory", ["TOKEN_LIMIT"] = "1024", ["DOTNET_PROCESSOR_COUNT"] = "8", ["MALLOC_ARENA_MAX"] = "1",
            ["Logging__LogLevel__Default"] = "Warning", ["Logging__LogLevel__GraphFunctions.LocalHost"] = "Information",
        })
            start.Environment[name] = value;
        using var service = Process.Start(start)!;
        // Port 0 and the address the service reports.
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var lastLines = new Queue<string>();   // the service's last words, shown if it fails
        void Keep(string? line)
        {
            if (line is null) return;
            const string Announcement = GraphFunctions.LocalHost.LocalHostApp.ReadyAnnouncement;
            if (line.Contains(Announcement, StringComparison.Ordinal)) listening.TrySetResult(line[(line.IndexOf(Announcement, StringComparison.Ordinal) + Announcement.Length)..].Split(' ')[0]);
            lock (lastLines)
            {
                lastLines.Enqueue(line);
                if (lastLines.Count > 40) lastLines.Dequeue();
            }
        }
        service.OutputDataReceived += (_, e) => Keep(e.Data);
        service.ErrorDataReceived += (_, e) => Keep(e.Data);
        service.BeginOutputReadLine();
        service.BeginErrorReadLine();
        try
        {
            string address = await listening.Task.WaitAsync(TimeSpan.FromMinutes(2));
            using var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(30) };
            http.DefaultRequestHeaders.Add("x-secret-key", Secret);
            Console.WriteLine($"machine: {Measure.Machine()}; service process {service.Id}");
            Console.WriteLine($"model: Gemma-2 layout, {layers} layers, d_model {dModel}, d_transcoder {dTranscoder}, L0 ≈ {l0}; {tokens}-token prompt, {features} features, batch 48");

            await GraphAsync(http, prompt, 10, "load");
            double weights = ProcStatusMiB(service.Id, "VmRSS");
            Console.WriteLine($"resident after a 10-feature graph (weights + runtime): {weights:F0} MiB");
            Console.WriteLine("| graph | seconds | peak RSS MiB | RSS after MiB | row bytes in workspace MiB | (peak − weights) / rows |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
            double? firstAfter = null;
            for (int i = 1; i <= graphs; i++)
            {
                File.WriteAllText($"/proc/{service.Id}/clear_refs", "5");   // a new peak per graph
                using var watching = new CancellationTokenSource();
                string slug = $"memory-{i}";
                var rowBytes = Task.Run(() => ScaleBenchmark.LargestFolderBytes(Path.Combine(workspace, "jobs", slug, "rows"), watching.Token));
                double seconds = await GraphAsync(http, prompt, features, slug);
                await watching.CancelAsync();
                double rowsMiB = await rowBytes / 1048576.0;
                double peak = ProcStatusMiB(service.Id, "VmHWM"), after = ProcStatusMiB(service.Id, "VmRSS");
                firstAfter ??= after;
                Console.WriteLine($"| {i} | {seconds:F1} | {peak:F0} | {after:F0} | {rowsMiB:F1} | {(peak - weights) / rowsMiB:F1} |");
            }
            Console.WriteLine($"RSS after graph {graphs} ÷ after graph 1: {ProcStatusMiB(service.Id, "VmRSS") / firstAfter:F3}");
        }
        catch
        {
            lock (lastLines) Console.Error.WriteLine("service output:\n" + string.Join('\n', lastLines));
            throw;
        }
        finally
        {
            if (!service.HasExited) service.Kill(entireProcessTree: true);
        }
        return 0;
    }

    private static async Task<double> GraphAsync(HttpClient http, string prompt, int features, string slug)
    {
        string body = $$"""{"prompt": {{System.Text.Json.JsonSerializer.Serialize(prompt)}}, "model_id": "{{ModelId}}", "slug_identifier": "{{slug}}", "max_feature_nodes": {{features}}}""";
        using var content = new StringContent(body, new MediaTypeHeaderValue("application/json"));
        var clock = Stopwatch.StartNew();
        using var response = await http.PostAsync("/generate-graph?wait_seconds=1800", content);
        string answer = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{(int)response.StatusCode}: {answer[..Math.Min(answer.Length, 500)]}");
        return clock.Elapsed.TotalSeconds;
    }

    private static double ProcStatusMiB(int pid, string field)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}
