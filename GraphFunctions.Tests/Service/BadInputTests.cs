namespace GraphFunctions.Tests.Service;

using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Attribution.Requests;
using GraphFunctions.Api;
using GraphFunctions.Tests.Support;

/// <summary>
/// A corpus of bad requests: every one answered 4xx with a message naming the problem, never a
/// 5xx, and the service keeps serving afterwards.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class BadInputTests(BadInputTests.Fixture fixture) : IClassFixture<BadInputTests.Fixture>
{
    /// <summary>One service for every row, with a small token limit.</summary>
    public sealed class Fixture : LocalServiceFixture
    {
        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["TOKEN_LIMIT"] = "16" };
    }

    private const string M = "graphfunctions/tiny-gemma-2";
    private const string Feature = """{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": 1, "ablate": true}""";
    private readonly LocalService service = fixture.Service;

    private static string Graph(string fields) => $$"""{"prompt": "1 2 ", "model_id": "{{M}}"{{fields}}}""";

    private static string Steer(string fields, string features = Feature) => $$"""{"model_id": "{{M}}", "prompt": "Hello there", "features": [{{features}}]{{fields}}}""";

    /// <summary>(route, body, secret header: "ok" / "none" / "wrong", expected status, fragment the message must contain).</summary>
    public static TheoryData<string, string, string, int, string> Corpus => new()
    {
        // The secret
        { "/generate-graph", Graph(""), "none", 400, "x-secret-key header missing" },
        { "/generate-graph", Graph(""), "wrong", 403, "x-secret-key" },
        { "/steer", Steer(""), "none", 400, "x-secret-key header missing" },
        { "/forward-pass", """{"prompt": "x"}""", "wrong", 403, "x-secret-key" },
        { "GET /jobs/anything", "", "none", 400, "x-secret-key header missing" },
        // Bodies that are not JSON objects
        { "/generate-graph", "", "ok", 400, "request body is empty" },
        { "/generate-graph", "{\"prompt\": ", "ok", 400, "not valid JSON" },
        { "/generate-graph", "[1, 2]", "ok", 400, "must be a JSON object" },
        { "/generate-graph", "\"just a string\"", "ok", 400, "must be a JSON object" },
        { "/steer", "{'single': 'quotes'}", "ok", 400, "not valid JSON" },
        { "/forward-pass", "null", "ok", 400, "must be a JSON object" },
        // Missing and wrongly typed fields
        { "/generate-graph", $$"""{"model_id": "{{M}}"}""", "ok", 400, "prompt is required" },
        { "/generate-graph", """{"prompt": "1 2 "}""", "ok", 400, "model_id is required" },
        { "/generate-graph", $$"""{"prompt": 12, "model_id": "{{M}}"}""", "ok", 400, "prompt must be a string" },
        { "/generate-graph", Graph(""", "batch_size": "48" """), "ok", 400, "batch_size must be an integer" },
        { "/generate-graph", Graph(""", "max_n_logits": 2.5"""), "ok", 400, "max_n_logits must be an integer" },
        { "/generate-graph", Graph(""", "node_threshold": "high" """), "ok", 400, "node_threshold must be a finite number" },
        { "/generate-graph", Graph(""", "compress": "yes" """), "ok", 400, "compress must be true or false" },
        { "/generate-graph", Graph(""", "slug_identifier": 42"""), "ok", 400, "slug_identifier must be a string" },
        { "/steer", $$"""{"model_id": "{{M}}", "prompt": "Hi"}""", "ok", 400, "features is required" },
        { "/steer", Steer("", "\"not an object\""), "ok", 400, "features[0] must be an object" },
        { "/steer", $$$"""{"model_id": "{{{M}}}", "prompt": "Hi", "features": {"layer": 0}}""", "ok", 400, "features must be an array" },
        { "/steer", Steer("", """{"index": 1, "token_active_position": 1, "steer_position": 1, "ablate": true}"""), "ok", 400, "features[0].layer is required" },
        // Out-of-range values beyond the table's (OutOfRange below covers each bounded field)
        { "/generate-graph", Graph(""", "batch_size": -5"""), "ok", 400, "batch_size must be between 1" },
        { "/generate-graph", Graph(""", "edge_threshold": 1e400"""), "ok", 400, "edge_threshold must be a finite number" },
        { "/steer", Steer(""", "freq_penalty": 1e999"""), "ok", 400, "freq_penalty must be a finite number" },
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": 1, "delta": 1e308}"""), "ok", 400, "logits are not finite" },
        { "/steer", Steer("", string.Join(", ", Enumerable.Repeat(Feature, RequestSchema.Features.MaxItems + 1))), "ok", 400, $"features lists {RequestSchema.Features.MaxItems + 1} items, at most {RequestSchema.Features.MaxItems}" },
        // Model, prompt and token limit
        { "/generate-graph", """{"prompt": "1 2 ", "model_id": "google/gemma-2-2b"}""", "ok", 400, "model_id 'google/gemma-2-2b' is not served here: this server runs 'graphfunctions/tiny-gemma-2'" },
        { "/steer", Steer("").Replace(M, "Qwen/Qwen3-4B", StringComparison.Ordinal), "ok", 400, "this server runs" },
        { "/generate-graph", $$"""{"prompt": "", "model_id": "{{M}}"}""", "ok", 400, "prompt must not be empty" },
        { "/generate-graph", $$"""{"prompt": "{{new string('a', 25_000)}}", "model_id": "{{M}}"}""", "ok", 400, "prompt is too long" },
        { "/generate-graph", $$"""{"prompt": "one two three four five six seven eight nine ten eleven twelve", "model_id": "{{M}}"}""", "ok", 400, "Prompt exceeds token limit (" },
        { "/generate-graph", $$"""{"prompt": "\ud800 lone surrogate", "model_id": "{{M}}"}""", "ok", 400, "unpaired UTF-16 surrogate" },
        { "/generate-graph", $$"""{"messages": [{"role": "user", "content": "hi"}], "model_id": "{{M}}"}""", "ok", 400, "this model has no chat template" },
        { "/forward-pass", """{"messages": [{"content": "hi"}]}""", "ok", 400, "messages[0].role is required" },
        { "/forward-pass", """{"messages": "hi"}""", "ok", 400, "messages must be an array" },
        { "/parse-chat-prompt", "{}", "ok", 400, "prompt is required" },
        // Synchronous routes have their own, larger limit (TOKEN_LIMIT bounds graphs only).
        { "/forward-pass", $$"""{"prompt": "{{string.Concat(Enumerable.Repeat("🙂", ApiRequests.SynchronousTokenLimit + 1))}}"}""", "ok", 400, "Prompt exceeds token limit" },
        // Slugs and delivery targets
        { "/generate-graph", Graph(""", "slug_identifier": "../../etc/passwd" """), "ok", 400, "slug_identifier may only use" },
        { "/generate-graph", Graph(""", "slug_identifier": "has space" """), "ok", 400, "slug_identifier may only use" },
        { "/generate-graph", Graph(""", "slug_identifier": "abc\n" """), "ok", 400, "slug_identifier may only use" },
        { "/generate-graph", Graph(""", "slug_identifier": ".hidden" """), "ok", 400, "slug_identifier may only use" },
        { "/generate-graph", Graph(""", "signed_url": "https://evil.example.com/bucket/x?sig=1" """), "ok", 400, "signed_url host 'evil.example.com' is not allowed" },
        { "/generate-graph", Graph(""", "signed_url": "not a url" """), "ok", 400, "signed_url is not a valid absolute URL" },
        { "/generate-graph", Graph(""", "signed_url": "ftp://127.0.0.1/x" """), "ok", 400, "signed_url must use https" },
        { "/generate-graph", Graph(""", "signed_url": "http://127.0.0.1:4568/graphs/x", "blob": true"""), "ok", 400, "blob and signed_url cannot both be set" },
        // Attribution targets
        { "/generate-graph", Graph(""", "attribution_targets": []"""), "ok", 400, "attribution_targets is empty: leave it out" },
        { "/generate-graph", Graph(""", "attribution_targets": "x" """), "ok", 400, "attribution_targets must be an array" },
        { "/generate-graph", Graph(""", "attribution_targets": [{"token": "1 2 3 4"}]"""), "ok", 400, "attribution_targets[0].token \"1 2 3 4\" is " },
        { "/generate-graph", Graph(""", "attribution_targets": [{"token_id": 3}, {"token_id": 99999999}]"""), "ok", 400, "attribution_targets[1].token_id 99999999 is not in the vocabulary" },
        { "/generate-graph", Graph(""", "attribution_targets": [{"token_id": -1}]"""), "ok", 400, "attribution_targets[0].token_id must be between 0 and" },
        { "/generate-graph", Graph(""", "attribution_targets": [{"token": "1", "token_id": 3}]"""), "ok", 400, "attribution_targets[0] gives both token and token_id" },
        { "/generate-graph", Graph(""", "attribution_targets": [{"minus_id": 3}]"""), "ok", 400, "attribution_targets[0] needs token (a token as text) or token_id" },
        { "/generate-graph", Graph(""", "attribution_targets": [{"token_id": 3, "minus_id": 3}]"""), "ok", 400, "attribution_targets[0] subtracts its token from itself" },
        { "/generate-graph", Graph($$""", "attribution_targets": [{{string.Join(", ", Enumerable.Repeat("""{"token_id": 3}""", 65))}}]"""), "ok", 400, "attribution_targets lists 65 items, at most 64" },
        // Steering rules (docs/api.md, /steer)
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": 1, "ablate": true, "delta": 3}"""), "ok", 400, "ablate and delta cannot both be set" },
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": 1}"""), "ok", 400, "set either ablate or delta" },
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": 1, "steer_generated_tokens": true, "delta": 1}"""), "ok", 400, "steer_position and steer_generated_tokens cannot both be set" },
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 1, "delta": 1}"""), "ok", 400, "set either steer_position or steer_generated_tokens" },
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": 40, "ablate": true}"""), "ok", 400, "steer_position 40 is outside the prompt's positions" },
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 1, "steer_position": -1, "ablate": true}"""), "ok", 400, "steer_position -1 is outside" },
        { "/steer", Steer("", """{"layer": 9, "index": 1, "token_active_position": 1, "steer_position": 1, "ablate": true}"""), "ok", 400, "layer 9 is outside [0, 4)" },
        { "/steer", Steer("", """{"layer": 0, "index": 99999, "token_active_position": 1, "steer_position": 1, "ablate": true}"""), "ok", 400, "index 99999 is outside [0, 512)" },
        { "/steer", Steer("", """{"layer": 0, "index": 1, "token_active_position": 77, "steer_position": 1, "ablate": true}"""), "ok", 400, "token_active_position 77 is outside" },
        // Unknown jobs
        { "GET /jobs/no-such-job", "", "ok", 404, "no graph job 'no-such-job'" },
        { "GET /jobs/no-such-job/result", "", "ok", 404, "no graph job 'no-such-job'" },
        { "POST /jobs/no-such-job/terminate", "", "ok", 404, "no graph job" },
        { "DELETE /jobs/no-such-job", "", "ok", 404, "no graph job" },
        // Feature dashboards (the tiny random model's set has none)
        { "GET /features/0/1", "", "none", 400, "x-secret-key header missing" },
        { "GET /features/x/1", "", "ok", 400, "layer and index must be non-negative integers" },
        { "GET /features/0/-1", "", "ok", 400, "layer and index must be non-negative integers" },
        { "GET /features/9/1", "", "ok", 404, "there is no L9 #1" },
        { "GET /features/0/1", "", "ok", 404, "has no feature dashboards" },
        { "/features/densities", """{"features": [[0, 1]]}""", "none", 400, "x-secret-key header missing" },
        { "/features/densities", "{}", "ok", 400, "features must be a list of [layer, index] pairs" },
        { "/features/densities", """{"features": [[0, 1], [0]]}""", "ok", 400, "features[1] must be [layer, index], two non-negative integers" },
        { "/features/densities", """{"features": [[0, -1]]}""", "ok", 400, "features[0] must be [layer, index]" },
        { "/features/densities", $$"""{"features": [{{string.Join(", ", Enumerable.Repeat("[0, 1]", FeatureRoute.MaxDensities + 1))}}]}""", "ok", 400, "features lists 20001 features, at most 20000" },
        { "/features/densities", """{"features": [[0, 1]]}""", "ok", 404, "has no feature dashboards" },
    };

    /// <summary>
    /// For every bounded number of every route in the request schema, one value just below its
    /// minimum and one just above its maximum: the validator enforces exactly the table's ranges.
    /// </summary>
    public static TheoryData<string, string, string, int, string> OutOfRange
    {
        get
        {
            var rows = new TheoryData<string, string, string, int, string>();
            var routes = new (string Route, IReadOnlyList<RequestField> Fields, Func<string, string> Body)[]
            {
                ("/generate-graph", RequestSchema.GenerateGraph, extra => Graph(extra)),
                ("/steer", RequestSchema.Steer, extra => Steer(extra)),
                ("/forward-pass", RequestSchema.ForwardPass, extra => $$"""{"prompt": "1 2 "{{extra}}}"""),
                ("/steer", RequestSchema.Features.Items, extra => Steer("", Feature.Replace("}", extra + "}", StringComparison.Ordinal))),
            };
            foreach (var (route, fields, body) in routes)
            {
                foreach (var bounded in fields)
                {
                    foreach (string value in OutsideValues(bounded))
                    {
                        // A feature's own field replaces the sample feature's value (JSON keeps the last duplicate key).
                        rows.Add(route, body($", \"{bounded.Name}\": {value}"), "ok", 400, $"{bounded.Name} must be between");
                    }
                }
            }
            return rows;
        }
    }

    private static IEnumerable<string> OutsideValues(RequestField field) => field switch
    {
        // Sides at the int range are the JSON reader's limits, not the table's: no row for them.
        IntegerField i => new[] { (i.Minimum - 1, i.Minimum > int.MinValue), (i.Maximum + 1, i.Maximum < int.MaxValue) }
            .Where(v => v.Item2).Select(v => v.Item1.ToString(CultureInfo.InvariantCulture)),
        NumberField n => new[] { n.Minimum - 0.001, n.Maximum + 0.001 }.Where(double.IsFinite).Select(v => v.ToString("R", CultureInfo.InvariantCulture)),
        _ => [],
    };

    [Fact]
    public void Every_bounded_field_has_out_of_range_rows()
    {
        Assert.True(OutOfRange.Count >= 25, $"{OutOfRange.Count} rows");
        foreach (var name in new[] { "top_k", "n_tokens", "temperature", "batch_size", "max_feature_nodes", "wait_seconds", "token_active_position", "node_threshold" })
            Assert.Contains(OutOfRange, row => ((string)row[1]).Contains($"\"{name}\"", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    [MemberData(nameof(OutOfRange))]
    public async Task Bad_input_is_a_4xx_naming_the_problem(string route, string body, string secret, int status, string fragment)
    {
        var (method, path) = route.Contains(' ', StringComparison.Ordinal) ? (new HttpMethod(route.Split(' ')[0]), route.Split(' ')[1]) : (HttpMethod.Post, route);
        using var client = service.Anonymous();
        using var request = new HttpRequestMessage(method, path);
        if (method != HttpMethod.Get && method != HttpMethod.Delete) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        if (secret != "none") request.Headers.Add("x-secret-key", secret == "ok" ? LocalService.Secret : "wrong-secret");

        using var response = await client.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal(status, (int)response.StatusCode);
        string message = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString()!;
        Assert.Contains(fragment, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_corpus_is_large_and_the_service_keeps_serving_after_it()
    {
        Assert.True(Corpus.Count >= 40, $"the corpus has {Corpus.Count} requests");
        foreach (var row in Corpus)
        {
            string route = (string)row[0];
            if (route.Contains(' ', StringComparison.Ordinal) || (string)row[2] != "ok") continue;
            using var response = await service.Http.PostAsync(route, LocalService.Json((string)row[1]));
            Assert.InRange((int)response.StatusCode, 400, 499);
        }
        using var oversized = await service.Http.PostAsync("/steer", LocalService.Json(new string(' ', 2 << 20)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, oversized.StatusCode);

        using var healthy = await service.Http.PostAsync("/forward-pass", LocalService.Json("""{"prompt": "1 2 "}"""));
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
    }
}
