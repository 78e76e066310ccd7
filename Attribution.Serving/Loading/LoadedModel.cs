namespace Attribution.Loading;

using Attribution.Chat;
using Attribution.Graphs;
using Attribution.Hub;
using Attribution.Models;
using Attribution.Tokenization;
using Attribution.Tracing;
using Attribution.Transcoders;
using Microsoft.Extensions.Logging;
using TorchSharp;

/// <summary>The model a worker serves: replacement model, tokenizer and the names that identify them.</summary>
public sealed class LoadedModel : IDisposable
{
    private LoadedModel(string modelId, string scan, string transcoderSet, IReadOnlyList<string> sourceUrls, ReplacementModel replacement, TextTokenizer tokenizer, ChatFormat chat, FeatureLabels labels, FeatureDashboards dashboards, TrainingVocabulary? training)
    {
        Training = training;
        Labels = labels;
        Dashboards = dashboards;
        Chat = chat;
        ModelId = modelId;
        Scan = scan;
        TranscoderSet = transcoderSet;
        SourceUrls = sourceUrls;
        Replacement = replacement;
        Tokenizer = tokenizer;
    }

    public string ModelId { get; }

    /// <summary>The Neuronpedia model id written into graphs.</summary>
    public string Scan { get; }

    public string TranscoderSet { get; }

    public IReadOnlyList<string> SourceUrls { get; }

    public ReplacementModel Replacement { get; }

    public TextTokenizer Tokenizer { get; }

    /// <summary>The set's own feature labels (a local set's labels.json), written into graphs as clerps.</summary>
    public FeatureLabels Labels { get; }

    /// <summary>The set's feature dashboards (a local set's features/ folder, circuit-tracer's local format); none for a hub set.</summary>
    public FeatureDashboards Dashboards { get; }

    /// <summary>The model's chat template and special-token texts (<see cref="ChatFormat.None"/> without a tokenizer_config.json).</summary>
    public ChatFormat Chat { get; }

    /// <summary>The token ids the model met in training (its folder's training_tokens.json), or null: then no token counts as unseen.</summary>
    public TrainingVocabulary? Training { get; }

    /// <summary>Prompt → token ids with the BOS rule of docs/algorithm.md §2.</summary>
    public int[] Tokenize(string prompt) => Tokenizer.EncodePrompt(prompt);

    /// <summary>The prompt tokens (BOS included) this model never saw in training, with the warnings the API answers.</summary>
    public UnseenTokens UnseenIn(IReadOnlyList<int> tokens) => Training?.Find(tokens, ids => Tokenizer.Decode(ids), ModelId) ?? UnseenTokens.None;

    /// <summary>
    /// How many features fire per position and layer, for memory estimates: the most seen so far,
    /// first measured on <see cref="CalibrationText"/> when a graph is first estimated (the
    /// transcoders' sparsity is known only by running them), then raised by every graph this model makes.
    /// </summary>
    public ActivityProfile Activity
    {
        get
        {
            lock (activityLock)
            {
                if (activity is null)
                {
                    var tokens = Tokenize(CalibrationText);
                    using var prompt = PreparedPrompt.Prepare(Replacement, tokens[..Math.Min(tokens.Length, 64)]);
                    activity = ProfileOf(prompt.Active, prompt.NPos);
                }
                return activity;
            }
        }
    }

    /// <summary>Ordinary text the transcoders' sparsity is first measured on.</summary>
    public const string CalibrationText = "The capital of France is Paris, and the capital of England is London. "
        + "She opened the door, looked at the rain and decided that the walk to the station could wait until the evening.";

    private readonly Lock activityLock = new();
    private ActivityProfile? activity;

    /// <summary>Records a graph's active features (its prompt of <paramref name="positions"/> tokens) for later estimates.</summary>
    public void ObserveActivity(ActiveFeatures active, int positions)
    {
        var observed = ProfileOf(active, positions);
        lock (activityLock) activity = observed.Max(activity);
    }

    private ActivityProfile ProfileOf(ActiveFeatures active, int positions) =>
        ActivityProfile.Of(active, positions, Replacement.NLayers, Math.Min(Replacement.SilencedPositions, positions));

    /// <summary>The estimated peak memory of a graph of <paramref name="positions"/> tokens with these settings.</summary>
    public MemoryEstimate EstimateMemory(int positions, AttributionSettings settings, bool tracesAttention = false, bool tracesQk = false) =>
        MemoryEstimate.For(MemoryShape.Of(Replacement, Activity), positions, settings, tracesAttention, tracesQk);

