namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Amazon.S3;
using Amazon.S3.Model;
using Attribution.Graphs;
using Attribution.Loading;
using GraphFunctions.Api;
using GraphFunctions.Tests.Storage;
using GraphFunctions.Tests.Support;
using GraphFunctions.Workers;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The Neuronpedia webapp against the local host: its requests replayed with the bodies and
/// headers its code builds (lib/utils/graph.ts, lib/utils/steer.ts, the graph steer modal),
/// its follow-up downloads, and our answers judged by its own rules (<see cref="WebappRules"/>).
/// The service runs with its default settings: no wait parameter anywhere. Every check runs on the
/// tests' tiny model (<see cref="WebappConformanceTests"/>) and on the bundled default
/// (<see cref="DefaultModelWebappConformanceTests"/>), with the Neuronpedia graph server's own example
/// prompt "1 2 " there.
/// </summary>
public abstract class WebappConformance(LocalService service)
{
    /// <summary>The served model's Hugging Face id and its Neuronpedia id (the graph's scan).</summary>
    protected abstract string ModelId { get; }

    protected abstract string Scan { get; }

    /// <summary>The service's settings, for the checks that start a service of their own.</summary>
    protected abstract IDictionary<string, string?> Settings { get; }

    /// <summary>The prompts graphs are made of: counting, which every model here continues.</summary>
    protected abstract string CountingPrompt { get; }


    /// <summary>The body of graph.ts's generate call: these keys in this order, no compress, no wait.</summary>
    private string GenerateBody(string prompt, string slug, string? signedUrl, string userName) => new JsonObject
    {
        ["prompt"] = prompt,
        ["model_id"] = ModelId,
        ["batch_size"] = 48,
        ["max_n_logits"] = 10,
        ["desired_logit_prob"] = 0.95,
        ["node_threshold"] = 0.8,
        ["edge_threshold"] = 0.98,
        ["slug_identifier"] = slug,
        ["max_feature_nodes"] = 5000,
        ["signed_url"] = signedUrl,
        ["user_id"] = userName,
    }.ToJsonString();

