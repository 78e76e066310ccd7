namespace GraphFunctions.LocalHost;

using System.Text.Json;
using GraphFunctions.Api;
using GraphFunctions.Configuration;
using GraphFunctions.Orchestration;
using GraphFunctions.Service;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.DurableTask.Worker;
using Microsoft.Extensions.Configuration;

/// <summary>
/// Serves the same routes as the Functions app, over the same handlers, orchestrator and
/// activities, with the Durable Task engine in process and a local workspace. Settings come from
/// local.settings.json (else local.settings.example.json) beside the repository, then environment
/// variables, then the command line.
/// </summary>
public static class LocalHostApp
{
    public const string DefaultUrl = "http://127.0.0.1:5004";

    /// <summary>Run as a worker: take activities from the persistent task hub, serve no routes.</summary>
    public const string WorkerFlag = "--worker";

    /// <summary>
    /// The start of the one line the host prints once it answers on its port, followed by the address
    /// to open (e.g. <c>http://127.0.0.1:5004/</c>): what scripts/run.sh's reader and launchers wait for.
    /// </summary>
    public const string ReadyAnnouncement = "GraphFunctions local host ready: open ";

    /// <summary>The line a worker (<see cref="WorkerFlag"/>) prints once it takes activities.</summary>
    public const string WorkerReadyAnnouncement = "GraphFunctions worker ready: taking activities from task hub ";