    /// <summary>
    /// Loads what the settings name: a local folder, the hub (by model id, through the HF cache),
    /// or the bundled demo model when neither is configured.
    /// </summary>
    public static async Task<LoadedModel> LoadAsync(ModelSettings settings, HubClient? hub, ILogger? log = null, CancellationToken cancellation = default)
    {
        var device = torch.device(settings.Device);
        string modelId = settings.ModelId;
        string? transcoderSet = settings.TranscoderSet;
        string? transcoderSetName = settings.TranscoderSet;
        string modelFolder;

        if (!string.IsNullOrEmpty(settings.ModelPath))
        {
            modelFolder = settings.ModelPath;
        }
        else if (modelId == BundledModel.Id)
        {
            (modelFolder, transcoderSet, transcoderSetName) = BundledModel.Locate(settings.TranscoderSet);
        }
        else if (modelId == TinyRandomModel.Id)
        {
            var (folder, config) = TinyRandomModel.Locate(settings.BundledFolder);
            modelFolder = folder;
            transcoderSet ??= config;
            transcoderSetName ??= TinyRandomModel.TranscoderSetName;
        }
        else
        {
            var client = hub ?? throw new InvalidOperationException($"model {modelId} must come from the hub, but no hub client is configured");
            log?.LogInformation("Downloading {Model} from the hub (cached under {Cache})", modelId, client.Cache.Root);
            var config = await client.DownloadFileAsync(modelId, "config.json", cancellationToken: cancellation);
            await client.DownloadFileAsync(modelId, "tokenizer.json", config.CommitHash, cancellationToken: cancellation);
            await TryDownload(client, modelId, "tokenizer_config.json", config.CommitHash, cancellation);
            await TryDownload(client, modelId, "chat_template.jinja", config.CommitHash, cancellation);
            await client.DownloadSafetensorsAsync(modelId, config.CommitHash, cancellationToken: cancellation);
            modelFolder = config.SnapshotFolder;
        }
        if (string.IsNullOrEmpty(transcoderSet))
            throw new InvalidOperationException($"no transcoder set is configured for model {modelId}");

        var training = TrainingVocabulary.LoadFrom(modelFolder);   // read first: a malformed file fails before the weights load
        if (training is not null)
            log?.LogInformation("Prompt tokens outside the {Count} ids of {File} are warned about: {Description}",
                training.Count, TrainingVocabulary.FileName, training.Description);
        log?.LogInformation("Loading {Model} from {Folder} ({DType} on {Device})", modelId, modelFolder, settings.DType, device);
        var model = DecoderModel.Load(modelFolder, device, settings.DType);
        try
        {
            var options = new TranscoderLoadOptions { Device = device, DType = settings.DType, LazyEncoders = settings.LazyEncoders };
            var transcoders = await TranscoderSetCatalog.LoadAsync(transcoderSet, model.Config.NLayers, hub, options, cancellation);
            var tokenizer = TextTokenizer.FromModelDirectory(modelFolder);
            var sourceUrls = TranscoderSetCatalog.Describe(transcoderSet).SourceUrls;
            transcoderSetName ??= transcoderSet;
            string scan = settings.NeuronpediaModelId ?? modelId switch
            {
                BundledModel.Id => BundledModel.Scan,
                TinyRandomModel.Id => TinyRandomModel.Scan,
                _ => NeuronpediaIds.ScanFor(modelId),
            };
            log?.LogInformation("Serving {Model} (scan {Scan}) with transcoders {Set}: {Layers} layers, {Features} features per layer",
                modelId, scan, transcoderSet, transcoders.NLayers, transcoders.DTranscoder);
            TorchInfo.ReleaseFreedMemory();   // what loading streamed through (encoder chunks, conversions)
            return new LoadedModel(modelId, scan, transcoderSetName, sourceUrls, new ReplacementModel(model, transcoders) { SilencedPositions = ReplacementModel.SilencedPositionsFor(modelId) }, tokenizer, ChatFormat.FromModelDirectory(modelFolder), FeatureLabels.LoadBeside(transcoderSet), FeatureDashboards.LoadBeside(transcoderSet), training);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static async Task TryDownload(HubClient hub, string repo, string path, string revision, CancellationToken cancellation)
    {
        try
        {
            await hub.DownloadFileAsync(repo, path, revision, cancellationToken: cancellation);
        }
        catch (HubException e) when (e.Kind == HubErrorKind.EntryNotFound)
        {
            // Optional file: the tokenizer and chat format work without it.
        }
    }

    public void Dispose()
    {
        Replacement.Dispose();
        Tokenizer.Dispose();
    }
}
