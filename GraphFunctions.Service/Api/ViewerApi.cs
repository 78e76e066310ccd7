namespace GraphFunctions.Api;

using System.Security.Cryptography;
using System.Text;
using Attribution.Loading;
using GraphFunctions.Configuration;
using GraphFunctions.Workers;
using Microsoft.AspNetCore.Http;

/// <summary>
/// The graph viewer (docs/viewer.md): GET /viewer (jobs), GET /graphs/{slug} (one graph) and their
/// scripts under /viewer/assets/. The pages hold no data and no secret; their scripts call the API
/// with the x-secret-key header the user types in. They are served to loopback clients only,
/// unless <paramref name="servePublicly"/> (VIEWER_PUBLIC). The same pages serve the service's jobs
/// and, under <c>graphfunctions view</c>, graph files (<see cref="GraphFileLibrary"/>); only what
/// <paramref name="settings"/> tells them differs.
/// </summary>
/// <param name="settings">The answer of GET /viewer/settings.</param>
public sealed class ViewerApi(bool servePublicly, Func<Task<Dictionary<string, object?>>> settings)
{
    public const string JobsPage = "jobs.html";
    public const string GraphPage = "graph.html";

    private static readonly Lazy<ViewerAssets> Assets = new(() => ViewerAssets.Load(Path.Combine(AppContext.BaseDirectory, "viewer")));

    public IResult Page(HttpRequest request, string name) => Refusal(request) ?? Serve(request, name, immutable: false);

    /// <summary>A script or style: immutable when asked for with the current version (the pages always do).</summary>
    public IResult Asset(HttpRequest request, string file) =>
        Refusal(request) ?? Serve(request, file, immutable: request.Query["v"] == Assets.Value.Version);

    /// <summary>What a page needs before its first API call.</summary>
    public async Task<IResult> SettingsAsync(HttpRequest request) =>
        Refusal(request) ?? Results.Json(await settings(), ApiResults.Json);

    /// <summary>
    /// The service's settings: the served model, the token limit, whether to ask for the secret,
    /// whether GET /features has dashboards to serve and, for the demo model only, example prompts
    /// (absent otherwise).
    /// </summary>
    public static async Task<Dictionary<string, object?>> ServiceSettingsAsync(ServiceOptions options, ModelHost models)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(models);
        var settings = new Dictionary<string, object?>
        {
            ["model_id"] = models.ModelId,
            ["token_limit"] = options.TokenLimit,
            ["secret_required"] = !string.IsNullOrEmpty(options.Secret),
            ["feature_dashboards"] = (await models.GetAsync()).Dashboards.Available,
        };
        if (BundledModel.ExamplePrompts(models.ModelId) is { Count: > 0 } examples) settings["example_prompts"] = examples;
        return settings;
    }

    private IResult? Refusal(HttpRequest request)
    {
        if (servePublicly || request.HttpContext.Connection.RemoteIpAddress is { } ip && System.Net.IPAddress.IsLoopback(ip)) return null;
        return ApiResults.Error(StatusCodes.Status403Forbidden,
            $"the viewer is served to loopback clients only; set {SettingNames.ViewerPublic}=true to serve it to others (its pages then ask for the secret)");
    }

    private static IResult Serve(HttpRequest request, string name, bool immutable)
    {
        var assets = Assets.Value;
        if (assets.Missing is { } missing) return ApiResults.Error(StatusCodes.Status503ServiceUnavailable, missing);
        if (!assets.Files.TryGetValue(name, out var asset)) return ApiResults.Error(StatusCodes.Status404NotFound, $"no viewer file '{name}'");
        return new AssetResult(asset, immutable, request.Headers.IfNoneMatch.Contains(asset.ETag));
    }

    private sealed class AssetResult(ViewerAsset asset, bool immutable, bool notModified) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            var headers = httpContext.Response.Headers;
            // Pages revalidate every time (their ETag makes that a 304); versioned scripts never do.
            headers.CacheControl = immutable ? "public, max-age=31536000, immutable" : "no-cache";
            headers.ETag = asset.ETag;
            headers.XContentTypeOptions = "nosniff";
            headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";
            if (notModified)
            {
                httpContext.Response.StatusCode = StatusCodes.Status304NotModified;
                return Task.CompletedTask;
            }
            httpContext.Response.ContentType = asset.ContentType;
            return httpContext.Response.Body.WriteAsync(asset.Body).AsTask();
        }
    }
}

/// <summary>One file of the viewer, read once.</summary>
public sealed record ViewerAsset(byte[] Body, string ContentType, string ETag);

/// <summary>
/// The viewer's files, copied beside the app by the build (viewer/pages, the graph schema, and d3
/// and the schema validator's modules from their npm packages in viewer/node_modules). Pages name their scripts with <c>?v={{version}}</c>, the hash
/// of every file, so a browser may cache scripts forever and still never runs a stale one. The
/// validator's modules import one another by relative paths, without the version: they revalidate.
/// </summary>
public sealed class ViewerAssets
{
    private const string VersionPlaceholder = "{{version}}";

    /// <summary>The third-party script the pages load, from its npm package (installed by the scripts).</summary>
    public const string D3 = "d3.min.js";

    /// <summary>
    /// The entry module of @cfworker/json-schema (npm), which the graph page imports to validate an
    /// opened file against <see cref="GraphSchema"/>: it interprets the schema rather than compiling
    /// it to code, so it runs under the pages' Content-Security-Policy (no eval).
    /// </summary>
    public const string SchemaValidator = "validator.js";

    /// <summary>Neuronpedia's graph schema (docs/schemas), copied beside the pages.</summary>
    public const string GraphSchema = "neuronpedia-graph-schema.json";

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".json"] = "application/json; charset=utf-8",
    };

    private ViewerAssets(IReadOnlyDictionary<string, ViewerAsset> files, string version, string? missing)
    {
        Files = files;
        Version = version;
        Missing = missing;
    }

    public IReadOnlyDictionary<string, ViewerAsset> Files { get; }

    public string Version { get; }

    /// <summary>Why the viewer cannot be served (a file the build did not copy), or null.</summary>
    public string? Missing { get; }

    public static ViewerAssets Load(string folder)
    {
        if (new[] { D3, SchemaValidator, GraphSchema, ViewerApi.JobsPage }.Any(file => !File.Exists(Path.Combine(folder, file))))
            return new ViewerAssets(new Dictionary<string, ViewerAsset>(), "", $"the viewer's files are not installed in {folder}: run scripts/run.sh (it installs the viewer's scripts from npm into viewer/node_modules and builds)");
        var raw = Directory.EnumerateFiles(folder).Where(f => ContentTypes.ContainsKey(Path.GetExtension(f)))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes, StringComparer.Ordinal);
        string version = Hash(raw.OrderBy(f => f.Key, StringComparer.Ordinal).SelectMany(f => f.Value).ToArray())[..12];
        var files = new Dictionary<string, ViewerAsset>(StringComparer.Ordinal);
        foreach (var (name, bytes) in raw)
        {
            byte[] body = Path.GetExtension(name) == ".html"
                ? Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace(VersionPlaceholder, version, StringComparison.Ordinal))
                : bytes;
            files[name] = new ViewerAsset(body, ContentTypes[Path.GetExtension(name)], $"\"{Hash(body)[..16]}\"");
        }
        return new ViewerAssets(files, version, null);
    }

    private static string Hash(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
