namespace GraphFunctions.Tests.Service;

using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Attribution.Pipeline;
using Attribution.Requests;
using Attribution.Steering;
using Attribution.Tracing;
using GraphFunctions.Api;
using GraphFunctions.Tests.Support;

/// <summary>
/// The request table is the single source of the fields' defaults and ranges: the engine's
/// records, the served OpenAPI document and the CLI's options must say what it says. (The
/// validator's ranges are checked field by field in <see cref="BadInputTests"/>.OutOfRange.)
/// </summary>
public sealed partial class RequestSchemaTests
{
    [Fact]
    public void Engine_defaults_are_the_tables()
    {
        var request = new GraphRequest { Prompt = "p", Slug = "s" };
        Assert.Equal(RequestSchema.BatchSize.Default, request.BatchSize);
        Assert.Equal(RequestSchema.MaxNLogits.Default, request.MaxNLogits);
        Assert.Equal(RequestSchema.DesiredLogitProb.Default, request.DesiredLogitProb);
        Assert.Equal(RequestSchema.NodeThreshold.Default, request.NodeThreshold);
        Assert.Equal(RequestSchema.EdgeThreshold.Default, request.EdgeThreshold);
        Assert.Equal(RequestSchema.MaxFeatureNodes.Default, request.MaxFeatureNodes);
        Assert.Equal(RequestSchema.UpdateInterval.Default, request.UpdateInterval);
        Assert.Equal(request.Attribution, new AttributionSettings());

        var generation = new GenerationOptions();
        Assert.Equal(RequestSchema.NTokens.Default, generation.NTokens);
        Assert.Equal(RequestSchema.TopK.Default, generation.TopK);
        Assert.Equal(RequestSchema.Temperature.Default, generation.Temperature);
        Assert.Equal(RequestSchema.FreqPenalty.Default, generation.FreqPenalty);
        Assert.Equal(RequestSchema.FreezeAttention.Default, generation.FreezeAttention);
    }

