namespace GraphFunctions.Tests.Viewer;

using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Demo;
using Attribution.Loading;
using GraphFunctions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The jobs page on the default model, the bundled demo (docs/viewer.md): its preview marks the
/// prompt tokens the demo never saw in training and lists the warnings, and the tour's prompts are
/// offered as chips that fill the form.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class ViewerDemoTests(ViewerDemoTests.Fixture fixture) : IClassFixture<ViewerDemoTests.Fixture>
{
    public sealed class Fixture : IAsyncLifetime
    {
        public LocalService Service { get; private set; } = null!;

        public Browser Browser { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Service = await LocalService.StartAsync(settings: new Dictionary<string, string?> { ["MODEL_ID"] = "" });   // the default
            Browser = await Browser.LaunchAsync();
        }

        public async Task DisposeAsync()
        {
            await Browser.DisposeAsync();
            await Service.DisposeAsync();
        }
    }

    private readonly LocalService service = fixture.Service;

    /// <summary>GF.token of api.js, which shows tokens and the warnings quoting them: line breaks, tabs and spaces at either end made visible.</summary>
    private static string Shown(string token)
    {
        string text = token.Replace("\r", "↵", StringComparison.Ordinal).Replace("\n", "⏎", StringComparison.Ordinal).Replace("\t", "⇥", StringComparison.Ordinal);
        int start = text.Length - text.TrimStart(' ').Length, end = text.Length - text.TrimEnd(' ').Length;
        return start == text.Length ? new string('␣', start) : new string('␣', start) + text[start..^end] + new string('␣', end);
    }

    [Fact]
    public async Task The_settings_offer_the_tours_prompts()
    {
        using var settings = await LocalService.JsonOf(await service.Anonymous().GetAsync("/viewer/settings"));
        Assert.Equal(BundledModel.Id, settings.RootElement.GetProperty("model_id").GetString());
        Assert.Equal(BundledModel.TourPrompts, settings.RootElement.GetProperty("example_prompts").EnumerateArray().Select(p => p.GetString()));
    }

    [Fact]
    public async Task The_preview_marks_the_tokens_the_demo_never_saw_and_an_example_chip_fills_the_prompt()
    {
        var (page, errors) = await JobsPage.OpenAsync(fixture.Browser, service);
        await using var opened = page;

        const string prompt = "The cat sat on the\n";
        await JobsPage.TypePromptEndingInALineBreakAsync(page, prompt.TrimEnd('\n'));
        var (tokens, unseen) = await JobsPage.PreviewOfAsync(page, prompt);

        using var response = await service.Http.PostAsync("/forward-pass", LocalService.Json(JsonSerializer.Serialize(new { prompt })));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var answer = await LocalService.JsonOf(response);
        var expectedUnseen = answer.RootElement.GetProperty("unseen_positions").EnumerateArray().Select(p => p.GetInt32()).ToArray();
        var expectedWarnings = answer.RootElement.GetProperty("warnings").EnumerateArray().Select(w => Shown(w.GetString()!)).ToArray();
        Assert.Equal(answer.RootElement.GetProperty("input_tokens").EnumerateArray().Select(t => Shown(t.GetString()!)), tokens);
        Assert.NotEmpty(expectedUnseen);
        Assert.Equal(expectedUnseen, unseen);
        // The trailing line break is a token of its own, shown, and never seen in training (no corpus sentence has one).
        Assert.Equal("⏎", tokens[^1]);
        Assert.Contains(tokens.Length - 1, unseen);
        Assert.Equal(expectedWarnings, await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#preview-warnings li')].map(li => li.textContent)"));
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-jobs-unseen.png"));

        // The chips are the tour's prompts; one fills the prompt, and its preview warns of nothing.
        Assert.Equal(BundledModel.TourPrompts, await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#examples button.example')].map(b => b.textContent)"));
        await page.ClickAsync("#examples button.example:nth-of-type(2)");
        string chosen = BundledModel.TourPrompts[1];
        Assert.Equal(chosen, await page.EvaluateExpressionAsync<string>("document.querySelector('#prompt').value"));
        var (chosenTokens, chosenUnseen) = await JobsPage.PreviewOfAsync(page, chosen);
        Assert.True(chosenTokens.Length > 1);
        Assert.Empty(chosenUnseen);
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#preview-warnings li').length"));
        Assert.Empty(errors);
    }

    /// <summary>A graph's feature nodes, most influential first (smallest cumulative influence).</summary>
    private static List<JsonElement> FeaturesByInfluence(JsonDocument graph) =>
        [.. graph.RootElement.GetProperty("nodes").EnumerateArray().Where(n => n.GetProperty("feature_type").GetString() == "cross layer transcoder")
            .OrderBy(n => n.GetProperty("influence").GetDouble())];

    /// <summary>A tour graph of the demo made through the API, and the graph page on it (secret remembered, ready).</summary>
    private async Task<(JsonDocument Graph, PuppeteerSharp.IPage Page, List<string> Errors)> OpenTourGraphAsync(string slug, string prompt, string query = "")
    {
        using var made = await service.Http.PostAsync("/generate-graph", LocalService.Json(JsonSerializer.Serialize(new { prompt, model_id = BundledModel.Id, slug_identifier = slug })));
        Assert.Equal(HttpStatusCode.OK, made.StatusCode);
        var graph = await LocalService.JsonOf(await service.Http.GetAsync($"/jobs/{slug}/result"));
        var (page, errors) = await fixture.Browser.NewPageAsync();
        await page.EvaluateExpressionOnNewDocumentAsync($"localStorage.setItem('graphfunctions-secret', '{LocalService.Secret}')");
        await page.GoToAsync(new Uri(service.Address, $"/graphs/{slug}{query}").ToString());
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'", new PuppeteerSharp.WaitForFunctionOptions { Timeout = 60_000 });
        return (graph, page, errors);
    }

    [Fact]
    public async Task A_tour_graph_reads_without_hovering_and_search_finds_a_feature_by_label_and_by_address()
    {
        var (graph, page, errors) = await OpenTourGraphAsync("viewer-read", BundledModel.TourPrompts[0]);
        using var _ = graph;
        await using var opened = page;
        var features = FeaturesByInfluence(graph);

        // One row per layer of the demo (4), embeddings and logits: no phantom layer.
        Assert.Equal(["Emb", "L0", "L1", "L2", "L3", "Logit"], await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('.row-label')].map(t => t.textContent)"));
        // The most influential features carry their address and label as text.
        var strongest = features[0];
        string id = strongest.GetProperty("node_id").GetString()!;
        var parts = id.Split('_');
        string address = $"L{parts[0]} #{parts[1]} @{parts[2]}";
        string shown = await page.EvaluateFunctionAsync<string>("id => document.querySelector(`#node-labels [data-id=\"${id}\"] title`).textContent", id);
        Assert.StartsWith(address, shown, StringComparison.Ordinal);
        Assert.Contains(strongest.GetProperty("clerp").GetString()!, shown, StringComparison.Ordinal);

        // Search by address, then by a label: the node is found and a click on the result selects it.
        async Task<string[]> SearchAsync(string text)
        {
            await page.EvaluateExpressionAsync("document.querySelector('#search').value = ''");
            await page.TypeAsync("#search", text);
            return await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#search-results button')].map(b => b.dataset.id)");
        }
        Assert.Equal(id, (await SearchAsync(address)).First());
        string clerp = strongest.GetProperty("clerp").GetString()!;
        var byLabel = await SearchAsync(clerp);
        Assert.Contains(id, byLabel);
        Assert.All(byLabel, found => Assert.Contains(clerp, features.Concat(graph.RootElement.GetProperty("nodes").EnumerateArray())
            .First(n => n.GetProperty("node_id").GetString() == found).GetProperty("clerp").GetString(), StringComparison.OrdinalIgnoreCase));
        await page.ClickAsync($"#search-results button[data-id=\"{id}\"]");
        Assert.Contains($"clickedId={Uri.EscapeDataString(id)}", await page.EvaluateExpressionAsync<string>("location.href"), StringComparison.Ordinal);

        // Incoming links only: every highlighted edge ends at the selected node.
        await page.SelectAsync("#link-type", "incoming");
        var drawn = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#highlight line.edge.highlighted')].map(l => l.dataset.target)");
        Assert.Equal(graph.RootElement.GetProperty("links").EnumerateArray().Count(l => l.GetProperty("target").GetString() == id), drawn.Length);
        Assert.All(drawn, target => Assert.Equal(id, target));
        Assert.Contains("linkType=incoming", await page.EvaluateExpressionAsync<string>("location.href"), StringComparison.Ordinal);

        // The pruning slider keeps the nodes within the influence threshold (and embeddings, logits, the selected node).
        await page.EvaluateExpressionAsync("(() => { const s = document.querySelector('#pruning'); s.value = '0.3'; s.dispatchEvent(new Event('input')); })()");
        int kept = graph.RootElement.GetProperty("nodes").EnumerateArray().Count(n => n.GetProperty("node_id").GetString() == id
            || n.GetProperty("feature_type").GetString() is "embedding" or "logit" || n.GetProperty("influence").GetDouble() <= 0.3);
        Assert.Equal(kept, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node:not(.pruned)').length"));
        Assert.True(kept < graph.RootElement.GetProperty("nodes").GetArrayLength());
        Assert.Contains("pruningThreshold=0.3", await page.EvaluateExpressionAsync<string>("location.href"), StringComparison.Ordinal);
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-demo-read.png"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_density_slider_hides_the_features_that_fire_too_often_and_the_link_keeps_it()
    {
        var (graph, page, errors) = await OpenTourGraphAsync("viewer-density", BundledModel.TourPrompts[1]);
        using var _ = graph;
        await using var opened = page;
        await page.WaitForFunctionAsync("() => document.body.dataset.densities === 'loaded'");
        // Each feature's density as its dashboard gives it (the demo's train-demo wrote them from its corpus).
        var dashboards = (await service.Services.GetRequiredService<GraphFunctions.Workers.ModelHost>().GetAsync()).Dashboards;
        var nodes = graph.RootElement.GetProperty("nodes").EnumerateArray().ToList();
        double DensityOf(JsonElement node)
        {
            var parts = node.GetProperty("node_id").GetString()!.Split('_').Select(int.Parse).ToArray();
            return dashboards.Read(parts[0], parts[1])!["activation_frequency"]!.GetValue<double>();
        }
        var densities = nodes.Where(n => n.GetProperty("feature_type").GetString() == "cross layer transcoder").Select(DensityOf).Order().ToList();
        // A threshold between the graph's densities, so some features hide and some stay.
        double threshold = Math.Round(densities[densities.Count / 2], 2);
        int kept = nodes.Count(n => n.GetProperty("feature_type").GetString() != "cross layer transcoder" || DensityOf(n) <= threshold);
        Assert.InRange(kept, nodes.Count - densities.Count + 1, nodes.Count - 1);

        async Task CheckAsync() =>
            Assert.Equal(kept, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node:not(.pruned)').length"));
        await page.EvaluateFunctionAsync("t => { const s = document.querySelector('#density'); s.value = String(t); s.dispatchEvent(new Event('input')); }", threshold);
        await CheckAsync();
        string url = await page.EvaluateExpressionAsync<string>("location.href");
        Assert.Contains($"densityThreshold={threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)}", url, StringComparison.Ordinal);
        await page.GoToAsync(url);
        await page.WaitForFunctionAsync("() => document.body.dataset.densities === 'loaded'");
        await CheckAsync();
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_feature_from_another_prompt_is_steered_from_the_graph_page_tour_step_5()
    {
        // The tour's boost (README step 5): L1 #144 at position 5 of "The capital of France is", +19, makes the capital Accra.
        var (graph, page, errors) = await OpenTourGraphAsync("viewer-steer", BundledModel.TourPrompts[0]);
        using var _ = graph;
        await using var opened = page;
        var ids = graph.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node_id").GetString()!).ToHashSet();

        await page.TypeAsync("#steer-add [name=layer]", "1");
        await page.TypeAsync("#steer-add [name=index]", "144");
        await page.TypeAsync("#steer-add [name=position]", "5");
        await page.EvaluateExpressionAsync("document.querySelector('#steer-add [name=delta]').value = '19'");
        await page.ClickAsync("#steer-add-button");
        Assert.Contains("steer=1_144_5_19", await page.EvaluateExpressionAsync<string>("location.href"), StringComparison.Ordinal);
        await page.EvaluateExpressionAsync("document.querySelector('#steer-tokens').value = '1'");
        await page.ClickAsync("#steer-run");
        await page.WaitForSelectorAsync("#steer-result .generation.steered .continuation", new PuppeteerSharp.WaitForSelectorOptions { Timeout = 60_000 });
        Assert.Equal("␣Paris", await page.EvaluateExpressionAsync<string>("document.querySelector('#steer-result .generation.default .continuation').textContent"));
        Assert.Equal("␣Accra", await page.EvaluateExpressionAsync<string>("document.querySelector('#steer-result .generation.steered .continuation').textContent"));

        // A pinned address that is not a node of this graph is kept for steering, said so, and survives a reload.
        string elsewhere = Enumerable.Range(0, 512).Select(i => $"3_{i}_5").First(a => !ids.Contains(a));
        await page.GoToAsync(new Uri(service.Address, $"/graphs/viewer-steer?pinnedIds={elsewhere}").ToString());
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'");
        string row = await page.EvaluateFunctionAsync<string>("key => document.querySelector(`#steer-features li[data-key=\"${key}\"]`)?.textContent ?? ''", elsewhere);
        Assert.Contains("not in this graph", row, StringComparison.Ordinal);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_feature_route_serves_a_demo_features_dashboard()
    {
        var model = await service.Services.GetRequiredService<GraphFunctions.Workers.ModelHost>().GetAsync();
        using var response = await service.Http.GetAsync("/features/1/144");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var feature = await LocalService.JsonOf(response);
        var root = feature.RootElement;
        Assert.Equal((1, 144), (root.GetProperty("layer").GetInt32(), root.GetProperty("index").GetInt32()));
        Assert.Equal(model.Labels.Of(1, 144), root.GetProperty("label").GetString());
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(root.GetProperty("examples_quantiles").GetRawText()), model.Dashboards.Read(1, 144)!["examples_quantiles"]));
        Assert.NotEmpty(root.GetProperty("examples_quantiles")[0].GetProperty("examples").EnumerateArray());
        Assert.Equal(DemoDashboards.LogitTokens, root.GetProperty("top_logits").GetArrayLength());
        using var beyond = await service.Http.GetAsync("/features/1/512");
        Assert.Equal(HttpStatusCode.NotFound, beyond.StatusCode);
    }

    [Fact]
    public async Task The_feature_panel_shows_a_selected_features_top_examples_with_the_firing_token_marked()
    {
        var (graph, page, errors) = await OpenTourGraphAsync("viewer-feature", BundledModel.TourPrompts[0]);
        using var _ = graph;
        await using var opened = page;
        string id = FeaturesByInfluence(graph)[0].GetProperty("node_id").GetString()!;
        var parts = id.Split('_').Select(int.Parse).ToArray();
        var expected = (await service.Services.GetRequiredService<GraphFunctions.Workers.ModelHost>().GetAsync()).Dashboards.Read(parts[0], parts[1])!;
        var examples = expected["examples_quantiles"]![0]!["examples"]!.AsArray();

        await page.ClickAsync($"#nodes [data-id=\"{id}\"]");
        await page.WaitForSelectorAsync("#feature-panel .examples, #feature-panel .feature-missing", new PuppeteerSharp.WaitForSelectorOptions { Timeout = 20_000 });
        var shown = await page.EvaluateExpressionAsync<string[][]>("[...document.querySelectorAll('#feature-panel .example')].map(li => [...li.querySelectorAll('.token')].map(t => t.textContent))");
        var peaks = await page.EvaluateExpressionAsync<int[]>("[...document.querySelectorAll('#feature-panel .example')].map(li => [...li.querySelectorAll('.token')].findIndex(t => t.classList.contains('peak')))");
        Assert.Equal(examples.Count, shown.Length);
        for (int e = 0; e < examples.Count; e++)
        {
            var tokens = examples[e]!["tokens"]!.AsArray().Select(t => Shown(t!.GetValue<string>())).ToArray();
            var acts = examples[e]!["tokens_acts_list"]!.AsArray().Select(a => a!.GetValue<double>()).ToList();
            Assert.Equal(tokens, shown[e]);
            Assert.Equal(acts.IndexOf(acts.Max()), peaks[e]);
        }
        Assert.Equal(expected["top_logits"]!.AsArray().Select(t => Shown(t!.GetValue<string>())),
            await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#feature-panel .top-logits .token')].map(t => t.textContent)"));
        await page.EvaluateExpressionAsync("document.querySelector('#feature-panel').scrollIntoView()");
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-demo-feature.png"));
        Assert.Empty(errors);
    }

    /// <summary>
    /// The subgraph scores as Neuronpedia defines them, computed here from the graph JSON with dense
    /// float64 matrices: unpinned features' outgoing weights moved to their error node, then
    /// replacement and completeness of the row-normalised |A| with the logits' probabilities as weights.
    /// </summary>
    private static (double Replacement, double Completeness) SubgraphScores(JsonElement graph, IReadOnlySet<string> pinned)
    {
        var nodes = graph.GetProperty("nodes").EnumerateArray().ToList();
        var at = nodes.Select((n, i) => (Id: n.GetProperty("node_id").GetString()!, i)).ToDictionary(p => p.Id, p => p.i);
        string Kind(int i) => nodes[i].GetProperty("feature_type").GetString()!;
        bool Dropped(int i) => Kind(i) == "cross layer transcoder" && !pinned.Contains(nodes[i].GetProperty("node_id").GetString()!);
        int n = nodes.Count;
        var a = new double[n, n];   // [target, source]
        foreach (var link in graph.GetProperty("links").EnumerateArray())
            a[at[link.GetProperty("target").GetString()!], at[link.GetProperty("source").GetString()!]] += link.GetProperty("weight").GetDouble();
        for (int f = 0; f < n; f++)
        {
            if (!Dropped(f)) continue;
            int error = Enumerable.Range(0, n).FirstOrDefault(e => Kind(e) == "mlp reconstruction error"
                && nodes[e].GetProperty("layer").GetString() == nodes[f].GetProperty("layer").GetString()
                && nodes[e].GetProperty("ctx_idx").GetInt32() == nodes[f].GetProperty("ctx_idx").GetInt32(), -1);
            for (int t = 0; t < n; t++)
            {
                if (error >= 0) a[t, error] += a[t, f];
                a[t, f] = 0;
                a[f, t] = 0;
            }
        }
        var normalised = new double[n, n];
        for (int t = 0; t < n; t++)
        {
            double sum = Math.Max(1e-10, Enumerable.Range(0, n).Sum(s => Math.Abs(a[t, s])));
            for (int s = 0; s < n; s++) normalised[t, s] = Math.Abs(a[t, s]) / sum;
        }
        var w = nodes.Select(node => node.GetProperty("feature_type").GetString() == "logit" ? node.GetProperty("token_prob").GetDouble() : 0).ToArray();
        var influence = new double[n];
        var current = (double[])w.Clone();
        for (int step = 0; step < 1000 && current.Any(v => v != 0); step++)
        {
            var next = new double[n];
            for (int t = 0; t < n; t++)
                if (current[t] != 0) for (int s = 0; s < n; s++) next[s] += current[t] * normalised[t, s];
            for (int i = 0; i < n; i++) influence[i] += next[i];
            current = next;
        }
        double Sum(string kind) => Enumerable.Range(0, n).Where(i => Kind(i) == kind).Sum(i => influence[i]);
        double tokens = Sum("embedding"), errors = Sum("mlp reconstruction error");
        double weighted = 0, total = 0;
        for (int i = 0; i < n; i++)
        {
            double fromErrors = Enumerable.Range(0, n).Where(s => Kind(s) == "mlp reconstruction error").Sum(s => normalised[i, s]);
            weighted += (1 - fromErrors) * (influence[i] + w[i]);
            total += influence[i] + w[i];
        }
        return (tokens / (tokens + errors), weighted / total);
    }

    /// <summary>
    /// The reduced subgraph as Neuronpedia's subgraph view computes it, here from the graph JSON: boxes
    /// are the supernode (of <paramref name="grouped"/>, named <paramref name="name"/>) and the other
    /// pins; a link s→t adds (w / E(t)) · u(t), E the |input| from outside t's box, u = E / |all input|
    /// normalised over t's box; links inside a box are dropped.
    /// </summary>
    private static Dictionary<(string Source, string Target), double> SubgraphReduction(JsonElement graph, string[] pins, string[] grouped, string name)
    {
        string BoxOf(string id) => grouped.Contains(id) ? $"supernode:{name}" : id;
        var links = graph.GetProperty("links").EnumerateArray()
            .Select(l => (S: l.GetProperty("source").GetString()!, T: l.GetProperty("target").GetString()!, W: l.GetProperty("weight").GetDouble())).ToList();
        var external = pins.ToDictionary(t => t, t => links.Where(l => l.T == t && !(grouped.Contains(t) && BoxOf(l.S) == BoxOf(t))).Sum(l => Math.Abs(l.W)));
        var weighting = pins.ToDictionary(t => t, t =>
        {
            double all = links.Where(l => l.T == t).Sum(l => Math.Abs(l.W));
            return external[t] > 0 && all > 0 ? external[t] / all : 0;
        });
        var reduced = new Dictionary<(string, string), double>();
        foreach (var (s, t, w) in links.Where(l => pins.Contains(l.S) && pins.Contains(l.T) && BoxOf(l.S) != BoxOf(l.T)))
        {
            double boxTotal = pins.Where(p => BoxOf(p) == BoxOf(t)).Sum(p => weighting[p]);
            double share = boxTotal > 0 ? weighting[t] / boxTotal : 0;
            reduced[(BoxOf(s), BoxOf(t))] = reduced.GetValueOrDefault((BoxOf(s), BoxOf(t))) + (external[t] > 0 ? w / external[t] * share : 0);
        }
        return reduced;
    }

    [Fact]
    public async Task Pinned_nodes_grouped_into_a_supernode_form_a_subgraph_whose_scores_and_view_survive_a_reload()
    {
        var (graph, page, errors) = await OpenTourGraphAsync("viewer-subgraph", BundledModel.TourPrompts[0]);
        using var _ = graph;
        await using var opened = page;
        var pins = FeaturesByInfluence(graph).Take(3).Select(n => n.GetProperty("node_id").GetString()!).ToArray();
        foreach (string id in pins)
        {
            await page.Keyboard.DownAsync("Shift");
            await page.ClickAsync($"#nodes [data-id=\"{id}\"]");
            await page.Keyboard.UpAsync("Shift");
        }
        // Group the first two as a supernode.
        await page.ClickAsync($"#subgraph-nodes li[data-id=\"{pins[0]}\"] .group-check");
        await page.ClickAsync($"#subgraph-nodes li[data-id=\"{pins[1]}\"] .group-check");
        await page.TypeAsync("#supernode-name", "capital");
        await page.ClickAsync("#supernode-group");

        async Task CheckAsync()
        {
            var expected = SubgraphScores(graph.RootElement, pins.ToHashSet());
            double shownReplacement = double.Parse(await page.EvaluateExpressionAsync<string>("document.querySelector('#subgraph-scores').dataset.replacement"), System.Globalization.CultureInfo.InvariantCulture);
            double shownCompleteness = double.Parse(await page.EvaluateExpressionAsync<string>("document.querySelector('#subgraph-scores').dataset.completeness"), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(expected.Replacement, shownReplacement, 1e-9);
            Assert.Equal(expected.Completeness, shownCompleteness, 1e-9);
            Assert.True(expected.Replacement < graph.RootElement.GetProperty("metadata").GetProperty("scores").GetProperty("replacement_score").GetDouble(),
                "three features explain less than the whole graph");
            Assert.Equal(pins.Order(), (await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#subgraph-nodes li')].map(li => li.dataset.id)")).Order());
            Assert.Equal(["capital"], await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#supernodes li')].map(li => li.dataset.name)"));
            // The pinned subgraph's edges are drawn.
            var drawn = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#highlight line.edge.subgraph')].map(l => l.dataset.source + ' ' + l.dataset.target)");
            var expectedEdges = graph.RootElement.GetProperty("links").EnumerateArray()
                .Select(l => (S: l.GetProperty("source").GetString()!, T: l.GetProperty("target").GetString()!))
                .Where(l => pins.Contains(l.S) && pins.Contains(l.T)).Select(l => $"{l.S} {l.T}").Order();
            Assert.Equal(expectedEdges, drawn.Order());
            // The reduced subgraph: the supernode and the third pin as boxes, linked by their share of each other's input.
            Assert.Equal(new[] { "supernode:capital", pins[2] }.Order(),
                (await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#subgraph-diagram .subgraph-box')].map(b => b.dataset.id)")).Order());
            var expectedLinks = SubgraphReduction(graph.RootElement, pins, [pins[0], pins[1]], "capital").Where(l => l.Value != 0).ToList();
            var shownLinks = await page.EvaluateExpressionAsync<string[][]>("[...document.querySelectorAll('#subgraph-diagram .subgraph-link')].map(l => [l.dataset.source, l.dataset.target, l.dataset.weight])");
            Assert.NotEmpty(expectedLinks);
            Assert.Equal(expectedLinks.Count, shownLinks.Length);
            foreach (var link in shownLinks)
                Assert.Equal(expectedLinks.Single(l => l.Key == (link[0], link[1])).Value, double.Parse(link[2], System.Globalization.CultureInfo.InvariantCulture), 1e-9);
        }
        await CheckAsync();
        string url = await page.EvaluateExpressionAsync<string>("location.href");
        Assert.Contains("supernodes=", url, StringComparison.Ordinal);
        await page.GoToAsync(url);
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'");
        await CheckAsync();
        await page.EvaluateExpressionAsync("document.querySelector('#subgraph-panel').scrollIntoView()");
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-demo-subgraph.png"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_graph_made_by_the_cli_opens_from_a_file_and_a_malformed_file_gets_a_message()
    {
        // The CLI's graph of a tour prompt on the bundled demo, written to a file as a researcher would.
        using var folder = new Attribution.Tests.Support.TempFolder("gf-open-file");
        string made = folder["tour.json"];
        var (exit, output) = CliProcess.Run("graph", "--prompt", BundledModel.TourPrompts[2], "--out", made);
        Assert.True(exit == 0, output);
        using var graph = JsonDocument.Parse(await File.ReadAllTextAsync(made));

        var (page, errors) = await fixture.Browser.NewPageAsync();
        await using var opened = page;
        await page.EvaluateExpressionOnNewDocumentAsync($"localStorage.setItem('graphfunctions-secret', '{LocalService.Secret}')");
        await page.GoToAsync(new Uri(service.Address, "/viewer").ToString());
        await Task.WhenAll(page.WaitForNavigationAsync(), page.ClickAsync("#open-graph-file"));
        await page.WaitForFunctionAsync("() => document.body.dataset.waitingForFile === 'true'");

        // Files that are not graphs: the message names the first problem, nothing is drawn.
        async Task RefusedAsync(string name, string content, string problem)
        {
            await File.WriteAllTextAsync(folder[name], content);
            await (await page.QuerySelectorAsync("#open-file")).UploadFileAsync(folder[name]);
            await page.WaitForFunctionAsync("name => document.querySelector('#graph-message').textContent.startsWith(name)", name);
            Assert.Equal(problem, await page.EvaluateExpressionAsync<string>("document.querySelector('#graph-message').textContent"));
            Assert.True(await page.EvaluateExpressionAsync<bool>("document.querySelector('#graph-message').classList.contains('error')"));
            Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node').length"));
        }
        // Against Neuronpedia's graph schema: a field the schema requires, a field of the wrong type.
        await RefusedAsync("unschematic.json", """{"metadata": {"prompt_tokens": ["a", "b"]}, "nodes": [], "links": []}""",
            "unschematic.json is not a graph this viewer can draw: the file: Instance does not have required property \"qParams\".");
        var wrongType = JsonNode.Parse(await File.ReadAllTextAsync(made))!;
        wrongType["nodes"]![1]!["ctx_idx"] = "first";
        await RefusedAsync("wrong-type.json", wrongType.ToJsonString(),
            "wrong-type.json is not a graph this viewer can draw: nodes[1].ctx_idx: Instance type \"string\" is invalid. Expected \"integer\".");
        // What the schema cannot say: a position past the prompt.
        var pastPrompt = JsonNode.Parse(await File.ReadAllTextAsync(made))!;
        int tokens = pastPrompt["metadata"]!["prompt_tokens"]!.AsArray().Count;
        pastPrompt["nodes"]![1]!["ctx_idx"] = tokens + 3;
        await RefusedAsync("past-prompt.json", pastPrompt.ToJsonString(),
            $"past-prompt.json is not a graph this viewer can draw: nodes[1].ctx_idx must be a position of the prompt (0-{tokens - 1})");
        await File.WriteAllTextAsync(folder["text.json"], "not json at all");
        await (await page.QuerySelectorAsync("#open-file")).UploadFileAsync(folder["text.json"]);
        await page.WaitForFunctionAsync("() => document.querySelector('#graph-message').textContent.startsWith('text.json is not JSON')");

        // The CLI's graph, with a view saved in its qParams as circuit-tracer's server saves one: every node drawn, the view shown.
        string pinned = FeaturesByInfluence(graph)[0].GetProperty("node_id").GetString()!;
        var withView = JsonNode.Parse(await File.ReadAllTextAsync(made))!;
        withView["qParams"]!["pinnedIds"] = new JsonArray(pinned);
        withView["qParams"]!["linkType"] = "incoming";
        withView["metadata"]!["feature_details"] = new JsonObject { ["neuronpedia_source_set"] = "demo-transcoders", ["feature_json_base_url"] = "https://features.example/demo/" };
        await File.WriteAllTextAsync(folder["with-view.json"], withView.ToJsonString());
        await (await page.QuerySelectorAsync("#open-file")).UploadFileAsync(folder["with-view.json"]);
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'", new PuppeteerSharp.WaitForFunctionOptions { Timeout = 60_000 });
        Assert.Equal(graph.RootElement.GetProperty("nodes").GetArrayLength(), await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node').length"));
        Assert.Equal([pinned], await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#subgraph-nodes li')].map(li => li.dataset.id)"));
        Assert.Equal("incoming", await page.EvaluateExpressionAsync<string>("document.querySelector('#link-type').value"));
        // Its metadata.feature_details give a feature's dashboards online as links (the page fetches nothing from elsewhere).
        await page.ClickAsync($"#nodes [data-id=\"{pinned}\"]");
        await page.WaitForSelectorAsync("#feature-panel .online-dashboard");
        var parts = pinned.Split('_');
        long feature = graph.RootElement.GetProperty("nodes").EnumerateArray().First(n => n.GetProperty("node_id").GetString() == pinned).GetProperty("feature").GetInt64();
        Assert.Equal([$"https://www.neuronpedia.org/{graph.RootElement.GetProperty("metadata").GetProperty("scan").GetString()}/{parts[0]}-demo-transcoders/{parts[1]}", $"https://features.example/demo/{feature}.json"],
            await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#feature-panel .online-dashboard')].map(a => a.href)"));
        Assert.EndsWith("/graphs/.file", await page.EvaluateExpressionAsync<string>("location.pathname"), StringComparison.Ordinal);
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-demo-open-file.png"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_view_command_serves_graph_files_with_their_dashboards_and_saves_labels_beside_them()
    {
        // A folder of graphs as a researcher keeps them: one made by the CLI; the demo's dashboards as a features folder.
        using var folder = new Attribution.Tests.Support.TempFolder("gf-view");
        var (exit, output) = CliProcess.Run("graph", "--prompt", BundledModel.TourPrompts[0], "--out", folder["france.json"]);
        Assert.True(exit == 0, output);
        using var graph = JsonDocument.Parse(await File.ReadAllTextAsync(folder["france.json"]));
        string features = Path.Combine(Path.GetDirectoryName(BundledModel.Locate(null).TranscoderConfig)!, Attribution.Transcoders.FeatureDashboards.FolderName);
        using var view = CliProcess.Start("view", folder.Path, "--port", "0", "--features", features);
        string jobsPage = (await view.WaitForLineAsync(GraphFunctions.Api.GraphFileViewer.ReadyAnnouncement, TimeSpan.FromSeconds(60))).Split(' ')[0];

        var (page, errors) = await fixture.Browser.NewPageAsync();
        await using var opened = page;
        await page.GoToAsync(jobsPage);
        await page.WaitForSelectorAsync("tr[data-job-id=\"france\"] a");
        Assert.True(await page.EvaluateExpressionAsync<bool>("document.querySelector('#new-graph').hidden"), "no form without a model");
        // A graph written into the folder later (gzipped) appears on a later refresh.
        await using (var gz = new System.IO.Compression.GZipStream(File.Create(folder["later.json.gz"]), System.IO.Compression.CompressionLevel.Fastest))
            await gz.WriteAsync(await File.ReadAllBytesAsync(folder["france.json"]));
        await page.WaitForSelectorAsync("tr[data-job-id=\"later\"] a", new PuppeteerSharp.WaitForSelectorOptions { Timeout = 20_000 });

        await Task.WhenAll(page.WaitForNavigationAsync(), page.ClickAsync("tr[data-job-id=\"france\"] a"));
        await page.WaitForFunctionAsync("() => document.body.dataset.ready === 'true'", new PuppeteerSharp.WaitForFunctionOptions { Timeout = 60_000 });
        Assert.Equal(graph.RootElement.GetProperty("nodes").GetArrayLength(), await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#nodes .node').length"));
        Assert.NotNull(await page.QuerySelectorAsync("#steer-unavailable"));

        // The feature panel reads the features folder.
        string id = FeaturesByInfluence(graph)[0].GetProperty("node_id").GetString()!;
        var parts = id.Split('_').Select(int.Parse).ToArray();
        int examples = Attribution.Transcoders.FeatureDashboards.Load(features).Read(parts[0], parts[1])!["examples_quantiles"]![0]!["examples"]!.AsArray().Count;
        await page.ClickAsync($"#nodes [data-id=\"{id}\"]");
        await page.WaitForSelectorAsync("#feature-panel .examples, #feature-panel .feature-missing", new PuppeteerSharp.WaitForSelectorOptions { Timeout = 20_000 });
        Assert.Equal(examples, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#feature-panel .example').length"));

        // A label saved with the graph lands beside its file and comes back on a plain link.
        await page.ClickAsync("#pin");
        await page.EvaluateExpressionAsync("document.querySelector('#label-input').value = ''");
        await page.TypeAsync("#label-input", "says the capital");
        await page.ClickAsync("#label-form button");
        await page.WaitForFunctionAsync("() => document.querySelector('#label-status').textContent === 'saved with the graph'");
        using (var saved = JsonDocument.Parse(await File.ReadAllTextAsync(folder["france" + GraphFunctions.Api.GraphFileLibrary.AnnotationsSuffix])))
        {
            Assert.Equal([id, "says the capital"], saved.RootElement.GetProperty("clerps")[0].EnumerateArray().Select(e => e.GetString()!));
            Assert.Equal([id], saved.RootElement.GetProperty("pinnedIds").EnumerateArray().Select(e => e.GetString()!));
        }
        await page.GoToAsync(new Uri(new Uri(jobsPage), "/graphs/france").ToString());
        await page.WaitForFunctionAsync("() => document.body.dataset.annotations === 'loaded'");
        Assert.Contains("says the capital", await page.EvaluateFunctionAsync<string>("id => document.querySelector(`#node-labels [data-id=\"${id}\"] title`).textContent", id), StringComparison.Ordinal);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_label_edited_in_the_page_is_saved_with_the_graph_and_shown_after_a_reload()
    {
        var (graph, page, errors) = await OpenTourGraphAsync("viewer-label", BundledModel.TourPrompts[3]);
        using var _ = graph;
        await using var opened = page;
        await page.WaitForFunctionAsync("() => document.body.dataset.annotations === 'loaded'");
        string id = FeaturesByInfluence(graph)[0].GetProperty("node_id").GetString()!;
        await page.ClickAsync($"#nodes [data-id=\"{id}\"]");
        await page.ClickAsync("#pin");
        await page.EvaluateExpressionAsync("document.querySelector('#label-input').value = ''");
        await page.TypeAsync("#label-input", "copies the first name");
        await page.ClickAsync("#label-form button");
        await page.WaitForFunctionAsync("() => document.querySelector('#label-status').textContent === 'saved with the graph'");

        // A plain link to the graph (no view in the URL): the saved label and pin come back.
        await page.GoToAsync(new Uri(service.Address, "/graphs/viewer-label").ToString());
        await page.WaitForFunctionAsync("() => document.body.dataset.annotations === 'loaded'");
        Assert.Contains("copies the first name", await page.EvaluateFunctionAsync<string>("id => document.querySelector(`#node-labels [data-id=\"${id}\"] title`).textContent", id), StringComparison.Ordinal);
        Assert.True(await page.EvaluateFunctionAsync<bool>("id => document.querySelector(`#nodes [data-id=\"${id}\"]`).classList.contains('pinned')", id));
        using var saved = await LocalService.JsonOf(await service.Http.GetAsync("/jobs/viewer-label/annotations"));
        Assert.Equal([id, "copies the first name"], saved.RootElement.GetProperty("clerps")[0].EnumerateArray().Select(t => t.GetString()));

        // The label is in the link too, as Neuronpedia's clerps: keyed by its feature id (layer, feature number, position).
        var node = graph.RootElement.GetProperty("nodes").EnumerateArray().First(n => n.GetProperty("node_id").GetString() == id);
        string featureId = $"{node.GetProperty("layer").GetString()}_{node.GetProperty("feature").GetInt64()}_{node.GetProperty("ctx_idx").GetInt32()}";
        var clerps = JsonNode.Parse(await page.EvaluateExpressionAsync<string>("new URLSearchParams(location.search).get('clerps')"))!.AsArray();
        Assert.Equal([featureId, "copies the first name"], clerps.Single()!.AsArray().Select(t => t!.GetValue<string>()));
        // A link's own label wins over the saved one.
        string linked = JsonSerializer.Serialize(new[] { new[] { featureId, "from a shared link" } });
        await page.GoToAsync(new Uri(service.Address, $"/graphs/viewer-label?clerps={Uri.EscapeDataString(linked)}").ToString());
        await page.WaitForFunctionAsync("() => document.body.dataset.annotations === 'loaded'");
        Assert.Contains("from a shared link", await page.EvaluateFunctionAsync<string>("id => document.querySelector(`#node-labels [data-id=\"${id}\"] title`).textContent", id), StringComparison.Ordinal);
        Assert.Empty(errors);
    }
}
