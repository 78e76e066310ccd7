namespace GraphFunctions.Workers;

using Attribution.Hub;
using Attribution.Loading;
using GraphFunctions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary>
/// The one model this worker serves, loaded once in the background at start-up (the hub
/// download of a real model takes minutes); requests wait for it.
/// </summary>
public sealed class ModelHost : IHostedService, IDisposable
{
    private readonly ServiceOptions options;
    private readonly HubClient hub;
    private readonly ILogger<ModelHost> log;
    private readonly Lazy<Task<LoadedModel>> loading;

    public ModelHost(ServiceOptions options, HubClient hub, ILogger<ModelHost> log)
    {
        this.options = options;
        this.hub = hub;
        this.log = log;
        loading = new Lazy<Task<LoadedModel>>(() => Task.Run(() => LoadedModel.LoadAsync(options.Model, hub, log)));
    }

    /// <summary>The configured model id: what requests must name in model_id.</summary>
    public string ModelId => options.Model.ModelId;

    public HubClient Hub => hub;

    public Task<LoadedModel> GetAsync() => loading.Value;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = GetAsync().ContinueWith(t => log.LogError(t.Exception, "Loading the model failed"), TaskContinuationOptions.OnlyOnFaulted);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        if (loading.IsValueCreated && loading.Value.IsCompletedSuccessfully) loading.Value.Result.Dispose();
    }
}
