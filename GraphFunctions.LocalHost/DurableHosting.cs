namespace GraphFunctions.LocalHost;

using DurableTask.AzureStorage;
using DurableTask.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing.Sidecar.Grpc;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary>
/// The Durable Task engine of the local host on the Azure Storage provider — the one Durable
/// Functions uses in Azure — so jobs are persistent: history, status and results live in the
/// storage account (Azurite locally) and survive restarts and kill -9; several processes on one
/// task hub share the work, as GPU replicas do. The portable SDK's worker and client talk over
/// gRPC on loopback to the Durable Task sidecar (TaskHubGrpcServer), which dispatches from
/// AzureStorageOrchestrationService. One sidecar and one worker per process.
/// </summary>
public static class DurableHosting
{
    /// <summary>How long a dead process's partitions stay leased before another takes them (the provider's default is 30 s).</summary>
    public static readonly TimeSpan LeaseInterval = TimeSpan.FromSeconds(10);

    /// <summary>How long a taken queue message stays hidden (work items and control): a dead process's messages reappear after this (the provider's default is 5 min).</summary>
    public static readonly TimeSpan MessageVisibility = TimeSpan.FromMinutes(1);

    /// <summary>How often a running activity's hidden message is hidden again (<see cref="SidecarActivityRepairs"/>).</summary>
    public static readonly TimeSpan ActivityLockRenewal = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The largest gRPC message between the sidecar and the worker or client (gRPC's default is 4 MiB).
    /// An orchestration's work item carries its whole history: one small record per activity of a
    /// graph job, well under this even for tens of thousands of batches, now that jobs take no events.
    /// </summary>
    public const int MaxMessageBytes = 32 * 1024 * 1024;

    public static IServiceCollection AddDurableOnAzureStorage(this IServiceCollection services, Action<DurableTaskRegistry> tasks, string connectionString, string taskHub,
        int activitySlots, int sidecarPort)
    {
        string address = $"http://127.0.0.1:{sidecarPort}";
        services.AddSingleton(sp => new AzureStorageOrchestrationService(new AzureStorageOrchestrationServiceSettings
        {
            TaskHubName = taskHub,
            StorageAccountClientProvider = new StorageAccountClientProvider(connectionString),
            WorkerId = $"{Environment.MachineName}-{Environment.ProcessId}",
            PartitionCount = 4,
            MaxConcurrentTaskActivityWorkItems = activitySlots,
            // Snappy on a quiet hub: poll the queues at least every 250 ms (each graph job makes seven hand-offs,
            // docs/performance.md "The host's overhead"), and take over a dead worker's partitions soon.
            MaxQueuePollingInterval = TimeSpan.FromMilliseconds(250),
            LeaseInterval = LeaseInterval,
            LeaseRenewInterval = TimeSpan.FromSeconds(3),
            LeaseAcquireInterval = TimeSpan.FromSeconds(2),
            WorkItemQueueVisibilityTimeout = MessageVisibility,
            ControlQueueVisibilityTimeout = MessageVisibility,
            LoggerFactory = sp.GetRequiredService<ILoggerFactory>(),
        }));
        // Before the worker (hosted services start in order): the sidecar it connects to.
        services.AddHostedService(sp => new SidecarHost(address, sp.GetRequiredService<AzureStorageOrchestrationService>(), sp.GetRequiredService<ILoggerFactory>()));
        var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { MaxReceiveMessageSize = MaxMessageBytes, MaxSendMessageSize = MaxMessageBytes });
        services.AddDurableTaskWorker(builder =>
        {
            builder.UseGrpc(channel);
            builder.AddTasks(tasks);
        });
        services.AddDurableTaskClient(builder =>
        {
            builder.UseGrpc(channel);
            builder.RegisterDirectly();
        });
        return services;
    }

    /// <summary>The sidecar: a small gRPC server of its own on loopback, over the provider (creating the task hub when new).</summary>
    private sealed class SidecarHost(string address, AzureStorageOrchestrationService provider, ILoggerFactory loggers) : IHostedService, IAsyncDisposable
    {
        private WebApplication? sidecar;

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await provider.CreateIfNotExistsAsync();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(loggers);
            builder.WebHost.UseUrls(address);
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = HttpProtocols.Http2));
            builder.Services.AddGrpc(grpc =>
            {
                grpc.MaxReceiveMessageSize = MaxMessageBytes;
                grpc.MaxSendMessageSize = MaxMessageBytes;
            });
            builder.Services.AddSingleton<IOrchestrationService>(new SidecarActivityRepairs(provider, loggers.CreateLogger<SidecarActivityRepairs>(), TimeProvider.System, ActivityLockRenewal));
            builder.Services.AddSingleton<IOrchestrationServiceClient>(provider);
            builder.Services.AddSingleton<TaskHubGrpcServer>();
            sidecar = builder.Build();
            sidecar.MapGrpcService<TaskHubGrpcServer>();
            await sidecar.StartAsync(cancellationToken);
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (sidecar is not null) await sidecar.StopAsync(cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            if (sidecar is not null) await sidecar.DisposeAsync();
        }
    }
}
