namespace GraphFunctions.Api;

using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Requests;
using Microsoft.AspNetCore.Http;

/// <summary>GET /openapi.json (the API's description) and GET /docs (a page rendered from it, no CDN needed).</summary>
public static class DocsApi
{
    /// <summary>The request bodies, generated from the request table (the embedded document holds everything else).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<RequestField>> RequestBodies { get; } = new Dictionary<string, IReadOnlyList<RequestField>>
    {
        ["GenerateGraphRequest"] = RequestSchema.GenerateGraph,
        ["SteerRequest"] = RequestSchema.Steer,
        [RequestSchema.Features.ItemName] = RequestSchema.Features.Items,
        ["ForwardPassRequest"] = RequestSchema.ForwardPass,
        [RequestSchema.Messages.ItemName] = RequestSchema.Messages.Items,
        ["ParseChatPromptRequest"] = RequestSchema.ParseChatPrompt,
        [RequestSchema.AttributionTargets.ItemName] = RequestSchema.AttributionTargets.Items,
    };

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private static readonly Lazy<byte[]> Document = new(() =>
    {
        using var stream = typeof(DocsApi).Assembly.GetManifestResourceStream("GraphFunctions.openapi.json")
            ?? throw new InvalidOperationException("openapi.json is not embedded");
        var document = JsonNode.Parse(stream)!.AsObject();
        var schemas = document["components"]!["schemas"]!.AsObject();
        foreach (var (name, fields) in RequestBodies) schemas[name] = RequestJsonSchema.For(fields);
        return JsonSerializer.SerializeToUtf8Bytes(document, Indented);
    });

    private static readonly Lazy<string> Page = new(RenderPage);

    public static byte[] OpenApiBytes => Document.Value;

    public static IResult OpenApi() => Results.Bytes(Document.Value, "application/json; charset=utf-8");

    public static IResult Docs() => Results.Content(Page.Value, "text/html; charset=utf-8");

    private static string RenderPage()
    {
        using var json = JsonDocument.Parse(Document.Value);
        var root = json.RootElement;
        var html = new StringBuilder();
        string Encode(string? text) => WebUtility.HtmlEncode(text ?? "");
        html.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>GraphFunctions API</title>")
            .Append("<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}code{background:#eee;padding:0 .3em}")
            .Append(".route{border-top:1px solid #ccc;padding:.5rem 0}.verb{font-weight:bold;text-transform:uppercase}</style></head><body>")
            .Append("<h1>").Append(Encode(root.GetProperty("info").GetProperty("title").GetString())).Append("</h1>")
            .Append("<p>").Append(Encode(root.GetProperty("info").GetProperty("description").GetString())).Append("</p>")
            .Append("<p>Machine-readable: <a href=\"openapi.json\">openapi.json</a></p>");
        foreach (var path in root.GetProperty("paths").EnumerateObject())
        {
            foreach (var operation in path.Value.EnumerateObject())
            {
                html.Append("<div class=\"route\"><span class=\"verb\">").Append(Encode(operation.Name)).Append("</span> <code>")
                    .Append(Encode(path.Name)).Append("</code><p>").Append(Encode(operation.Value.GetProperty("summary").GetString())).Append("</p>");
                if (operation.Value.TryGetProperty("requestBody", out var body))
                {
                    var reference = body.GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString()!;
                    var schema = root.GetProperty("components").GetProperty("schemas").GetProperty(reference[(reference.LastIndexOf('/') + 1)..]);
                    html.Append("<ul>");
                    foreach (var field in schema.GetProperty("properties").EnumerateObject())
                    {
                        html.Append("<li><code>").Append(Encode(field.Name)).Append("</code> ")
                            .Append(Encode(field.Value.TryGetProperty("type", out var type) ? type.GetString() : "object"));
                        if (field.Value.TryGetProperty("default", out var fallback)) html.Append(" (default ").Append(Encode(fallback.ToString())).Append(')');
                        if (field.Value.TryGetProperty("description", out var description)) html.Append(": ").Append(Encode(description.GetString()));
                        html.Append("</li>");
                    }
                    html.Append("</ul>");
                }
                html.Append("</div>");
            }
        }
        return html.Append("</body></html>").ToString();
    }
}
