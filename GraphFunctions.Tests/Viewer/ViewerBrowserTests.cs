namespace GraphFunctions.Tests.Viewer;

using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Requests;
using GraphFunctions.Api;
using GraphFunctions.Orchestration;
using GraphFunctions.Storage;
using GraphFunctions.Tests.Service;
using GraphFunctions.Tests.Storage;
using GraphFunctions.Tests.Support;
using GraphFunctions.Workers;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using PuppeteerSharp;
using Xunit.Abstractions;

/// <summary>
/// The viewer in a real browser (docs/viewer.md) against the local host on loopback: the jobs page
/// asks for the secret, starts a graph from its form and shows its progress advancing; the graph
/// page draws every node, highlights exactly a clicked node's edges, keeps pins in the URL, and
/// steers; no console errors anywhere.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class ViewerBrowserTests(ViewerBrowserTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<ViewerBrowserTests.Fixture>
{
    private const string Slug = "viewer-e2e";

    /// <summary>Feature rows that take 200 ms a batch, so the tiny model's job runs long enough to be watched.</summary>
    public sealed class PacedFeatureRows(JobStates states, GpuGate gpu, IWorkspaceStore workspace, ModelHost models, JobWatch watch) : FeatureRowsActivity(states, gpu, workspace, models, watch)
    {
        public override async Task<RowBlock> RunAsync(TaskActivityContext context, FeatureBatch input)
        {
            await Task.Delay(200);
            return await base.RunAsync(context, input);
        }
    }

    public sealed class Fixture : IAsyncLifetime
    {
        public LocalService Service { get; private set; } = null!;

        public Browser Browser { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            // Rounds of two features: enough rounds that the page sees the job move.
            Service = await LocalService.StartAsync(
                tasks: GraphOrchestrationTests.RegisterReplacing<FeatureRowsActivity, PacedFeatureRows>,
                settings: new Dictionary<string, string?> { ["UPDATE_INTERVAL"] = "2" });
            Browser = await Browser.LaunchAsync();
        }

        public async Task DisposeAsync()
        {
            await Browser.DisposeAsync();
            await Service.DisposeAsync();
        }
    }

    private readonly LocalService service = fixture.Service;

    private string Url(string path) => new Uri(service.Address, path).ToString();

    /// <summary>The secret dialog appears at the first refused call; the page keeps the answer for the tab.</summary>
    private static async Task AnswerSecretAsync(IPage page)
    {
        await page.WaitForSelectorAsync("#secret-dialog[open]", new WaitForSelectorOptions { Timeout = 20_000 });
        await page.TypeAsync("#secret-input", LocalService.Secret);
        await page.ClickAsync("#secret-ok");
    }

    /// <summary>The page's own location (replaceState reaches the driver's URL only later).</summary>
    private static Task<string> LocationAsync(IPage page) => page.EvaluateExpressionAsync<string>("location.href");

    /// <summary>Moves the edge filter as a user drags it (0 … 1000).</summary>
    private static Task SetEdgeFilterAsync(IPage page, int value) =>
        page.EvaluateFunctionAsync("v => { const s = document.querySelector('#edge-filter'); s.value = String(v); s.dispatchEvent(new Event('input')); }", value);

    private async Task<JsonDocument> GraphJsonAsync(string slug)
    {
        using var response = await service.Http.GetAsync($"/jobs/{slug}/result");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await LocalService.JsonOf(response);
    }

    [Fact]
    public async Task A_graph_started_from_the_jobs_page_shows_its_progress_and_opens_in_the_graph_page()
    {
        var (page, errors) = await fixture.Browser.NewPageAsync();
        await using var _ = page;

        // Jobs page: the secret, then the form.
        await page.GoToAsync(Url("/viewer"));
        await AnswerSecretAsync(page);
        await page.EvaluateExpressionAsync("document.querySelector('#prompt').value = 'The quick brown fox jumps over the lazy dog because'");
        await page.EvaluateExpressionAsync($"document.querySelector('#slug').value = '{Slug}'");
        await page.EvaluateExpressionAsync("document.querySelector('[name=max_feature_nodes]').value = '80'");
        await page.EvaluateExpressionAsync("document.querySelector('[name=batch_size]').value = '2'");
        await page.ClickAsync("#start");

        // Progress as the page shows it, sampled until the row says Completed.
        var seen = new List<int>();
        var clock = Stopwatch.StartNew();
        string state = "";
        while (state != "Completed" && clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            var sample = await page.EvaluateFunctionAsync<JsonElement>($$"""
                () => {
                  const row = document.querySelector('tr[data-job-id="{{Slug}}"]');
                  if (!row) return { state: '', visited: -1 };
                  const progress = row.querySelector('td.progress');
                  return { state: row.dataset.state, visited: Number(progress.dataset.visited ?? -1) };
                }
                """);
            state = sample.GetProperty("state").GetString()!;
            int visited = sample.GetProperty("visited").GetInt32();
            if (state == "Running" && visited >= 0 && (seen.Count == 0 || seen[^1] != visited)) seen.Add(visited);
            Assert.True(state is "" or "Pending" or "Running" or "Completed", $"job state {state}");
            await Task.Delay(100);
        }
        output.WriteLine($"features visited as the jobs page showed them: {string.Join(", ", seen)}");
        Assert.Equal("Completed", state);
        Assert.True(seen.Count >= 2, $"the page showed one progress value only: {string.Join(", ", seen)}");
        Assert.True(seen.SequenceEqual(seen.Order()), $"progress went backwards: {string.Join(", ", seen)}");

        // The finished row links to the graph page.
        await page.WaitForSelectorAsync($"tr[data-job-id=\"{Slug}\"] a[href=\"/graphs/{Slug}\"]");
        await Task.WhenAll(page.WaitForNavigationAsync(), page.ClickAsync($"tr[data-job-id=\"{Slug}\"] a"));
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'", new WaitForFunctionOptions { Timeout = 30_000 });

        using var graph = await GraphJsonAsync(Slug);
        var nodes = graph.RootElement.GetProperty("nodes").EnumerateArray().ToList();
        var links = graph.RootElement.GetProperty("links").EnumerateArray()
            .Select(l => (Source: l.GetProperty("source").GetString()!, Target: l.GetProperty("target").GetString()!)).ToList();
        Assert.Equal(nodes.Count, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node').length"));
        Assert.Equal(nodes.Count(n => n.GetProperty("feature_type").GetString() == "mlp reconstruction error"),
            await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node.error').length"));

        // Clicking the feature with the most edges highlights exactly its edges.
        string clicked = nodes.Where(n => n.GetProperty("feature_type").GetString() == "cross layer transcoder")
            .Select(n => n.GetProperty("node_id").GetString()!)
            .MaxBy(id => links.Count(l => l.Source == id || l.Target == id))!;
        await page.ClickAsync($"#nodes [data-id=\"{clicked}\"]");
        var highlighted = await page.EvaluateExpressionAsync<string[]>(
            "[...document.querySelectorAll('#highlight line.edge.highlighted')].map(l => l.dataset.source + ' ' + l.dataset.target)");
        var expected = links.Where(l => l.Source == clicked || l.Target == clicked).Select(l => $"{l.Source} {l.Target}").Order().ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, highlighted.Order().ToList());
        Assert.Contains($"clickedId={Uri.EscapeDataString(clicked)}", await LocationAsync(page), StringComparison.Ordinal);
        Assert.True(await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#node-details .links li').length") > 0);

        // Pin it: the pin is in the URL and survives a reload.
        await page.ClickAsync("#pin");
        Assert.Contains($"pinnedIds={Uri.EscapeDataString(clicked)}", await LocationAsync(page), StringComparison.Ordinal);
        await page.ReloadAsync();
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'", new WaitForFunctionOptions { Timeout = 30_000 });
        Assert.True(await page.EvaluateExpressionAsync<bool>($"document.querySelector('#nodes [data-id=\"{clicked}\"]').classList.contains('pinned')"));

        // Raising the edge filter drops the weak edges from the highlight.
        await SetEdgeFilterAsync(page, 700);
        int filtered = await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#highlight line.edge.highlighted').length");
        Assert.True(filtered < expected.Count, $"the filter kept all {expected.Count} edges");
        await SetEdgeFilterAsync(page, 0);

        // Steer the pinned feature: ablated, the page shows both continuations with their top tokens.
        await page.ClickAsync("#steer-run");
        await page.WaitForSelectorAsync("#steer-result .generation.steered .continuation", new WaitForSelectorOptions { Timeout = 60_000 });
        string defaultText = await page.EvaluateExpressionAsync<string>("document.querySelector('#steer-result .generation.default .continuation').textContent");
        int topTokenRows = await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#steer-result .generation.steered .top-tokens li').length");
        output.WriteLine($"default continuation: {defaultText}");
        Assert.False(string.IsNullOrEmpty(defaultText));
        Assert.Equal(10, topTokenRows);
        Assert.Equal("", await page.EvaluateExpressionAsync<string>("document.querySelector('#steer-message').textContent"));

        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-graph.png"));
        Assert.Empty(errors);
    }

    private Task<(IPage Page, List<string> Errors)> OpenJobsPageAsync() => JobsPage.OpenAsync(fixture.Browser, service);

    [Fact]
    public async Task A_failed_job_shows_why_on_the_jobs_page()
    {
        using var s3 = new ScriptedPutServer(Enumerable.Repeat(HttpStatusCode.Forbidden, 5).ToArray());
        string body = $$"""{"prompt": "The <b>cat</b>", "model_id": "graphfunctions/tiny-gemma-2", "slug_identifier": "failed-upload", "max_feature_nodes": 20, "signed_url": "{{s3.Url}}"}""";
        using (var failed = await service.Http.PostAsync("/generate-graph", LocalService.Json(body)))
            Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);

        var (page, errors) = await OpenJobsPageAsync();
        await page.WaitForSelectorAsync("tr[data-job-id='failed-upload'] .failure");
        string shown = await page.EvaluateExpressionAsync<string>("document.querySelector(\"tr[data-job-id='failed-upload'] .failure\").textContent");

        Assert.Contains(GraphDelivery.UploadFailed, shown, StringComparison.Ordinal);
        Assert.Empty(errors);
        await page.CloseAsync();
    }

    [Fact]
    public async Task The_jobs_form_previews_the_prompts_tokens_with_visible_whitespace_and_enter_submits_the_schemas_defaults()
    {
        var (page, errors) = await OpenJobsPageAsync();
        await using var _ = page;

        // Typed with a trailing space and a line break: each is its own token, and visible.
        await JobsPage.TypePromptEndingInALineBreakAsync(page, "Hello world ");
        var (tokens, unseen) = await JobsPage.PreviewOfAsync(page, "Hello world \n");
        Assert.Equal(["<bos>", "Hello", "␣world", "␣", "⏎"], tokens);
        Assert.Empty(unseen);   // this model has no training_tokens.json: nothing is marked, nothing warned
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#preview-warnings li').length"));
        Assert.False(await page.EvaluateExpressionAsync<bool>("document.querySelector('#examples').checkVisibility()"), "a model other than the demo offers no example prompts");
        using (var settings = await LocalService.JsonOf(await service.Anonymous().GetAsync("/viewer/settings")))
            Assert.DoesNotContain("example_prompts", settings.RootElement.EnumerateObject().Select(p => p.Name));
        var next = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#preview-next li .prob')].map(p => p.textContent)");
        Assert.NotEmpty(next);
        Assert.All(next, p => Assert.InRange(double.Parse(p, System.Globalization.CultureInfo.InvariantCulture), 0, 1));

        // Enter sends the form (the prompt keeps its one line break) with the request schema's defaults.
        string? sent = null;
        await page.SetRequestInterceptionAsync(true);
        page.Request += async (_, e) =>
        {
            if (e.Request.Method == HttpMethod.Post && e.Request.Url.EndsWith("/generate-graph", StringComparison.Ordinal))
            {
                sent = e.Request.PostData?.ToString();
                await e.Request.RespondAsync(new ResponseData { Status = HttpStatusCode.Accepted, ContentType = "application/json", Body = """{"id": "intercepted"}""" });
            }
            else await e.Request.ContinueAsync();
        };
        await page.FocusAsync("#prompt");
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForFunctionAsync("() => document.querySelector('#form-message').textContent === 'Started intercepted.'");
        Assert.Equal("Hello world \n", await page.EvaluateExpressionAsync<string>("document.querySelector('#prompt').value"));
        using var body = JsonDocument.Parse(sent!);
        Assert.Equal("Hello world \n", body.RootElement.GetProperty("prompt").GetString());
        var numbers = RequestSchema.GenerateGraph.Where(f => f is IntegerField or NumberField).Select(f => f.Name)
            .Where(name => body.RootElement.EnumerateObject().Any(p => p.Name == name)).ToList();
        Assert.Equal(["batch_size", "max_n_logits", "desired_logit_prob", "node_threshold", "edge_threshold", "max_feature_nodes"], numbers);
        foreach (var field in RequestSchema.GenerateGraph.Where(f => numbers.Contains(f.Name)))
        {
            double expected = field switch { IntegerField i => i.DefaultValue, NumberField n => n.DefaultValue, _ => double.NaN };
            Assert.Equal(expected, body.RootElement.GetProperty(field.Name).GetDouble());
        }
        Assert.False(body.RootElement.TryGetProperty("attribution_targets", out var absent), $"no targets unless asked for, got {absent}");

        // A target token minus another: one logit-difference target, the leading spaces kept.
        await page.TypeAsync("input[name=target]", " Paris");
        await page.TypeAsync("input[name=minus]", " London");
        await page.EvaluateExpressionAsync("document.querySelector('#form-message').textContent = ''");
        await page.ClickAsync("#start");
        await page.WaitForFunctionAsync("() => document.querySelector('#form-message').textContent === 'Started intercepted.'");
        using var withTargets = JsonDocument.Parse(sent!);
        Assert.Equal("""[{"token":" Paris","minus":" London"}]""", withTargets.RootElement.GetProperty("attribution_targets").GetRawText());
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-jobs-preview.png"));
        Assert.Empty(errors);
    }

    /// <summary>
    /// A synthetic graph of Gemma-2-2B's shape (26 layers, 64 positions) with 5,000 nodes and 75,000
    /// edges, answered in place of the service's result: every node is drawn and a click still
    /// highlights exactly its edges. The times are printed, not asserted (shared machines).
    /// </summary>
    [Fact]
    public async Task A_graph_of_5000_nodes_and_75000_edges_is_drawn_and_explored()
    {
        var (page, errors) = await fixture.Browser.NewPageAsync();
        await using var _ = page;
        var (graph, links) = SyntheticGraph(layers: 26, positions: 64, nodes: 5000, edges: 75000, seed: 5);
        await OpenServedGraphAsync(page, "big", graph);
        Assert.Equal(5000, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node').length"));
        // The metadata's warnings are listed as text (markup in them stays text).
        Assert.Equal(SyntheticWarnings, await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#metadata-warnings li')].map(li => li.textContent)"));
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#metadata-warnings b').length"));

        string busiest = links.SelectMany(l => new[] { l.Source, l.Target }).GroupBy(id => id).MaxBy(g => g.Count())!.Key;
        double clickMs = await page.EvaluateFunctionAsync<double>("""
            id => new Promise(resolve => {
              const started = performance.now();
              document.querySelector(`#nodes [data-id="${id}"]`).dispatchEvent(new MouseEvent('click', { bubbles: true }));
              requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
            })
            """, busiest);
        var highlighted = await page.EvaluateExpressionAsync<string[]>(
            "[...document.querySelectorAll('#highlight line.edge.highlighted')].map(l => l.dataset.source + ' ' + l.dataset.target)");
        Assert.Equal(links.Where(l => l.Source == busiest || l.Target == busiest).Select(l => $"{l.Source} {l.Target}").Order(), highlighted.Order());

        double filterMs = await page.EvaluateFunctionAsync<double>("""
            () => new Promise(resolve => {
              const started = performance.now();
              const slider = document.querySelector('#edge-filter');
              slider.value = '300';
              slider.dispatchEvent(new Event('input'));
              requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
            })
            """);
        double pruningMs = await page.EvaluateFunctionAsync<double>("""
            () => new Promise(resolve => {
              const started = performance.now();
              const slider = document.querySelector('#pruning');
              slider.value = '0.5';
              slider.dispatchEvent(new Event('input'));
              requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
            })
            """);
        // A subgraph of the three busiest nodes: pinned with shift-clicks, its scores computed over the whole graph.
        var drawnIds = (await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#nodes .node')].map(n => n.dataset.id)")).ToHashSet();
        var busiestThree = links.SelectMany(l => new[] { l.Source, l.Target }).Where(drawnIds.Contains).GroupBy(x => x)
            .OrderByDescending(g => g.Count()).Take(3).Select(g => g.Key).ToArray();
        double subgraphMs = await page.EvaluateFunctionAsync<double>("""
            ids => new Promise(resolve => {
              const started = performance.now();
              for (const id of ids) document.querySelector(`#nodes [data-id="${id}"]`).dispatchEvent(new MouseEvent('click', { bubbles: true, shiftKey: true }));
              requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
            })
            """, (object)busiestThree);
        Assert.NotNull(await page.EvaluateExpressionAsync<string>("document.querySelector('#subgraph-scores').dataset.replacement"));
        int renderMs = int.Parse(await page.EvaluateExpressionAsync<string>("document.body.dataset.renderMs"), System.Globalization.CultureInfo.InvariantCulture);
        output.WriteLine($"5,000 nodes / 75,000 edges: first draw {renderMs} ms, click to highlighted frame {clickMs:0} ms, edge filter to redrawn frame {filterMs:0} ms, "
            + $"pruning slider {pruningMs:0} ms, three shift-clicks to a scored subgraph {subgraphMs:0} ms");
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-graph-5000.png"));
        Assert.Empty(errors);
    }

    /// <summary>A graph made with head_loadings: a selected node's input links say which heads carried them, as text.</summary>
    [Fact]
    public async Task A_selected_nodes_links_name_the_heads_that_carried_them()
    {
        var (page, errors) = await fixture.Browser.NewPageAsync();
        await using var _ = page;
        var (json, links) = SyntheticGraph(layers: 3, positions: 4, nodes: 40, edges: 60, seed: 7);
        var graph = JsonNode.Parse(json)!;
        // Node A's inputs carry markup in their loadings (a file's fields are shown as text); node B's are plain.
        string nodeA = links[0].Target, nodeB = links.First(l => l.Target != nodeA).Target;
        foreach (var link in graph["links"]!.AsArray())
        {
            string layer = (string)link!["target"]! == nodeA ? "\"<b>2</b>\"" : "2";
            link["head_loadings"] = JsonNode.Parse($$"""{"direct": 0.25, "heads": [[{{layer}}, 1, 0.5], [0, 3, -0.125]], "rest": 0.75}""");
        }
        await OpenServedGraphAsync(page, "heads", graph.ToJsonString());

        const string Click = "id => document.querySelector(`#nodes [data-id=\"${id}\"]`).dispatchEvent(new MouseEvent('click', { bubbles: true }))";
        const string Shown = "[...document.querySelectorAll('#node-details .links li .heads')].map(s => s.textContent)";
        await page.EvaluateFunctionAsync(Click, nodeB);
        var plain = await page.EvaluateExpressionAsync<string[]>(Shown);
        Assert.NotEmpty(plain);
        Assert.Contains("via L2.H1 0.500, L0.H3 -0.125, other heads 0.750, no head 0.250", plain);

        await page.EvaluateFunctionAsync(Click, nodeA);
        var marked = await page.EvaluateExpressionAsync<string[]>(Shown);
        Assert.Contains(marked, text => text.StartsWith("via L<b>2</b>.H1", StringComparison.Ordinal));
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#node-details .links li .heads b').length"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_traced_node_shows_why_its_head_attended_and_its_pairs_lead_to_their_nodes()
    {
        var (page, errors) = await fixture.Browser.NewPageAsync();
        await using var _ = page;
        var (json, links) = SyntheticGraph(layers: 3, positions: 4, nodes: 40, edges: 60, seed: 11);
        var graph = JsonNode.Parse(json)!;
        string traced = links[0].Target, queryNode = links[0].Source, keyNode = links.First(l => l.Source != queryNode).Source;
        // One contributor outside the graph, with markup in its label: named as text, not linked.
        graph["qk_only_nodes"] = JsonNode.Parse("""
            {"1_77_0": {"node_id": "1_77_0", "feature": 77, "layer": "1", "ctx_idx": 0, "feature_type": "cross layer transcoder", "jsNodeId": "1_77-0", "clerp": "<i>pruned</i>", "activation": 1.5}}
            """);
        var node = graph["nodes"]!.AsArray().First(n => (string)n!["node_id"]! == traced)!;
        node["qk_tracing_results"] = JsonNode.Parse($$"""
            {"pair_wise_contributors": [["{{queryNode}}", "{{keyNode}}", 2.5], ["{{queryNode}}", "1_77_0", -1.25]],
             "top_q_marginal_contributors": [["{{queryNode}}", 3.0]], "top_k_marginal_contributors": [["{{keyNode}}", 2.0], ["1_77_0", -0.5]],
             "layer": 2, "head": 1, "query_ctx_idx": 3, "key_ctx_idx": 1, "score": 4.25, "q_rest": 1.25, "k_rest": 2.75}
            """);
        await OpenServedGraphAsync(page, "qk", graph.ToJsonString());

        const string Click = "id => document.querySelector(`#nodes [data-id=\"${id}\"]`).dispatchEvent(new MouseEvent('click', { bubbles: true }))";
        await page.EvaluateFunctionAsync(Click, traced);
        Assert.Equal("Why L2.H1 attended from position 3 to 1", await page.EvaluateExpressionAsync<string>("document.querySelector('#qk-panel h3').textContent"));
        var pairs = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#qk-panel .qk-pairs li')].map(li => li.textContent)");
        Assert.Equal(2, pairs.Length);
        Assert.EndsWith("2.500", pairs[0], StringComparison.Ordinal);
        Assert.Contains("<i>pruned</i>", pairs[1], StringComparison.Ordinal);
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#qk-panel i').length"));
        Assert.Equal(2, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#qk-panel .hidden-node').length"));

        // A pair's key-side node is a link: following it selects that node.
        await page.EvaluateExpressionAsync("document.querySelectorAll('#qk-panel .qk-pairs li')[0].querySelectorAll('button.link')[1].click()");
        Assert.Equal(keyNode, await page.EvaluateExpressionAsync<string>("document.querySelector('#nodes .node.selected').dataset.id"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Pages_revalidate_and_versioned_scripts_are_cached_forever_with_their_content_types()
    {
        using var anonymous = service.Anonymous();   // the pages themselves carry no data: no secret needed
        using var page = await anonymous.GetAsync("/viewer");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        Assert.True(page.Headers.CacheControl!.NoCache);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single());

        // A revalidation with the page's ETag is a 304 without a body.
        using var again = new HttpRequestMessage(HttpMethod.Get, "/graphs/anything");
        again.Headers.IfNoneMatch.Add((await anonymous.GetAsync("/graphs/anything")).Headers.ETag!);
        using var notModified = await anonymous.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());

        // The page names its scripts with the current version; those are immutable, an unversioned one is not.
        string html = await page.Content.ReadAsStringAsync();
        string version = System.Text.RegularExpressions.Regex.Match(html, @"jobs\.js\?v=([0-9a-f]+)").Groups[1].Value;
        Assert.NotEmpty(version);
        using var script = await anonymous.GetAsync($"/viewer/assets/jobs.js?v={version}");
        Assert.Equal("text/javascript", script.Content.Headers.ContentType!.MediaType);
        Assert.True(script.Headers.CacheControl!.Public);
        Assert.Equal(TimeSpan.FromDays(365), script.Headers.CacheControl.MaxAge);
        using var style = await anonymous.GetAsync("/viewer/assets/viewer.css");
        Assert.Equal("text/css", style.Content.Headers.ContentType!.MediaType);
        Assert.True(style.Headers.CacheControl!.NoCache);
        using var d3 = await anonymous.GetAsync($"/viewer/assets/{ViewerAssets.D3}?v={version}");
        Assert.Equal(HttpStatusCode.OK, d3.StatusCode);
        Assert.Contains("d3js.org", await d3.Content.ReadAsStringAsync());

        // The local host's root leads to the jobs page (the Functions host keeps "/" for itself).
        using var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = service.Address };
        using var root = await noRedirects.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, root.StatusCode);
        Assert.Equal("/viewer", root.Headers.Location?.OriginalString);

        using var unknown = await anonymous.GetAsync("/viewer/assets/secrets.json");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("secrets.json", await unknown.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Pages_are_refused_to_other_hosts_unless_the_viewer_is_public()
    {
        var refused = await JobsPageFromAnotherHostAsync(viewerPublic: false);
        Assert.Equal(403, refused.Response.StatusCode);
        refused.Response.Body.Position = 0;
        Assert.Contains("VIEWER_PUBLIC", new StreamReader(refused.Response.Body).ReadToEnd());

        var allowed = await JobsPageFromAnotherHostAsync(viewerPublic: true);
        Assert.Equal(200, allowed.Response.StatusCode);
        Assert.Equal("text/html; charset=utf-8", allowed.Response.ContentType);
    }

    /// <summary>The jobs page as served to a client at 10.0.0.1 (loopback cannot be anything else over real HTTP).</summary>
    private async Task<Microsoft.AspNetCore.Http.DefaultHttpContext> JobsPageFromAnotherHostAsync(bool viewerPublic)
    {
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext { RequestServices = service.Services };
        context.Connection.RemoteIpAddress = IPAddress.Parse("10.0.0.1");
        context.Response.Body = new MemoryStream();
        await new ViewerApi(viewerPublic, () => throw new InvalidOperationException("a page needs no settings")).Page(context.Request, ViewerApi.JobsPage).ExecuteAsync(context);
        return context;
    }

    private static readonly string[] SyntheticWarnings = ["'<b>t3</b>' (position 3) never occurred in synthetic's training text", "and 2 more tokens"];

    /// <summary>A graph JSON in the service's layout with random features and edges that run upwards.</summary>
    /// <summary>Opens /graphs/{slug} with the job's result answered by <paramref name="graph"/> (and no annotations), and waits for the drawing.</summary>
    private async Task OpenServedGraphAsync(IPage page, string slug, string graph)
    {
        await page.SetRequestInterceptionAsync(true);
        page.Request += async (_, e) =>
        {
            if (e.Request.Url.EndsWith($"/jobs/{slug}/result", StringComparison.Ordinal))
                await e.Request.RespondAsync(new ResponseData { Status = HttpStatusCode.OK, ContentType = "application/json", Body = graph });
            else if (e.Request.Url.EndsWith($"/jobs/{slug}/annotations", StringComparison.Ordinal))
                await e.Request.RespondAsync(new ResponseData { Status = HttpStatusCode.OK, ContentType = "application/json", Body = """{"clerps": [], "pinnedIds": [], "supernodes": []}""" });
            else await e.Request.ContinueAsync();
        };
        await page.EvaluateExpressionOnNewDocumentAsync($"localStorage.setItem('graphfunctions-secret', '{LocalService.Secret}')");
        await page.GoToAsync(Url($"/graphs/{slug}"));
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'", new WaitForFunctionOptions { Timeout = 120_000 });
    }

    private static (string Json, List<(string Source, string Target)> Links) SyntheticGraph(int layers, int positions, int nodes, int edges, int seed)
    {
        var random = new Random(seed);
        var list = new List<(string Id, int Row, int Position, object Node)>();
        for (int p = 0; p < positions; p++)
            list.Add(($"E_{p}_{p}", 0, p, new { node_id = $"E_{p}_{p}", feature = p, layer = "E", ctx_idx = p, feature_type = "embedding", token_prob = 0.0, is_target_logit = false, clerp = "", influence = 0.1, activation = (double?)null }));
        for (int l = 0; l < layers; l++)
            for (int p = 0; p < positions; p++)
                list.Add(($"{l}_-1_{p}", l + 1, p, new { node_id = $"{l}_-1_{p}", feature = -1, layer = $"{l}", ctx_idx = p, feature_type = "mlp reconstruction error", token_prob = 0.0, is_target_logit = false, clerp = "", influence = 0.01, activation = (double?)null }));
        for (int k = 0; k < 10; k++)
            list.Add(($"{layers + 1}_{k}_{positions - 1}", layers + 1, positions - 1, new { node_id = $"{layers + 1}_{k}_{positions - 1}", feature = k, layer = $"{layers + 1}", ctx_idx = positions - 1, feature_type = "logit", token_prob = 0.5 / (k + 1), is_target_logit = k == 0, clerp = $"Output \"t{k}\" (p={0.5 / (k + 1):0.000})", influence = (double?)null, activation = (double?)null }));
        while (list.Count < nodes)
        {
            int l = random.Next(layers), p = random.Next(positions), index = random.Next(16384);
            string id = $"{l}_{index}_{p}";
            if (list.Any(n => n.Id == id)) continue;
            list.Add((id, l + 1, p, new { node_id = id, feature = index, layer = $"{l}", ctx_idx = p, feature_type = "cross layer transcoder", token_prob = 0.0, is_target_logit = false, clerp = "", influence = random.NextDouble(), activation = random.NextDouble() * 5 }));
        }
        var byRow = list.GroupBy(n => n.Row).ToDictionary(g => g.Key, g => g.ToList());
        var links = new HashSet<(string Source, string Target)>();
        var weights = new List<object>();
        while (links.Count < edges)
        {
            var source = list[random.Next(list.Count)];
            var higher = byRow.Keys.Where(r => r > source.Row).ToList();
            if (higher.Count == 0) continue;
            var candidates = byRow[higher[random.Next(higher.Count)]];
            var target = candidates[random.Next(candidates.Count)];
            if (target.Position < source.Position || !links.Add((source.Id, target.Id))) continue;
            weights.Add(new { source = source.Id, target = target.Id, weight = (random.NextDouble() - 0.4) * 2 });
        }
        var metadata = new
        {
            slug = "big", scan = "synthetic", prompt = "synthetic",
            prompt_tokens = Enumerable.Range(0, positions).Select(p => $" t{p}").ToArray(),
            warnings = SyntheticWarnings,
        };
        string json = JsonSerializer.Serialize(new { metadata, nodes = list.Select(n => n.Node), links = weights });
        return (json, links.ToList());
    }
}
