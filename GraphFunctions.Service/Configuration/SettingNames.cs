namespace GraphFunctions.Configuration;

/// <summary>
/// Every application setting the app reads, in one place. local.settings.example.json and the
/// Bicep app settings must list exactly these (a test compares them).
/// </summary>
public static class SettingNames
{
    // Functions host and storage
    public const string FunctionsWorkerRuntime = "FUNCTIONS_WORKER_RUNTIME";
    public const string WebJobsStorage = "AzureWebJobsStorage";
    public const string AppInsightsConnection = "APPLICATIONINSIGHTS_CONNECTION_STRING";
    public const string AzureClientId = "AZURE_CLIENT_ID";

    /// <summary>The Functions host's own landing page would answer "/", where the viewer's jobs page lives.</summary>
    public const string DisableHomepage = "AzureWebJobsDisableHomepage";

    /// <summary>
    /// Identity-based AzureWebJobsStorage (Azure): the account, or its blob endpoint, with a managed
    /// identity. Parts of the AzureWebJobsStorage setting, so not listed separately in <see cref="All"/>.
    /// </summary>
    public const string WebJobsStorageAccountName = "AzureWebJobsStorage__accountName";
    public const string WebJobsStorageBlobServiceUri = "AzureWebJobsStorage__blobServiceUri";

    // Secrets (Key Vault references in Azure)
    public const string Secret = "SECRET";
    public const string HfToken = "HF_TOKEN";

    // Model and transcoders
    public const string ModelId = "MODEL_ID";
    public const string ModelPath = "MODEL_PATH";
    public const string TranscoderSet = "TRANSCODER_SET";
    public const string NeuronpediaModelId = "NEURONPEDIA_MODEL_ID";
    public const string HfHome = "HF_HOME";
    public const string HfEndpoint = "HF_ENDPOINT";
    public const string Device = "DEVICE";
    public const string ComputeDtype = "COMPUTE_DTYPE";
    public const string TokenLimit = "TOKEN_LIMIT";
    public const string MemoryLimitGb = "MEMORY_LIMIT_GB";
    public const string LazyEncoders = "LAZY_ENCODERS";
    public const string UpdateInterval = "UPDATE_INTERVAL";
    public const string BatchesPerActivity = "BATCHES_PER_ACTIVITY";

    // Graph jobs, workspace and delivery
    public const string WorkspacePath = "WORKSPACE_PATH";
    public const string WorkspaceBlobContainer = "WORKSPACE_BLOB_CONTAINER";
    public const string GraphBlobContainer = "GRAPH_BLOB_CONTAINER";
    public const string SignedUrlAllowedHosts = "SIGNED_URL_ALLOWED_HOSTS";
    public const string SteerWaitSeconds = "STEER_WAIT_SECONDS";
    public const string GraphWaitSeconds = "GRAPH_WAIT_SECONDS";
    public const string UploadTimeoutSeconds = "UPLOAD_TIMEOUT_SECONDS";
    public const string JobRetentionHours = "JOB_RETENTION_HOURS";

    // The graph viewer's pages (docs/viewer.md)
    public const string ViewerPublic = "VIEWER_PUBLIC";

    // The local host's Durable engine (in Azure the Functions host takes its provider and hub from host.json)
    public const string DurableStorage = "DURABLE_STORAGE";
    public const string DurableTaskHub = "DURABLE_TASK_HUB";

    /// <summary>Activities the local host's worker runs at once; in Azure, host.json's maxConcurrentActivityFunctions.</summary>
    public const string DurableActivitySlots = "DURABLE_ACTIVITY_SLOTS";

    public static IReadOnlyList<string> All { get; } =
    [
        FunctionsWorkerRuntime, WebJobsStorage, AppInsightsConnection, AzureClientId, DisableHomepage,
        Secret, HfToken,
        ModelId, ModelPath, TranscoderSet, NeuronpediaModelId, HfHome, HfEndpoint, Device, ComputeDtype, TokenLimit, MemoryLimitGb, LazyEncoders, UpdateInterval, BatchesPerActivity,
        WorkspacePath, WorkspaceBlobContainer, GraphBlobContainer, SignedUrlAllowedHosts, SteerWaitSeconds, GraphWaitSeconds,
        UploadTimeoutSeconds, JobRetentionHours, ViewerPublic, DurableStorage, DurableTaskHub, DurableActivitySlots,
    ];
}
