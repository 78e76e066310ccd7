namespace GraphFunctions.Service;

using Attribution.Hub;
using GraphFunctions.Api;
using GraphFunctions.Configuration;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using GraphFunctions.Workers;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

/// <summary>Everything the service needs, registered once for both hosts (Functions and the local host).</summary>
public static class ServiceRegistration
{
    /// <param name="options">The settings when the host has read them already (else read here, once).</param>
    public static IServiceCollection AddGraphService(this IServiceCollection services, IConfiguration configuration, ServiceOptions? options = null)
    {
        options ??= ServiceOptions.From(configuration);
        services.AddSingleton(options);
        services.AddSingleton(sp => new HubClient(HubClient.CreateHttpClient(), options.Hub, sp.GetRequiredService<ILoggerFactory>().CreateLogger<HubClient>()));
        services.AddSingleton<ModelHost>();
        services.AddHostedService(sp => sp.GetRequiredService<ModelHost>());
        services.AddSingleton(_ => new GpuGate());
        services.AddSingleton(new DeliverySlots(options.ActivitySlots));
        services.AddSingleton(new SecretCheck(options.Secret));

        services.AddSingleton(StorageSetup.CreateWorkspace(options.Storage));
        services.AddSingleton(StorageSetup.CreateSignedUrlPolicy(options.Storage));
        services.AddSingleton(sp => new S3PresignedUploader(S3PresignedUploader.CreateHttpClient(), sp.GetRequiredService<SignedUrlPolicy>(),
            logger: sp.GetRequiredService<ILoggerFactory>().CreateLogger<S3PresignedUploader>()));
        services.AddSingleton(sp => new GraphDelivery(sp.GetRequiredService<IWorkspaceStore>(), sp.GetRequiredService<S3PresignedUploader>(),
            StorageSetup.CreateBlobDelivery(options.Storage), sp.GetRequiredService<ILogger<GraphDelivery>>(), options.UploadTimeout));

        services.AddSingleton<JobStates>();
        services.AddSingleton(sp => new JobWatch(sp.GetService<Microsoft.DurableTask.Client.DurableTaskClient>()));
        services.AddSingleton(sp => new JobRetention(sp.GetRequiredService<IWorkspaceStore>(), options.JobRetention, sp.GetRequiredService<ILogger<JobRetention>>()));
        services.AddSingleton<GraphApi>();
        services.AddSingleton<ModelApi>();
        services.AddSingleton(sp => new ViewerApi(options.ViewerPublic, () => ViewerApi.ServiceSettingsAsync(options, sp.GetRequiredService<ModelHost>())));
        foreach (var activity in ActivityTypes) services.AddTransient(activity);
        return services;
    }

    /// <summary>The activities of <see cref="GraphOrchestrator"/>, registered by class name.</summary>
    public static IReadOnlyList<Type> ActivityTypes { get; } =
    [
        typeof(BeginGraphActivity), typeof(RankFeaturesActivity), typeof(FeatureRowsActivity),
        typeof(AssembleGraphActivity), typeof(DeliverGraphActivity), typeof(CleanupJobActivity), typeof(RecordFailureActivity),
    ];
}
