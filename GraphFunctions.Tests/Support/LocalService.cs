namespace GraphFunctions.Tests.Support;

using System.Net.Http.Headers;
using Attribution.Loading;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using GraphFunctions.Api;
using GraphFunctions.LocalHost;
using GraphFunctions.Storage;
using GraphFunctions.Workers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

/// <summary>Test classes that start a local service run one at a time: each loads a model and hosts a Durable engine.</summary>
[CollectionDefinition(Name)]
public sealed class UsesLocalService
{
    public const string Name = "local service";
}

/// <summary>
/// The local host started in this process on 127.0.0.1 (a free port) with the bundled tiny model,
/// a private workspace and the storage emulators as delivery targets: real HTTP over loopback.
/// </summary>
public sealed class LocalService : IAsyncDisposable
{
    public const string Secret = "test-secret-key";

    private readonly WebApplication app;
    private readonly TempFolder folder;

    private LocalService(WebApplication app, TempFolder folder, Uri address)
    {
        this.app = app;
        this.folder = folder;
        Address = address;
        Http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(5) };
        Http.DefaultRequestHeaders.Add(SecretCheck.Header, Secret);
    }

    public Uri Address { get; }

    /// <summary>A client that sends the right secret.</summary>
    public HttpClient Http { get; }

    public IServiceProvider Services => app.Services;

    public DurableTaskClient Durable => Services.GetRequiredService<DurableTaskClient>();

    public IWorkspaceStore Workspace => Services.GetRequiredService<IWorkspaceStore>();

    public static async Task<LocalService> StartAsync(Action<DurableTaskRegistry>? tasks = null, IDictionary<string, string?>? settings = null)
    {
        var folder = new TempFolder("gf-service");
        TinyRandomModelWriter.EnsureWritten();   // the model the service serves unless a test names another
        var all = new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["SECRET"] = Secret,
            ["MODEL_ID"] = TinyRandomModel.Id,   // fixed by its seed; the demo model's tests set MODEL_ID themselves
            ["MODEL_PATH"] = "",
            ["TRANSCODER_SET"] = "",
            ["WORKSPACE_PATH"] = folder["workspace"],
            ["WORKSPACE_BLOB_CONTAINER"] = "",
            ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true",
            ["GRAPH_BLOB_CONTAINER"] = "graphs-e2e",
            ["SIGNED_URL_ALLOWED_HOSTS"] = "127.0.0.1",
            ["STEER_WAIT_SECONDS"] = "1",
            ["TOKEN_LIMIT"] = "64",
            ["UPDATE_INTERVAL"] = "2",
            ["DURABLE_STORAGE"] = "in-memory",   // fast; the persistence tests run real processes on the Azure Storage provider
        };
        foreach (var (name, value) in settings ?? new Dictionary<string, string?>()) all[name] = value;
        var app = await StartWithRetriesAsync(all, tasks);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        await app.Services.GetRequiredService<ModelHost>().GetAsync();   // the model is loaded before tests talk to it
        return new LocalService(app, folder, new Uri(address));
    }

    /// <summary>Starts the app; a port taken between choosing and binding it (parallel tests) gets a second try.</summary>
    private static async Task<WebApplication> StartWithRetriesAsync(Dictionary<string, string?> settings, Action<DurableTaskRegistry>? tasks)
    {
        for (int attempt = 1; ; attempt++)
        {
            var app = LocalHostApp.Create([], settings, tasks);
            try
            {
                await app.StartAsync();
                return app;
            }
            catch (IOException e) when (attempt < 3 && e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await app.DisposeAsync();
            }
        }
    }

    /// <summary>A client without the secret header.</summary>
    public HttpClient Anonymous() => new() { BaseAddress = Address };

    public static StringContent Json(string body) => new(body, new MediaTypeHeaderValue("application/json"));

    /// <summary>A response's body as JSON.</summary>
    public static async Task<System.Text.Json.JsonDocument> JsonOf(HttpResponseMessage response) =>
        System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
        folder.Dispose();
    }
}

/// <summary>One local service for a whole test class (xunit class fixture); subclasses give it settings.</summary>
public class LocalServiceFixture : IAsyncLifetime
{
    public LocalService Service { get; private set; } = null!;

    protected virtual IDictionary<string, string?>? Settings => null;

    public async Task InitializeAsync() => Service = await LocalService.StartAsync(settings: Settings);

    public async Task DisposeAsync() => await Service.DisposeAsync();
}
