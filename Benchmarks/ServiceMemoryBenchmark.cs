namespace Benchmarks;

using Attribution.Loading;

/// <summary>
/// Issue #11's memory bounds, on the service as users start it: the local host in its own process
/// (<see cref="ServiceProcess"/>), one small graph to load the model, then <c>--graphs</c>
/// consecutive graphs of <c>--features</c> features on the scale benchmark's model (or
/// <c>--model</c>/<c>--transcoders</c>). Prints the service's peak resident memory during each graph
/// (VmHWM, reset before each), its resident memory after each and the service's own estimate, against
/// the weights (resident after the first small graph) and the row storage the job wrote to the workspace.
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
        var (model, transcoders) = options.TextOrNull("--model") is { } given
            ? (given, options.Text("--transcoders", ""))
            : ScaleBenchmark.EnsureModel(work, layers, dModel, dModel / 8, dTranscoder, l0, TorchSharp.torch.ScalarType.Float32);
        string durable = options.Text("--durable", "in-memory");
        string prompt;
        using (var tokenizerOnly = await LoadedModel.LoadAsync(new ModelSettings { ModelId = ModelId, ModelPath = model, TranscoderSet = transcoders }, hub: null))
            prompt = ScaleBenchmark.PromptOf(tokenizerOnly, tokens);

        string workspace = Path.Combine(work, "service-workspace");
        if (Directory.Exists(workspace)) Directory.Delete(workspace, recursive: true);
        await using var service = await ServiceProcess.StartAsync(new Dictionary<string, string>
        {
            ["SECRET"] = Secret, ["MODEL_ID"] = ModelId, ["MODEL_PATH"] = model, ["TRANSCODER_SET"] = transcoders, ["WORKSPACE_PATH"] = workspace,
            ["DURABLE_STORAGE"] = durable, ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true", ["DURABLE_TASK_HUB"] = $"memory{Environment.ProcessId}",
            ["TOKEN_LIMIT"] = "1024",
        }, Secret);
        try
        {
            Console.WriteLine($"machine: {Measure.Machine()}; service process {service.Id}, Durable {durable}");
            Console.WriteLine($"model: {model} ({transcoders}); {tokens}-token prompt, {features} features, batch 48");

            await service.GraphAsync(ModelId, prompt, 10, 48, "load");
            double weights = service.ResidentMiB;
            Console.WriteLine($"resident after a 10-feature graph (weights + runtime + host): {weights:F0} MiB");
            Console.WriteLine("| graph | seconds | peak RSS MiB | service's estimate MiB | RSS after MiB | row bytes in workspace MiB | (peak − weights) / rows |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
            double? firstAfter = null;
            for (int i = 1; i <= graphs; i++)
            {
                service.ResetPeak();   // a new peak per graph
                using var watching = new CancellationTokenSource();
                string slug = $"memory-{i}";
                var rowBytes = Task.Run(() => ScaleBenchmark.LargestFolderBytes(Path.Combine(workspace, "jobs", slug, "rows"), watching.Token));
                double seconds = await service.GraphAsync(ModelId, prompt, features, 48, slug);
                await watching.CancelAsync();
                double rowsMiB = await rowBytes / 1048576.0;
                double peak = service.PeakMiB, after = service.ResidentMiB, estimate = await service.EstimateGbAsync(slug) * 1e9 / 1048576;
                firstAfter ??= after;
                Console.WriteLine($"| {i} | {seconds:F1} | {peak:F0} | {estimate:F0} | {after:F0} | {rowsMiB:F1} | {(peak - weights) / rowsMiB:F1} |");
            }
            Console.WriteLine($"RSS after graph {graphs} ÷ after graph 1: {service.ResidentMiB / firstAfter:F3}");
        }
        catch
        {
            Console.Error.WriteLine("service output:\n" + service.LastWords());
            throw;
        }
        return 0;
    }
}