    /// <summary>POST as the webapp's fetch does: JSON body, the secret header and an empty Authorization header.</summary>
    private static HttpRequestMessage WebappPost(string path, string body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = LocalService.Json(body) };
        request.Headers.TryAddWithoutValidation("Authorization", "");
        return request;
    }

    [Fact]
    public async Task A_graph_requested_the_webapps_way_is_readable_at_the_unsigned_url_when_the_200_arrives()
    {
        using var s3 = await Emulators.S3rverAsync();
        string key = $"webapp/{Guid.NewGuid():N}.json";
        string signed = await s3.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = Emulators.S3Bucket, Key = key, Verb = HttpVerb.PUT, Expires = DateTime.UtcNow.AddMinutes(10), Protocol = Protocol.HTTP,
        });
        const string slug = "-counting_one-two-9f3a";   // the webapp's slugs may start with '-' or '_'
        using var request = WebappPost("/generate-graph", GenerateBody(CountingPrompt, slug, signed, "Ada Lovelace"));
        using var response = await service.Http.SendAsync(request);

        // The webapp checks json.error first, then response.ok, and downloads at once.
        using var answer = await LocalService.JsonOf(response);
        Assert.False(answer.RootElement.TryGetProperty("error", out _), answer.RootElement.ToString());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"Graph uploaded successfully to url: {signed}", answer.RootElement.GetProperty("success").GetString());

        using var anonymous = new HttpClient();
        using var download = await anonymous.GetAsync(signed.Split('?')[0]);
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        using var graph = await LocalService.JsonOf(download);
        WebappRules.AssertGraphReadable(graph);
        var metadata = graph.RootElement.GetProperty("metadata");
        Assert.Equal(Scan, metadata.GetProperty("scan").GetString());     // the webapp files the graph under scan + slug
        Assert.Equal(slug, metadata.GetProperty("slug").GetString());
        Assert.Equal("Ada Lovelace", metadata.GetProperty("info").GetProperty("creator_name").GetString());
    }

    [Fact]
    public async Task A_job_longer_than_the_wait_answers_202_with_location_then_finishes()
    {
        await using var impatient = await LocalService.StartAsync(settings: new Dictionary<string, string?>(Settings) { ["GRAPH_WAIT_SECONDS"] = "1" });
        var gpu = impatient.Services.GetRequiredService<GpuGate>();
        HttpResponseMessage started;
        using (await gpu.EnterAsync())   // the job cannot progress while the accelerator is held
        {
            using var request = WebappPost("/generate-graph", GenerateBody(CountingPrompt, "webapp-slow", null, "Anonymous (CT)"));
            started = await impatient.Http.SendAsync(request);
        }
        using (started)
        {
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            Assert.NotNull(started.Headers.Location);
            Assert.Equal(TimeSpan.FromSeconds(GraphApi.RetryAfterSeconds), started.Headers.RetryAfter?.Delta);
            for (int i = 0; i < 600; i++)
            {
                using var poll = await impatient.Http.GetAsync(started.Headers.Location);
                if (poll.StatusCode == HttpStatusCode.OK) break;
                Assert.Equal(HttpStatusCode.Accepted, poll.StatusCode);
                await Task.Delay(100);
            }
            using var result = await impatient.Http.GetAsync("/jobs/webapp-slow/result");
            Assert.Equal(HttpStatusCode.OK, result.StatusCode);
            using var graph = await LocalService.JsonOf(result);
            WebappRules.AssertGraphReadable(graph);
        }
    }

    /// <summary>
    /// attribution_targets through the orchestrated service: a difference of the two likeliest next
    /// tokens and a token target beside it. The difference is one logit node, numbered past the
    /// vocabulary, whose clerp the webapp parses; the graph stays readable by its rules.
    /// </summary>
    [Fact]
    public async Task A_logit_difference_target_is_one_logit_node_the_webapp_reads()
    {
        var model = await service.Services.GetRequiredService<ModelHost>().GetAsync();
        long vocabulary = model.Replacement.Model.Unembedding.shape[0];
        int[] tokens = model.Tokenize(CountingPrompt);
        var (ids, probabilities) = Attribution.Tracing.LogitTargets.SalientTokens(model.Replacement.Model.ForwardLogits(TorchSharp.torch.tensor(tokens.Select(t => (long)t).ToArray()).unsqueeze(0))[0, -1], 2, 1.0);
        var body = JsonNode.Parse(GenerateBody(CountingPrompt, "difference-target", null, "Ada"))!.AsObject();
        body.Remove("signed_url");
        body["attribution_targets"] = new JsonArray(new JsonObject { ["token_id"] = ids[0], ["minus_id"] = ids[1] }, new JsonObject { ["token_id"] = ids[1] });
        using var request = WebappPost("/generate-graph", body.ToJsonString());
        using var response = await service.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var graph = await LocalService.JsonOf(response);
        WebappRules.AssertGraphReadable(graph);

        var logits = graph.RootElement.GetProperty("nodes").EnumerateArray().Where(n => n.GetProperty("feature_type").GetString() == "logit").ToList();
        Assert.Equal([vocabulary, ids[1]], logits.Select(n => n.GetProperty("feature").GetInt64()));
        string a = NeuronpediaGraphWriter.DisplayToken(model.Tokenizer.DecodeToken((int)ids[0])), b = NeuronpediaGraphWriter.DisplayToken(model.Tokenizer.DecodeToken((int)ids[1]));
        string expected = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Output \"{a}\" − \"{b}\" (p={Math.Abs(probabilities[0] - probabilities[1]):0.000})");
        Assert.Equal(expected, logits[0].GetProperty("clerp").GetString());
        Assert.Equal(Math.Abs(probabilities[0] - probabilities[1]), logits[0].GetProperty("token_prob").GetDouble(), 1e-6);
        Assert.Equal(probabilities[1], logits[1].GetProperty("token_prob").GetDouble(), 1e-6);
        Assert.True(logits[0].GetProperty("is_target_logit").GetBoolean());
    }

    /// <summary>
    /// Neuronpedia's QK tracing fields through the orchestrated service: traced nodes carry
    /// qk_tracing_results with at most qk_topk entries per list, links their head loadings, every
    /// contributor resolves, and the graph stays readable by the webapp's rules.
    /// </summary>
    [Fact]
    public async Task Qk_tracing_fields_give_traced_nodes_the_webapp_reads()
    {
        var body = JsonNode.Parse(GenerateBody(CountingPrompt, "qk-traced", null, "Ada"))!.AsObject();
        body.Remove("signed_url");
        body["enable_qk_tracing"] = true;
        body["qk_top_fraction"] = 0.5;
        body["qk_topk"] = 4;
        using var request = WebappPost("/generate-graph", body.ToJsonString());
        using var response = await service.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var graph = await LocalService.JsonOf(response);
        WebappRules.AssertGraphReadable(graph);

        var root = graph.RootElement;
        var ids = root.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node_id").GetString()!)
            .Concat(root.GetProperty("qk_only_nodes").EnumerateObject().Select(p => p.Name)).ToHashSet();
        var traced = root.GetProperty("nodes").EnumerateArray().Where(n => n.TryGetProperty("qk_tracing_results", out _)).ToList();
        Assert.NotEmpty(traced);
        foreach (var node in traced)
        {
            var qk = node.GetProperty("qk_tracing_results");
            foreach (var list in new[] { "pair_wise_contributors", "top_q_marginal_contributors", "top_k_marginal_contributors" })
            {
                var entries = qk.GetProperty(list).EnumerateArray().ToList();
                Assert.InRange(entries.Count, 1, 4);
                Assert.All(entries, e => Assert.Contains(e[0].GetString()!, ids));
            }
        }
        Assert.All(root.GetProperty("links").EnumerateArray(), link => Assert.True(link.TryGetProperty("head_loadings", out _), $"{link} has no head loadings"));
    }

    [Fact]
    public async Task Forward_pass_answers_the_fields_the_webapp_reads()
    {
        using var request = WebappPost("/forward-pass", $$"""{"prompt": "{{CountingPrompt}}", "max_n_logits": 10, "desired_logit_prob": 0.95, "request_type": "forward-pass"}""");
        using var response = await service.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = await LocalService.JsonOf(response);
        var root = json.RootElement;
        Assert.Equal(JsonValueKind.String, root.GetProperty("prompt").ValueKind);
        Assert.True(root.GetProperty("input_tokens").GetArrayLength() > 1);   // the webapp counts tokens with it
        var salient = root.GetProperty("salient_logits").EnumerateArray().ToList();
        Assert.NotEmpty(salient);
        Assert.All(salient, l => Assert.True(l.GetProperty("token").ValueKind == JsonValueKind.String && l.GetProperty("probability").ValueKind == JsonValueKind.Number));
        Assert.Equal(salient.Count, root.GetProperty("total_salient_tokens").GetInt32());
        Assert.InRange(root.GetProperty("cumulative_probability").GetDouble(), 0, 1);
    }

    /// <summary>
    /// The steer modal's request from a graph's nodes: layer and index from the inverse Cantor
    /// pairing of node.feature, positions from ctx_idx, delta 0 sent as ablate with delta null, an
    /// entry for generated tokens without steer_position, the modal's own extra keys, and the
    /// graph's prompt (its BOS text included).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // models the webapp has no Hugging Face id for are sent by their Neuronpedia id
    public async Task Steering_from_a_graphs_nodes_validates_as_the_webapp_checks_it(bool byScan)
    {
        string modelId = byScan ? Scan : ModelId;
        using var graphResponse = await service.Http.PostAsync("/generate-graph", LocalService.Json(GenerateBody(CountingPrompt, $"webapp-steer-{byScan}", null, "Anonymous (CT)")));
        Assert.Equal(HttpStatusCode.OK, graphResponse.StatusCode);
        using var graph = await LocalService.JsonOf(graphResponse);
        WebappRules.AssertGraphReadable(graph);
        var features = graph.RootElement.GetProperty("nodes").EnumerateArray().Where(WebappRules.IsSteerable)
            .OrderByDescending(n => n.GetProperty("ctx_idx").GetInt32()).Take(3).ToList();
        Assert.NotEmpty(features);

        var steered = new JsonArray();
        for (int i = 0; i < features.Count; i++)
        {
            var node = features[i];
            var (layer, index) = WebappRules.DecodeFeature(node.GetProperty("feature").GetInt64());
            Assert.Equal($"{layer}_{index}_{node.GetProperty("ctx_idx").GetInt32()}", node.GetProperty("node_id").GetString());
            int position = node.GetProperty("ctx_idx").GetInt32();
            double delta = i == 0 ? 0 : 30;
            var feature = new JsonObject
            {
                ["modelId"] = Scan,
                ["layer"] = layer,
                ["index"] = index,
                ["token_active_position"] = position,
                ["tokenActivePosition"] = position,
                ["steer_position"] = position,
                ["steer_generated_tokens"] = false,
                ["delta"] = delta == 0 ? null : delta,
                ["ablate"] = delta == 0,
            };
            steered.Add(feature);
        }
        var (firstLayer, firstIndex) = WebappRules.DecodeFeature(features[^1].GetProperty("feature").GetInt64());
        steered.Add(new JsonObject
        {
            ["modelId"] = Scan,
            ["layer"] = firstLayer,
            ["index"] = firstIndex,
            ["token_active_position"] = features[^1].GetProperty("ctx_idx").GetInt32(),
            ["steer_generated_tokens"] = true,
            ["delta"] = 30,
            ["ablate"] = false,
        });
        string prompt = graph.RootElement.GetProperty("metadata").GetProperty("prompt").GetString()!;
        var body = new JsonObject
        {
            ["model_id"] = modelId,
            ["prompt"] = prompt,
            ["features"] = steered,
            ["n_tokens"] = 12,
            ["top_k"] = 5,
            ["freeze_attention"] = false,
            ["temperature"] = 0.5,
            ["freq_penalty"] = -1.5,
            ["seed"] = 16,
            ["request_type"] = "steer",
        };
        using var request = WebappPost("/steer", body.ToJsonString());
        using var response = await service.Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        WebappRules.AssertSteerResponse(json.RootElement);
        // The BOS text of the graph's prompt is not tokenized a second time: both generations start with the prompt once.
        Assert.StartsWith(prompt, json.RootElement.GetProperty("DEFAULT_GENERATION").GetString(), StringComparison.Ordinal);
        Assert.NotEqual(json.RootElement.GetProperty("DEFAULT_LOGITS_BY_TOKEN").ToString(), json.RootElement.GetProperty("STEERED_LOGITS_BY_TOKEN").ToString());
    }

    /// <summary>Settings at the edges of what the webapp's UI and public API allow.</summary>
    [Theory]
    [InlineData(""", "freq_penalty": -2, "temperature": 1, "seed": 1""")]
    [InlineData(""", "freq_penalty": 2, "temperature": 2, "seed": 1""")]
    [InlineData(""", "top_k": 0""")]
    [InlineData(""", "top_k": 10, "n_tokens": 256""")]
    public async Task Settings_at_the_webapps_bounds_are_served(string settings)
    {
        string body = $$"""{"model_id": "{{ModelId}}", "prompt": "<bos>{{CountingPrompt}}", "features": [{"layer": 1, "index": 3, "token_active_position": 2, "steer_position": 2, "delta": 20, "ablate": false}], "freeze_attention": true, "request_type": "steer"{{settings}}}""";
        using var response = await service.Http.SendAsync(WebappPost("/steer", body));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        WebappRules.AssertSteerResponse(json.RootElement);
    }

    [Fact]
    public async Task An_empty_feature_list_steers_nothing()
    {
        string body = $$"""{"model_id": "{{ModelId}}", "prompt": "{{CountingPrompt}}", "features": [], "n_tokens": 6, "top_k": 3, "temperature": 0.8, "seed": 5}""";
        using var response = await service.Http.SendAsync(WebappPost("/steer", body));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = await LocalService.JsonOf(response);
        WebappRules.AssertSteerResponse(json.RootElement);
        var root = json.RootElement;
        Assert.Equal(root.GetProperty("DEFAULT_GENERATION").GetString(), root.GetProperty("STEERED_GENERATION").GetString());
        Assert.Equal(root.GetProperty("DEFAULT_LOGITS_BY_TOKEN").ToString(), root.GetProperty("STEERED_LOGITS_BY_TOKEN").ToString());
    }
}

