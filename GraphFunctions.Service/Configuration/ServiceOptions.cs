namespace GraphFunctions.Configuration;

using System.Globalization;
using System.Text.Json;
using Attribution.Hub;
using Attribution.Loading;
using Attribution.Requests;
using Microsoft.Extensions.Configuration;

/// <summary>The service's settings, read once from configuration (local.settings, app settings, Key Vault references): the one place that reads them.</summary>
public sealed record ServiceOptions
{
    public string? Secret { get; init; }
    public required ModelSettings Model { get; init; }

    /// <summary>The model hub: HF_ENDPOINT, HF_TOKEN, HF_HOME and the other variables huggingface_hub reads.</summary>
    public HubOptions Hub { get; init; } = new();

    public StorageOptions Storage { get; init; } = new();
    public int TokenLimit { get; init; } = 64;

    /// <summary>
    /// The memory a graph may need, checked against its estimate before the job starts: MEMORY_LIMIT_GB,
    /// else the device's (the CPU's container or machine, a GPU's as its driver reports it); null when unreadable.
    /// </summary>
    public MemoryLimit? MemoryLimit { get; init; }
    public TimeSpan SteerWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Batches between feature re-rankings; the Neuronpedia server ranks once (1000).</summary>
    public int UpdateInterval { get; init; } = RequestSchema.UpdateInterval.DefaultValue;

    /// <summary>How long /generate-graph waits for its job before answering 202 (under Container Apps' 240 s ingress limit).</summary>
    public int GraphWaitSeconds { get; init; } = RequestSchema.WaitSeconds.DefaultValue;

    /// <summary>The most one delivery (every attempt of an upload together) may take before the job fails.</summary>
    public TimeSpan UploadTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>How long finished jobs (their Durable history and workspace files) are kept.</summary>
    public TimeSpan JobRetention { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Whether the viewer's pages are served to other hosts than loopback (they then ask for the secret).</summary>
    public bool ViewerPublic { get; init; }

    /// <summary>The local host's Durable engine and task hub (the Functions host's come from host.json).</summary>
    public DurableStorage Durable { get; init; } = DurableStorage.Default;

    /// <summary>
    /// Activities the Durable worker of one process runs at once (the local host's engine; the
    /// Functions host reads host.json's maxConcurrentActivityFunctions, see <see cref="ActivitySlotsIn"/>).
    /// Deliveries take at most all but one of them (<see cref="Workers.DeliverySlots"/>).
    /// </summary>
    public int ActivitySlots { get; init; } = DefaultActivitySlots;

    /// <summary>The Azure Storage provider's own default.</summary>
    public const int DefaultActivitySlots = 10;

    /// <summary>Backward-pass batches computed by one feature-rows activity (amortises the Durable per-activity latency).</summary>
    public int BatchesPerActivity { get; init; } = 8;

    public static ServiceOptions From(IConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        string? Get(string name) => settings[name] is { Length: > 0 } value ? value : null;
        // The identity-based parts of a setting ("__" in the environment) are ":" in IConfiguration.
        string? GetPart(string name) => Get(name.Replace("__", ":", StringComparison.Ordinal));
        int Int(string name, int fallback, int minimum = 1, int maximum = int.MaxValue) => Get(name) is { } text
            ? int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= minimum && v <= maximum ? v
                : throw new InvalidOperationException($"setting {name} must be an integer between {minimum} and {maximum}, got '{text}'")
            : fallback;
        double? Gb(string name) => Get(name) is { } text
            ? double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 ? v
                : throw new InvalidOperationException($"setting {name} must be a positive number of gigabytes, got '{text}'")
            : null;
        string? storageAccount = Get(SettingNames.WebJobsStorage);   // blobs and, in the local host, Durable state

        return new ServiceOptions
        {
            Secret = Get(SettingNames.Secret),
            Hub = HubOptions.FromEnvironment(name => Get(name) ?? Environment.GetEnvironmentVariable(name)),
            Storage = new StorageOptions
            {
                WorkspaceBlobContainer = Get(SettingNames.WorkspaceBlobContainer),
                WorkspacePath = Get(SettingNames.WorkspacePath) ?? StorageOptions.DefaultWorkspacePath,
                GraphBlobContainer = Get(SettingNames.GraphBlobContainer),
                SignedUrlAllowedHosts = Get(SettingNames.SignedUrlAllowedHosts),
                ConnectionString = storageAccount,
                BlobEndpoint = GetPart(SettingNames.WebJobsStorageBlobServiceUri) is { } uri ? new Uri(uri)
                    : GetPart(SettingNames.WebJobsStorageAccountName) is { } account ? new Uri($"https://{account}.blob.core.windows.net") : null,
                ManagedIdentityClientId = Get(SettingNames.AzureClientId),
            },
            TokenLimit = Int(SettingNames.TokenLimit, 64),
            MemoryLimit = MemoryLimit.Resolve(Gb(SettingNames.MemoryLimitGb), SettingNames.MemoryLimitGb, Get(SettingNames.Device) ?? "cpu"),
            SteerWait = TimeSpan.FromSeconds(Int(SettingNames.SteerWaitSeconds, 30)),
            UpdateInterval = Int(SettingNames.UpdateInterval, RequestSchema.UpdateInterval.DefaultValue),
            GraphWaitSeconds = Int(SettingNames.GraphWaitSeconds, RequestSchema.WaitSeconds.DefaultValue, 0, (int)RequestSchema.WaitSeconds.Maximum),
            BatchesPerActivity = Int(SettingNames.BatchesPerActivity, 8),
            ActivitySlots = Int(SettingNames.DurableActivitySlots, DefaultActivitySlots, maximum: 1000),
            UploadTimeout = TimeSpan.FromSeconds(Int(SettingNames.UploadTimeoutSeconds, 300)),
            JobRetention = TimeSpan.FromHours(Int(SettingNames.JobRetentionHours, 24)),
            ViewerPublic = string.Equals(Get(SettingNames.ViewerPublic), "true", StringComparison.OrdinalIgnoreCase),
            Durable = DurableStorage.Parse(Get(SettingNames.DurableStorage), Get(SettingNames.DurableTaskHub), storageAccount),
            Model = new ModelSettings
            {
                ModelId = Get(SettingNames.ModelId) ?? (Get(SettingNames.ModelPath) is { Length: > 0 } folder
                    ? LocalModelName.Of(folder, Get(SettingNames.TranscoderSet)) : BundledModel.Id),
                ModelPath = Get(SettingNames.ModelPath),
                TranscoderSet = Get(SettingNames.TranscoderSet),
                NeuronpediaModelId = Get(SettingNames.NeuronpediaModelId),
                Device = Get(SettingNames.Device) ?? "cpu",
                DType = ModelSettings.ParseDType(Get(SettingNames.ComputeDtype)),
                LazyEncoders = string.Equals(Get(SettingNames.LazyEncoders), "true", StringComparison.OrdinalIgnoreCase),
            },
        };
    }

    /// <summary>The activities the Functions host runs at once per instance: maxConcurrentActivityFunctions of its host.json.</summary>
    public static int ActivitySlotsIn(string hostJsonPath)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(hostJsonPath));
        return document.RootElement.TryGetProperty("extensions", out var extensions)
            && extensions.TryGetProperty("durableTask", out var durable)
            && durable.TryGetProperty("maxConcurrentActivityFunctions", out var slots)
            ? slots.GetInt32()
            : throw new InvalidOperationException($"{hostJsonPath} sets no extensions.durableTask.maxConcurrentActivityFunctions");
    }
}