    /// <param name="tasks">Replaces the default task registrations (tests register faulty activities).</param>
    public static WebApplication Create(string[] args, IDictionary<string, string?>? settings = null, Action<DurableTaskRegistry>? tasks = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var fileSettings = LocalSettingsFile();
        builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = fileSettings });
        if (settings is not null) builder.Configuration.AddInMemoryCollection(settings);
        if (args.Contains(WorkerFlag)) builder.WebHost.UseUrls("http://127.0.0.1:0");
        else if (builder.Configuration["urls"] is null) builder.WebHost.UseUrls(DefaultUrl);
        // The framework, the in-process Durable engine and gRPC log every request at Information.
        foreach (var chatty in new[] { "Microsoft.AspNetCore", "Microsoft.DurableTask", "DurableTask", "Grpc", "Microsoft.Extensions.Hosting" })
            builder.Logging.AddFilter(chatty, LogLevel.Warning);

        var options = ServiceOptions.From(builder.Configuration);
        builder.Services.AddGraphService(builder.Configuration, options);
        // The Durable engine talks to its worker over gRPC on loopback: give it a port known to be free.
        var durable = options.Durable;
        if (durable.Persistent)
            builder.Services.AddDurableOnAzureStorage(tasks ?? RegisterTasks, durable.ConnectionString!, durable.TaskHub, options.ActivitySlots, FreeLoopbackPort());
        else
            builder.Services.AddInMemoryDurableTask(tasks ?? RegisterTasks, new InMemoryDurableTaskOptions { Port = FreeLoopbackPort() });
        // The worker runs at most this many activities at once, on either engine (DeliverySlots counts on it).
        builder.Services.Configure<DurableTaskWorkerOptions>(worker => worker.Concurrency.MaximumConcurrentActivityWorkItems = options.ActivitySlots);
        builder.Services.AddHostedService<JobRetentionService>();

        var app = builder.Build();
        // A worker (--worker) joins the task hub to run activities; it serves no routes.
        if (!args.Contains(WorkerFlag)) MapRoutes(app);
        // One plain line once the server answers (after every hosted service started and Kestrel
        // bound, so with urls port 0 it names the bound port): the "ready" line of the README.
        bool worker = args.Contains(WorkerFlag);
        app.Lifetime.ApplicationStarted.Register(() => Console.Out.WriteLine(worker
            ? $"{WorkerReadyAnnouncement}{durable.TaskHub} (Ctrl+C to stop)"
            : ReadyLine(app.Urls.First())));
        return app;
    }

    /// <summary>The ready line for a host bound to <paramref name="url"/>; a wildcard host reads as loopback.</summary>
    public static string ReadyLine(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        var bound = new UriBuilder(url);
        if (bound.Host is "0.0.0.0" or "[::]" or "::") bound.Host = "127.0.0.1";
        string open = bound.Uri.GetLeftPart(UriPartial.Authority);
        return $"{ReadyAnnouncement}{open}{Routes.PathOf(Routes.ViewerJobs)} (graph viewer; API docs: {open}{Routes.PathOf(Routes.Docs)})";
    }

    /// <summary>The orchestrator and every activity under their class names, as the Functions app names them.</summary>
    public static void RegisterTasks(DurableTaskRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        registry.AddOrchestrator<GraphOrchestrator>();
        foreach (var activity in ServiceRegistration.ActivityTypes) registry.AddActivity(activity);
    }

    /// <summary>The routes of the Functions app (Http/HttpFunctions.cs), one line each.</summary>
    public static void MapRoutes(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapPost(Routes.PathOf(Routes.GenerateGraph), (HttpRequest r, DurableTaskClient c, GraphApi api, CancellationToken t) => api.GenerateGraphAsync(r, c, t));
        app.MapGet(Routes.PathOf(Routes.Jobs), (HttpRequest r, DurableTaskClient c, GraphApi api, CancellationToken t) => api.ListAsync(r, c, t));
        app.MapGet(Routes.PathOf(Routes.Job), (HttpRequest r, string id, DurableTaskClient c, GraphApi api, CancellationToken t) => api.StatusAsync(r, c, id, t));
        app.MapGet(Routes.PathOf(Routes.JobResult), (HttpRequest r, string id, DurableTaskClient c, GraphApi api, CancellationToken t) => api.ResultAsync(r, c, id, t));
        app.MapGet(Routes.PathOf(Routes.JobAnnotations), (HttpRequest r, string id, DurableTaskClient c, GraphApi api, CancellationToken t) => api.AnnotationsAsync(r, c, id, t));
        app.MapPut(Routes.PathOf(Routes.JobAnnotations), (HttpRequest r, string id, DurableTaskClient c, GraphApi api, CancellationToken t) => api.SaveAnnotationsAsync(r, c, id, t));
        app.MapPost(Routes.PathOf(Routes.JobTerminate), (HttpRequest r, string id, DurableTaskClient c, GraphApi api, CancellationToken t) => api.TerminateAsync(r, c, id, t));
        app.MapDelete(Routes.PathOf(Routes.Job), (HttpRequest r, string id, DurableTaskClient c, GraphApi api, CancellationToken t) => api.PurgeAsync(r, c, id, t));
        app.MapPost(Routes.PathOf(Routes.JobEvent), (HttpRequest r, string id, string eventName, DurableTaskClient c, GraphApi api, CancellationToken t) => api.RaiseEventAsync(r, c, id, eventName, t));
        app.MapPost(Routes.PathOf(Routes.Steer), (HttpRequest r, ModelApi api, CancellationToken t) => api.SteerAsync(r, t));
        app.MapPost(Routes.PathOf(Routes.ForwardPass), (HttpRequest r, ModelApi api, CancellationToken t) => api.ForwardPassAsync(r, t));
        app.MapPost(Routes.PathOf(Routes.ParseChatPrompt), (HttpRequest r, ModelApi api, CancellationToken t) => api.ParseChatPromptAsync(r, t));
        app.MapGet(Routes.PathOf(Routes.CheckBusy), (ModelApi api) => api.CheckBusy());
        app.MapGet(Routes.PathOf(Routes.Feature), (HttpRequest r, string layer, string index, ModelApi api) => api.FeatureAsync(r, layer, index));
        app.MapPost(Routes.PathOf(Routes.FeatureDensities), (HttpRequest r, ModelApi api, CancellationToken t) => api.FeatureDensitiesAsync(r, t));
        app.MapGet(Routes.PathOf(Routes.OpenApi), () => DocsApi.OpenApi());
        app.MapGet(Routes.PathOf(Routes.Docs), () => DocsApi.Docs());
        app.MapGet(Routes.PathOf(Routes.ViewerJobs), (HttpRequest r, ViewerApi viewer) => viewer.Page(r, ViewerApi.JobsPage));
        app.MapGet(Routes.PathOf(Routes.ViewerGraph), (HttpRequest r, ViewerApi viewer) => viewer.Page(r, ViewerApi.GraphPage));
        app.MapGet(Routes.PathOf(Routes.ViewerSettings), (HttpRequest r, ViewerApi viewer) => viewer.SettingsAsync(r));
        app.MapGet(Routes.PathOf(Routes.ViewerAsset), (HttpRequest r, string file, ViewerApi viewer) => viewer.Asset(r, file));
        // Locally "/" is free (in Azure the Functions host answers it), so it leads to the jobs page.
        app.MapGet("/", () => Results.Redirect(Routes.PathOf(Routes.ViewerJobs)));
    }

    /// <summary>A loopback port free right now (the sidecar's; tests use it for their own servers).</summary>
    public static int FreeLoopbackPort()
    {
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        return ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>The "Values" of local.settings.json (or the committed example) found above the app folder.</summary>
    private static Dictionary<string, string?> LocalSettingsFile()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var name in new[] { "local.settings.json", "local.settings.example.json" })
            {
                string path = Path.Combine(dir.FullName, name);
                if (!File.Exists(path)) continue;
                using var json = JsonDocument.Parse(File.ReadAllText(path));
                return json.RootElement.GetProperty("Values").EnumerateObject()
                    .ToDictionary(p => p.Name.Replace("__", ":", StringComparison.Ordinal), p => (string?)p.Value.GetString());
            }
        }
        return [];
    }
}
