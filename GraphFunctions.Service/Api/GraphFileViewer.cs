namespace GraphFunctions.Api;

using Attribution.Transcoders;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

/// <summary>
/// The viewer over graph files, without a model or a task hub (<c>graphfunctions view</c>, as
/// circuit-tracer's <c>serve</c>): the same pages, with <see cref="GraphFileLibrary"/> answering the
/// job routes they read, and a features folder (circuit-tracer's local format) answering the
/// feature panel. It binds loopback only. Everything that needs a model answers 404 saying so.
/// </summary>
public static class GraphFileViewer
{
    public const string ReadyAnnouncement = "GraphFunctions viewer ready: open ";

    /// <param name="features">A folder of feature dashboards in circuit-tracer's local format, or null.</param>
    public static WebApplication Create(GraphFileLibrary library, int port, string? features = null)
    {
        ArgumentNullException.ThrowIfNull(library);
        var dashboards = features is null ? FeatureDashboards.None : FeatureDashboards.Load(features);
        if (features is not null && !dashboards.Available)
            throw new ArgumentException($"{features} holds no feature dashboards: it needs circuit-tracer's {FeatureDashboards.IndexFileName} and its .bin files");
        string featureSource = features ?? "graphfunctions view (started without --features)";

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning).AddFilter("Microsoft.Hosting", LogLevel.Warning);
        var app = builder.Build();

        var viewer = new ViewerApi(servePublicly: false, () => Task.FromResult(new Dictionary<string, object?>
        {
            ["model_id"] = null,
            ["secret_required"] = false,
            ["feature_dashboards"] = dashboards.Available,
            ["graph_files"] = true,
        }));
        app.MapGet(Routes.PathOf(Routes.ViewerJobs), (HttpRequest r) => viewer.Page(r, ViewerApi.JobsPage));
        app.MapGet(Routes.PathOf(Routes.ViewerGraph), (HttpRequest r) => viewer.Page(r, ViewerApi.GraphPage));
        app.MapGet(Routes.PathOf(Routes.ViewerSettings), (HttpRequest r) => viewer.SettingsAsync(r));
        app.MapGet(Routes.PathOf(Routes.ViewerAsset), (HttpRequest r, string file) => viewer.Asset(r, file));
        app.MapGet(Routes.PathOf(Routes.Jobs), library.List);
        app.MapGet(Routes.PathOf(Routes.JobResult), (string id) => library.Result(id));
        app.MapGet(Routes.PathOf(Routes.JobAnnotations), (string id) => library.Annotations(id));
        app.MapPut(Routes.PathOf(Routes.JobAnnotations), (HttpRequest r, string id, CancellationToken t) => library.SaveAnnotationsAsync(r, id, t));
        app.MapGet(Routes.PathOf(Routes.Feature), (string layer, string index) =>
            FeatureRoute.ParseAddress(layer, index, out int l, out long i) ?? FeatureRoute.Answer(dashboards, featureSource, l, i, label: null));
        app.MapPost(Routes.PathOf(Routes.FeatureDensities), (HttpRequest r, CancellationToken t) => FeatureRoute.DensitiesAsync(r, dashboards, featureSource, t));
        app.MapGet("/", () => Results.Redirect(Routes.PathOf(Routes.ViewerJobs)));
        app.MapFallback((HttpRequest r) => ApiResults.Error(StatusCodes.Status404NotFound,
            $"{r.Method} {r.Path} is not served by graphfunctions view, which shows graph files only: making graphs and steering need the local host with a model (scripts/run.sh)"));

        app.Lifetime.ApplicationStarted.Register(() =>
            Console.Out.WriteLine($"{ReadyAnnouncement}{new Uri(app.Urls.First()).GetLeftPart(UriPartial.Authority)}{Routes.PathOf(Routes.ViewerJobs)} (Ctrl+C to stop)"));
        return app;
    }
}
