namespace GraphFunctions.LocalHost;

using GraphFunctions.Configuration;
using Microsoft.Extensions.Configuration;

/// <summary>
/// Where the local host keeps Durable state (DURABLE_STORAGE): "in-memory" (fast, lost on exit:
/// what most tests use) or "azure-storage" — the Azure Storage provider on the AzureWebJobsStorage
/// account (Azurite locally), task hub DURABLE_TASK_HUB. In Azure the Functions host reads its
/// provider from host.json instead.
/// </summary>
public sealed record DurableStorage(bool Persistent, string? ConnectionString, string TaskHub)
{
    public const string InMemory = "in-memory";
    public const string AzureStorage = "azure-storage";
    public const string DefaultTaskHub = "GraphFunctions";

    public static DurableStorage From(IConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        string kind = settings[SettingNames.DurableStorage] is { Length: > 0 } k ? k : InMemory;
        string hub = settings[SettingNames.DurableTaskHub] is { Length: > 0 } h ? h : DefaultTaskHub;
        return kind switch
        {
            InMemory => new DurableStorage(false, null, hub),
            AzureStorage => new DurableStorage(true,
                settings[SettingNames.WebJobsStorage] is { Length: > 0 } connection ? connection
                    : throw new InvalidOperationException($"{SettingNames.DurableStorage}={AzureStorage} needs {SettingNames.WebJobsStorage} (e.g. UseDevelopmentStorage=true for Azurite)"),
                hub),
            _ => throw new InvalidOperationException($"{SettingNames.DurableStorage} must be '{InMemory}' or '{AzureStorage}', got '{kind}'"),
        };
    }
}