    [Fact]
    public void The_served_openapi_request_bodies_are_the_table()
    {
        using var document = JsonDocument.Parse(DocsApi.OpenApiBytes);
        var schemas = document.RootElement.GetProperty("components").GetProperty("schemas");
        foreach (var (name, fields) in DocsApi.RequestBodies)
        {
            var served = schemas.GetProperty(name);
            Assert.Equal(fields.Select(f => f.Name), served.GetProperty("properties").EnumerateObject().Select(p => p.Name));
            foreach (var field in fields)
            {
                var property = served.GetProperty("properties").GetProperty(field.Name);
                Assert.Equal(field.JsonType, property.GetProperty("type").GetString());
                Assert.Equal(field.Description, property.GetProperty("description").GetString());
                var (minimum, maximum, fallback) = Bounds(field);
                Assert.Equal(minimum, property.TryGetProperty("minimum", out var min) ? min.GetDouble() : null);
                Assert.Equal(maximum, property.TryGetProperty("maximum", out var max) ? max.GetDouble() : null);
                Assert.Equal(fallback, property.TryGetProperty("default", out var d) ? d.ToString() : null);
            }
            var required = served.TryGetProperty("required", out var list) ? list.EnumerateArray().Select(r => r.GetString()).ToList() : [];
            Assert.Equal(fields.Where(f => f.Required).Select(f => f.Name), required);
        }
        // The webapp's request shapes are what the document lists.
        Assert.Contains("user_id", schemas.GetProperty("GenerateGraphRequest").GetProperty("properties").EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void The_clis_graph_options_are_the_table()
    {
        var (exit, help) = CliProcess.Run("graph", "--help");
        Assert.Equal(0, exit);
        Assert.Contains($"default: the bundled demo model {Attribution.Loading.BundledModel.Id}", Regex.Replace(help, @"\s+", " "), StringComparison.Ordinal);   // however the help wraps
        foreach (var field in RequestSchema.GraphSettings)
        {
            var line = help.Split('\n').FirstOrDefault(l => l.TrimStart().StartsWith(field.OptionName + " ", StringComparison.Ordinal));
            Assert.True(line is not null, $"{field.OptionName} missing from `graph --help`:\n{help}");
            var (_, _, fallback) = Bounds(field);
            Assert.Equal(fallback, DefaultIn(line!));
        }
    }

    [Theory]
    [InlineData("--batch-size", "0")]
    [InlineData("--node-threshold", "1.5")]
    [InlineData("--update-interval", "0")]
    public void The_cli_refuses_what_the_table_refuses(string option, string value)
    {
        var (exit, output) = CliProcess.Run("graph", "--prompt", "x", "--out", Path.Combine(Path.GetTempPath(), "never-written.json"), option, value);
        Assert.NotEqual(0, exit);
        Assert.Contains($"{option} must be", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("generate-graph")]
    [InlineData("steer")]
    [InlineData("steer-feature")]
    [InlineData("forward-pass")]
    [InlineData("chat-message")]
    [InlineData("parse-chat-prompt")]
    [InlineData("attribution-target")]
    public void The_field_tables_of_docs_api_md_are_the_table(string section)
    {
        var fields = section switch
        {
            "generate-graph" => RequestSchema.GenerateGraph,
            "steer" => RequestSchema.Steer,
            "steer-feature" => RequestSchema.Features.Items,
            "chat-message" => RequestSchema.Messages.Items,
            "parse-chat-prompt" => RequestSchema.ParseChatPrompt,
            "attribution-target" => RequestSchema.AttributionTargets.Items,
            _ => RequestSchema.ForwardPass,
        };
        string document = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "docs", "api.md")).ReplaceLineEndings("\n");
        string start = $"<!-- fields:{section} -->\n", end = "<!-- end -->";
        int from = document.IndexOf(start, StringComparison.Ordinal);
        Assert.True(from >= 0, $"docs/api.md has no '{start.Trim()}' section");
        from += start.Length;
        string documented = document[from..document.IndexOf(end, from, StringComparison.Ordinal)];
        string expected = FieldTable(fields);
        Assert.True(expected == documented, $"docs/api.md's {section} table drifted from the request table; it should read:\n{expected}");
    }

    /// <summary>The Markdown table of a route's fields: name, type, default, range, meaning.</summary>
    private static string FieldTable(IEnumerable<RequestField> fields)
    {
        var table = new System.Text.StringBuilder("| field | type | default | range | meaning |\n|---|---|---|---|---|\n");
        foreach (var field in fields)
        {
            string fallback = field.Required ? "required" : field switch
            {
                IntegerField { Default: int d } => d.ToString(CultureInfo.InvariantCulture),
                NumberField { Default: double d } => d.ToString(CultureInfo.InvariantCulture),
                FlagField f => f.Default ? "true" : "false",
                _ => "—",
            };
            string range = field switch
            {
                IntegerField i => $"{i.Minimum} … {i.Maximum}",
                NumberField n => n.Bounded ? string.Create(CultureInfo.InvariantCulture, $"{n.Minimum} … {n.Maximum}") : "any finite",
                TextField t => $"≤ {t.MaxLength} characters",
                ObjectListField l => $"≤ {l.MaxItems} items",
                _ => "",
            };
            table.Append(CultureInfo.InvariantCulture, $"| `{field.Name}` | {field.JsonType} | {fallback} | {range} | {field.Description} |\n");
        }
        return table.ToString();
    }

    /// <summary>A field's (minimum, maximum, default) as the JSON document spells them.</summary>
    private static (double? Minimum, double? Maximum, string? Default) Bounds(RequestField field) => field switch
    {
        IntegerField i => (i.Minimum, i.Maximum, i.Default?.ToString(CultureInfo.InvariantCulture)),
        NumberField n => (double.IsFinite(n.Minimum) ? n.Minimum : null, double.IsFinite(n.Maximum) ? n.Maximum : null,
            n.Default is double d ? JsonValue.Create(d).ToJsonString() : null),
        FlagField f => (null, null, f.Default ? "True" : "False"),
        _ => (null, null, null),
    };

    private static string? DefaultIn(string helpLine) => DefaultPattern().Match(helpLine) is { Success: true } m ? m.Groups[1].Value : null;

    [GeneratedRegex(@"\[default: ([^\]]+)\]")]
    private static partial Regex DefaultPattern();
}
