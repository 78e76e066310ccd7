namespace GraphFunctions.Configuration;

/// <summary>
/// Where the local host keeps Durable state (DURABLE_STORAGE): "in-memory" (fast, lost on exit:
/// what most tests use) or "azure-storage" — the Azure Storage provider on the AzureWebJobsStorage
/// account (Azurite locally), task hub DURABLE_TASK_HUB. In Azure the Functions host reads its
/// provider from host.json instead. Read with the other settings by <see cref="ServiceOptions"/>.
/// </summary>
public sealed record DurableStorage(bool Persistent, string? ConnectionString, string TaskHub)
{
    public const string InMemory = "in-memory";
    public const string AzureStorage = "azure-storage";
    public const string DefaultTaskHub = "GraphFunctions";

    public static DurableStorage Default { get; } = new(false, null, DefaultTaskHub);

    /// <summary>The setting values (null: not set) as a choice, or a message naming what is wrong.</summary>
    public static DurableStorage Parse(string? kind, string? taskHub, string? connectionString)
    {
        string hub = taskHub ?? DefaultTaskHub;
        return (kind ?? InMemory) switch
        {
            InMemory => new DurableStorage(false, null, hub),
            AzureStorage => new DurableStorage(true,
                connectionString ?? throw new InvalidOperationException(
                    $"{SettingNames.DurableStorage}={AzureStorage} needs {SettingNames.WebJobsStorage} (e.g. UseDevelopmentStorage=true for Azurite)"),
                hub),
            _ => throw new InvalidOperationException($"{SettingNames.DurableStorage} must be '{InMemory}' or '{AzureStorage}', got '{kind}'"),
        };
    }
}
