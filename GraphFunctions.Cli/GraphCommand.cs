namespace GraphFunctions.Cli;

using System.CommandLine;
using System.IO.Compression;
using Attribution;
using Attribution.Hub;
using Attribution.Loading;
using Attribution.Pipeline;
using Attribution.Requests;
using Attribution.Tracing;
using Microsoft.Extensions.Logging;

/// <summary>`graph`: a model, a transcoder set and a prompt in, Neuronpedia graph JSON out.</summary>
internal static class GraphCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + safetensors) or Hugging Face model id; default: the bundled demo model " + BundledModel.Id };
        var transcoders = new Option<string?>("--transcoders") { Description = "Transcoder set: config.yaml, its folder, a name (gemma, llama, mwhanna/qwen3-4b-transcoders, mntss/clt-gemma-2-2b-2.5M, mwhanna/gemma-scope-2-4b-it/transcoder_all/width_262k_l0_small_affine) or a hub reference org/repo[/subfolder][@revision]" };
        var prompt = new Option<string>("--prompt") { Description = "The prompt to attribute", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the graph JSON", Required = true };
        var gzip = new Option<bool>("--gzip") { Description = "Gzip the JSON as it is written" };
        var slug = new Option<string>("--slug") { Description = "Graph slug", DefaultValueFactory = _ => "graph" };
        var graphSettings = new SchemaOptions(RequestSchema.GraphSettings);
        var dtype = new Option<string>("--dtype") { DefaultValueFactory = _ => "float32" };
        var device = new Option<string>("--device") { DefaultValueFactory = _ => "cpu" };
        var lazyEncoders = new Option<bool>("--lazy-encoders") { Description = "Stream encoder matrices from disk instead of holding them" };
        // attribution_targets (docs/api.md): tokens as text or ids; --minus makes the one target a logit difference.
        var targetTokens = new Option<string[]>("--target") { Description = "A token to attribute from (repeatable; each one token of the model, e.g. \" Paris\"); default: the most likely next tokens" };
        var targetIds = new Option<long[]>("--target-id") { Description = "A token to attribute from, by id (repeatable)" };
        var minusToken = new Option<string?>("--minus") { Description = "With one --target or --target-id: attribute from the logit difference target − this token (e.g. \" London\")" };
        var minusId = new Option<long?>("--minus-id") { Description = "As --minus, by the token's id" };
        var memoryLimit = new Option<double?>("--memory-limit-gb") { Description = "Refuse a graph whose estimated peak memory is above this; default: the device's memory (the machine's or container's on the CPU, a GPU's as its driver reports it)" };
        var headLoadings = new Option<bool>(RequestSchema.HeadLoadings.OptionName) { Description = RequestSchema.HeadLoadings.Description };
        var qkTracing = new Option<bool>(RequestSchema.EnableQkTracing.OptionName) { Description = RequestSchema.EnableQkTracing.Description };

        var command = new Command("graph", "Attribute a prompt and write its Neuronpedia graph JSON")
        {
            model, transcoders, prompt, output, gzip, slug, dtype, device, lazyEncoders, targetTokens, targetIds, minusToken, minusId, memoryLimit, headLoadings, qkTracing,
        };
        foreach (var option in graphSettings.All) command.Options.Add(option);
        command.SetAction(async (parse, cancellation) =>
        {
            using var logging = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true));
            var log = logging.CreateLogger("graphfunctions");
            string? modelArgument = parse.GetValue(model);
            bool localFolder = modelArgument is not null && Directory.Exists(modelArgument);
            var settings = new ModelSettings
            {
                ModelId = modelArgument is null ? BundledModel.Id : localFolder ? LocalModelName.Of(modelArgument, parse.GetValue(transcoders)) : modelArgument,
                ModelPath = localFolder ? modelArgument : null,
                TranscoderSet = parse.GetValue(transcoders),
                Device = parse.GetValue(device)!,
                DType = ModelSettings.ParseDType(parse.GetValue(dtype)),
                LazyEncoders = parse.GetValue(lazyEncoders),
            };
            using var http = HubClient.CreateHttpClient();
            var hub = new HubClient(http, HubOptions.FromEnvironment(), log);
            using var loaded = await LoadedModel.LoadAsync(settings, hub, log, cancellation);
            Console.WriteLine(TorchInfo.Describe());

            var request = GraphRequest.FromSettings(parse.GetValue(prompt)!, parse.GetValue(slug)!, graphSettings.Integers(parse), graphSettings.Numbers(parse))
                with { HeadLoadings = parse.GetValue(headLoadings), QkTracing = parse.GetValue(qkTracing) };
            var specs = (parse.GetValue(targetTokens) ?? []).Select(t => new TargetSpec(Token: t))
                .Concat((parse.GetValue(targetIds) ?? []).Select(id => new TargetSpec(TokenId: id))).ToList();
            string? minus = parse.GetValue(minusToken);
            long? minusById = parse.GetValue(minusId);
            if (minus is not null || minusById is not null)
            {
                if (specs.Count != 1)
                {
                    Console.Error.WriteLine("--minus and --minus-id take exactly one --target or --target-id: the token the difference starts from");
                    return 2;
                }
                specs[0] = specs[0] with { Minus = minus, MinusId = minusById };
            }
            if (specs.Count > 0)
            {
                var targets = TargetResolution.Resolve(loaded, specs, "--target", out var problems);
                if (targets is null)
                {
                    problems.ForEach(Console.Error.WriteLine);
                    return 2;
                }
                request = request with { Targets = targets };
            }
            var estimate = request.EstimateMemory(loaded, loaded.Tokenize(request.Prompt).Length);
            Console.WriteLine($"estimated peak memory: {estimate.Describe()}");
            if (MemoryLimit.Resolve(parse.GetValue(memoryLimit), "--memory-limit-gb", settings.Device)?.Refusal(estimate) is { } tooLarge)
            {
                Console.Error.WriteLine(tooLarge);
                return 2;
            }
            var target = parse.GetValue(output)!;
            target.Directory?.Create();
            string partial = target.FullName + ".partial";
            GraphSummary summary;
            using (var progress = new ConsoleProgress())
            await using (var file = File.Create(partial))
            {
                Stream sink = parse.GetValue(gzip) ? new GZipStream(file, CompressionLevel.Fastest) : file;
                await using (sink)
                    summary = GraphPipeline.Generate(loaded, request, sink, progress);
            }
            File.Move(partial, target.FullName, overwrite: true);   // the graph appears whole or not at all

            Console.WriteLine($"wrote {target.FullName} ({target.Length / 1024.0:F0} KiB): {summary.ActiveFeatures} active features, " +
                $"{summary.SelectedFeatures} attributed, {summary.KeptNodes} nodes kept, {summary.Logits} logits; " +
                $"replacement {summary.Scores.Replacement:F3}, completeness {summary.Scores.Completeness:F3}");
            Console.WriteLine("phase              seconds");
            foreach (var group in summary.Timings.Phases.GroupBy(p => p.Phase))
                Console.WriteLine($"  {group.Key,-16} {group.Sum(p => p.Seconds),8:F3}");
            Console.WriteLine($"  {"total",-16} {summary.Timings.Total,8:F3}");
            foreach (var warning in summary.Warnings) Console.Error.WriteLine($"warning: {warning}");   // also in the graph's metadata.warnings
            return 0;
        });
        return command;
    }

    /// <summary>One self-overwriting line per phase on a terminal, plain lines otherwise.</summary>
    private sealed class ConsoleProgress : IProgress<AttributionProgress>, IDisposable
    {
        private string? phase;
        private DateTime lastDraw;

        public void Report(AttributionProgress value)
        {
            bool newPhase = value.Phase != phase;
            if (!newPhase && DateTime.UtcNow - lastDraw < TimeSpan.FromMilliseconds(200) && value.Done != value.Total) return;
            if (newPhase && phase is not null && !Console.IsOutputRedirected) Console.WriteLine();
            phase = value.Phase;
            lastDraw = DateTime.UtcNow;
            string text = value.Total > 0 ? $"{value.Phase}: {value.Done}/{value.Total}" : $"{value.Phase}...";
            if (Console.IsOutputRedirected) { if (newPhase || value.Done == value.Total) Console.WriteLine(text); }
            else Console.Write($"\r{text}   ");
        }

        public void Dispose()
        {
            if (phase is not null && !Console.IsOutputRedirected) Console.WriteLine();
        }
    }
}
