namespace GraphFunctions.Api;

using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text.Json;
using GraphFunctions.Storage;
using Microsoft.AspNetCore.Http;

/// <summary>
/// Graph files on disk served to the viewer as finished jobs (<c>graphfunctions view</c>, as
/// circuit-tracer's <c>serve</c>): each <c>*.json</c> or <c>*.json.gz</c> given, or found in a folder
/// given (looked at again on every listing, so graphs written later appear), is a job named by its
/// file name without the extension. A graph's annotations are saved beside it, in
/// <c>{name}.annotations.json</c>, written whole or not at all (<see cref="StagingFile"/>, then a rename).
/// </summary>
public sealed class GraphFileLibrary
{
    public const string AnnotationsSuffix = ".annotations.json";

    private readonly IReadOnlyList<string> files;
    private readonly IReadOnlyList<string> folders;

    /// <summary>What a listing needs of a file (its prompt, or why it is not a graph), kept while the file is unchanged.</summary>
    private readonly ConcurrentDictionary<string, (DateTime Written, long Length, string? Prompt, string? Problem)> summaries = new();

    private GraphFileLibrary(IReadOnlyList<string> files, IReadOnlyList<string> folders)
    {
        this.files = files;
        this.folders = folders;
    }

    /// <summary>The library of the given files and folders; an argument that is neither is named.</summary>
    public static GraphFileLibrary Open(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var files = new List<string>();
        var folders = new List<string>();
        foreach (string path in paths.Select(Path.GetFullPath))
        {
            if (Directory.Exists(path)) folders.Add(path);
            else if (File.Exists(path) && SlugOf(path) is not null) files.Add(path);
            else throw new ArgumentException($"{path} is neither a graph file (*.json, *.json.gz) nor a folder");
        }
        if (files.Count + folders.Count == 0) throw new ArgumentException("name at least one graph file or folder");
        return new GraphFileLibrary(files, folders);
    }

    /// <summary>
    /// The graphs by name: the files given, then each folder's graphs in name order. A name met
    /// again (the same file name in two folders) keeps its first file.
    /// </summary>
    public IReadOnlyDictionary<string, string> Graphs()
    {
        var graphs = new Dictionary<string, string>(StringComparer.Ordinal);
        var found = files.Concat(folders.SelectMany(folder => Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal)));
        foreach (string file in found)
            if (SlugOf(file) is { } slug) graphs.TryAdd(slug, file);
        return graphs;
    }

    /// <summary>GET /jobs: every graph as a completed job, with its prompt, or failed with why it cannot be read.</summary>
    public IResult List()
    {
        var graphs = Graphs();
        foreach (string gone in summaries.Keys.Except(graphs.Values)) summaries.TryRemove(gone, out _);
        var jobs = graphs.Select(graph =>
        {
            var (written, prompt, problem) = Summary(graph.Value);
            return new Dictionary<string, object?>
            {
                ["id"] = graph.Key,
                ["prompt"] = prompt,
                ["runtimeStatus"] = problem is null ? "Completed" : "Failed",
                ["failure"] = problem,
                ["createdTime"] = written,
                ["file"] = graph.Value,
            };
        }).ToList();
        return Results.Json(new { jobs }, ApiResults.Json);
    }

    /// <summary>GET /jobs/{name}/result: the graph file's JSON, unzipped when it is gzipped.</summary>
    public IResult Result(string name)
    {
        if (Find(name) is not { } file) return Missing(name);
        return ApiResults.Stream(async body =>
        {
            await using var stream = OpenGraph(file);
            await stream.CopyToAsync(body);
        });
    }

    /// <summary>GET /jobs/{name}/annotations: what was saved beside the graph (empty lists when nothing was).</summary>
    public IResult Annotations(string name)
    {
        if (Find(name) is not { } file) return Missing(name);
        string saved = AnnotationsOf(file);
        return File.Exists(saved) ? Results.File(saved, "application/json; charset=utf-8") : Results.Json(GraphAnnotations.Empty, ApiResults.Json);
    }

    /// <summary>PUT /jobs/{name}/annotations: replaces what is saved beside the graph; a file that cannot be written is a 409 naming it.</summary>
    public async Task<IResult> SaveAnnotationsAsync(HttpRequest request, string name, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Find(name) is not { } file) return Missing(name);
        var (fields, bodyRefusal) = await ApiRequests.ReadBodyAsync(request, cancellation);
        if (fields is null) return bodyRefusal!;
        if (GraphAnnotations.Parse(fields.Body, out string? problem) is not { } annotations) return ApiResults.BadRequest(problem!);
        try
        {
            // Written in full beside the graph, then renamed over the old annotations (the workspace's way).
            using var staging = StagingFile.In(Path.GetDirectoryName(file)!);
            await staging.FillAsync((stream, ct) => JsonSerializer.SerializeAsync(stream, annotations, ApiResults.Json, ct), cancellation);
            File.Move(staging.Path, AnnotationsOf(file), overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return ApiResults.Error(StatusCodes.Status409Conflict, $"the annotations of {name} cannot be saved beside {file}: {e.Message}");
        }
        return Results.Json(annotations, ApiResults.Json);
    }

    /// <summary>A file's graph name: its file name without .json or .json.gz; null for anything else (annotations, hidden files).</summary>
    public static string? SlugOf(string path)
    {
        string name = Path.GetFileName(path);
        if (name.StartsWith('.') || name.EndsWith(AnnotationsSuffix, StringComparison.Ordinal)) return null;
        foreach (string extension in new[] { ".json.gz", ".json" })
            if (name.EndsWith(extension, StringComparison.Ordinal) && name.Length > extension.Length) return name[..^extension.Length];
        return null;
    }

    private string? Find(string name) => Graphs().GetValueOrDefault(name);

    private IResult Missing(string name) =>
        ApiResults.Error(StatusCodes.Status404NotFound, $"no graph file named '{name}' is served (graphs: {string.Join(", ", Graphs().Keys.Take(20))})");

    private static string AnnotationsOf(string file) => Path.Combine(Path.GetDirectoryName(file)!, SlugOf(file)! + AnnotationsSuffix);

    private static Stream OpenGraph(string file)
    {
        var stream = File.OpenRead(file);
        return file.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(stream, CompressionMode.Decompress) : stream;
    }

    /// <summary>A file's prompt (metadata.prompt), read once per version of the file, or why it is not a graph.</summary>
    private (DateTime Written, string? Prompt, string? Problem) Summary(string file)
    {
        var info = new FileInfo(file);
        if (summaries.TryGetValue(file, out var known) && known.Written == info.LastWriteTimeUtc && known.Length == info.Length)
            return (known.Written, known.Prompt, known.Problem);
        string? prompt = null, problem = null;
        try
        {
            using var stream = OpenGraph(file);
            using var graph = JsonDocument.Parse(stream);
            if (graph.RootElement.ValueKind != JsonValueKind.Object || !graph.RootElement.TryGetProperty("nodes", out _))
                problem = "not a graph: the JSON has no nodes";
            else if (graph.RootElement.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
                && metadata.TryGetProperty("prompt", out var text) && text.ValueKind == JsonValueKind.String)
                prompt = text.GetString();
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidDataException)
        {
            problem = $"not readable as a graph: {e.Message}";
        }
        summaries[file] = (info.LastWriteTimeUtc, info.Length, prompt, problem);
        return (info.LastWriteTimeUtc, prompt, problem);
    }
}