/// <summary>The webapp's flows on the tests' tiny Gemma-2 with its byte-level tokenizer.</summary>
[Collection(UsesLocalService.Name)]
public sealed class WebappConformanceTests(LocalServiceFixture fixture) : WebappConformance(fixture.Service), IClassFixture<LocalServiceFixture>
{
    protected override string ModelId => "graphfunctions/tiny-gemma-2";

    protected override string Scan => "tiny-gemma-2";

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>();

    protected override string CountingPrompt => "1 2 3 4";

    [Fact]
    public void The_steer_modals_cantor_decoding_inverts_our_feature_ids()
    {
        foreach (var (layer, index) in new (long, long)[] { (0, 0), (0, 65), (3, 0), (25, 16383), (12, 2_500_000) })
            Assert.Equal((layer, index), WebappRules.DecodeFeature(NeuronpediaGraphWriter.CantorFeatureId(layer, index)));
    }
}

/// <summary>The webapp's flows on the bundled default, the demo model, as a new user meets it.</summary>
[Collection(UsesLocalService.Name)]
public sealed class DefaultModelWebappConformanceTests(DefaultModelWebappConformanceTests.Fixture fixture)
    : WebappConformance(fixture.Service), IClassFixture<DefaultModelWebappConformanceTests.Fixture>
{
    public sealed class Fixture : LocalServiceFixture
    {
        protected override IDictionary<string, string?>? Settings => DefaultModel;
    }

    private static readonly Dictionary<string, string?> DefaultModel = new() { ["MODEL_ID"] = "" };

    protected override string ModelId => BundledModel.Id;

    protected override string Scan => BundledModel.Scan;

    protected override IDictionary<string, string?> Settings => DefaultModel;

    /// <summary>The Neuronpedia graph server's example request's prompt, trailing space included.</summary>
    protected override string CountingPrompt => "1 2 ";
}
