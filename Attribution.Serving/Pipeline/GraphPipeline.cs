namespace Attribution.Pipeline;

using System.Diagnostics;
using Attribution.Graphs;
using Attribution.Loading;
using Attribution.Tracing;

/// <summary>What one graph took: attribution phases, then prune and JSON, the graph's size, and its metadata's warnings.</summary>
public sealed record GraphSummary(PhaseTimings Timings, int ActiveFeatures, int SelectedFeatures, int KeptNodes, int Logits, GraphScores Scores, IReadOnlyList<string> Warnings);

/// <summary>
/// Prompt → Neuronpedia graph JSON, in process: tokenize, attribute (docs/algorithm.md), prune, score and
/// write (docs/graph-format.md). The CLI calls this (and benchmarks and tests, as the reference); the Durable
/// orchestration computes the rows in activities and finishes with <see cref="WriteGraph"/>.
/// </summary>
public static class GraphPipeline
{
    public const string PrunePhase = "prune";
    public const string JsonPhase = "json";
    public const string HeadLoadingsPhase = "head loadings";
    public const string QkTracingPhase = "qk tracing";

    public static GraphSummary Generate(LoadedModel model, GraphRequest request, Stream output, IProgress<AttributionProgress>? progress = null, GeneratorInfo? generator = null)
    {
        var tokens = model.Tokenize(request.Prompt);
        // What the batches freed stays with the process for its next graph (a CLI exits; the service's gate releases it once idle).
        using var result = Attributor.Attribute(model.Replacement, tokens, request.Attribution, progress);
        model.ObserveActivity(result.Graph.Active, tokens.Length);   // later graphs' memory estimates
        return WriteGraph(model, result.Graph, request, output, result.Timings, generator);
    }

    /// <summary>Prunes <paramref name="graph"/>, scores it and writes its JSON to <paramref name="output"/>.</summary>
    public static GraphSummary WriteGraph(LoadedModel model, AttributionGraph graph, GraphRequest request, Stream output, PhaseTimings? timings = null, GeneratorInfo? generator = null)
    {
        timings ??= new PhaseTimings();
        using var pruning = timings.Time(PrunePhase, () => Pruning.Prune(graph, request.NodeThreshold, request.EdgeThreshold));
        var scores = timings.Time(PrunePhase, () => GraphScores.Compute(graph));
        var metadata = Metadata(model, graph, request, scores, generator ?? GeneratorInfo.Default);
        var clock = Stopwatch.StartNew();
        NeuronpediaGraphWriter.Write(output, graph, pruning, metadata, id => model.Tokenizer.DecodeToken((int)id),
            request.TracesAttention ? links => Annotate(model, graph, pruning, links, request, timings) : null);
        timings.Add(JsonPhase, clock.Elapsed.TotalSeconds - timings[HeadLoadingsPhase] - timings[QkTracingPhase]);
        return new GraphSummary(timings, graph.Active.Count, graph.FeatureCount, pruning.NodeMask.Count(k => k), graph.LogitTokens.Length, scores, metadata.Warnings);
    }

    /// <summary>
    /// Head loadings of the kept links (docs/algorithm.md §10) and QK tracing of the most influential
    /// nodes (§11). The prompt is prepared again (the attribution's own is gone by now, on another
    /// worker perhaps): the same tokens give the same active features and logit targets.
    /// </summary>
    public static GraphAnnotations Annotate(LoadedModel model, AttributionGraph graph, PruneResult pruning,
        IReadOnlyList<(int Source, int Target, float Weight)> keptLinks, GraphRequest request, PhaseTimings timings)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(pruning);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(timings);
        var replacement = model.Replacement;
        using var prompt = PreparedPrompt.Prepare(replacement, graph.InputTokens);
        using var targets = LogitTargets.For(prompt.LastLogits, replacement.Model.Unembedding, request.Attribution);
        if (!targets.TokenIds.SequenceEqual(graph.LogitTokens) || prompt.Active.Count != graph.Active.Count)
            throw new InvalidOperationException("the prompt prepared again does not match the graph's (active features or logit targets differ)");
        var promptLayout = new NodeLayout(prompt.Active.Count, graph.NLayers, graph.NPos, targets.Count);
        // Graph nodes → the prompt's layout: selected features to their active index, the rest shifted past every active feature.
        int InPrompt(int node) => node < graph.FeatureCount ? (int)graph.SelectedFeatures[node]
            : node < graph.LogitStart ? node - graph.FeatureCount + promptLayout.ErrorStart
            : node - graph.LogitStart + promptLayout.LogitStart;

        var heads = timings.Time(HeadLoadingsPhase, () =>
        {
            // Only links into nodes with rows, from nodes with outputs (an every-pair graph lists the others too, at 0).
            var links = keptLinks.Where(l => graph.RowOf(l.Target) >= 0 && l.Source < graph.SourceCount).ToList();
            var loadings = HeadLoadings.Compute(replacement, prompt, targets, [.. links.Select(l => (InPrompt(l.Target), InPrompt(l.Source)))],
                request.BatchSize, withQueryPositions: request.QkTracing);
            return links.Select((link, i) => (link, i)).ToDictionary(x => (x.link.Source, x.link.Target), x => loadings[x.i]);
        });
        var qk = request.QkTracing ? timings.Time(QkTracingPhase, () => TraceQk(replacement, graph, pruning, keptLinks, heads, prompt, InPrompt, request)) : null;
        return new GraphAnnotations(heads, qk);
    }

    /// <summary>
    /// QK tracing (docs/algorithm.md §11). The traced nodes: those with a kept link from another
    /// position, logits first, then by influence, the top qk_top_fraction of them (at most
    /// <see cref="QkAttributions.MaxScores"/>). Each explains
    /// one score: its strongest such link's top head, at the query position where that head's part
    /// entered and the link source's position as the key. Contributors are the graph's nodes before
    /// pruning (selected features, errors, tokens).
    /// </summary>
    private static Dictionary<int, QkNodeResult> TraceQk(ReplacementModel replacement, AttributionGraph graph, PruneResult pruning,
        IReadOnlyList<(int Source, int Target, float Weight)> keptLinks, Dictionary<(int Source, int Target), EdgeHeads> heads,
        PreparedPrompt prompt, Func<int, int> inPrompt, GraphRequest request)
    {
        int PositionOf(int node) => graph.Layout.Locate(node) switch
        {
            { Kind: NodeKind.Feature } place => (int)graph.Active.Positions[graph.SelectedFeatures[place.Index]],
            var place => place.Position,
        };
        var strongest = keptLinks
            .Where(l => heads.TryGetValue((l.Source, l.Target), out var h) && PositionOf(l.Source) != PositionOf(l.Target) && h.Ranked().First().Part != 0)
            .GroupBy(l => l.Target)
            .Select(g => g.MaxBy(l => Math.Abs(l.Weight)))
            .OrderBy(l => l.Target >= graph.LogitStart ? 0 : 1).ThenBy(l => pruning.CumulativeScores[l.Target])
            .ToList();
        int tracedCount = Math.Min(QkAttributions.MaxScores, (int)Math.Ceiling(request.QkTopFraction * strongest.Count));
        var traced = strongest.Take(tracedCount).Select(l =>
        {
            var loading = heads[(l.Source, l.Target)];
            var (layer, head, _) = loading.Ranked().First();
            return (Node: l.Target, Score: new QkScore(layer, head, loading.QueryPositions![layer, head], PositionOf(l.Source)));
        }).ToList();
        if (traced.Count == 0) return [];

        // A node written at or after the deepest traced layer reaches no traced score: its parts are zero, unlisted.
        int deepest = traced.Max(t => t.Score.Layer);
        int[] sources = [.. Enumerable.Range(0, graph.SourceCount).Where(node => graph.Layout.Locate(node) switch
        {
            { Kind: NodeKind.Feature } place => graph.Active.Layers[graph.SelectedFeatures[place.Index]] < deepest,
            { Kind: NodeKind.Error } place => place.Layer < deepest,
            _ => true,
        }).Select(inPrompt)];
        var distinct = traced.Select(t => t.Score).Distinct().ToList();
        var decompositions = QkAttributions.Compute(replacement, prompt, sources, distinct, request.BatchSize);
        try
        {
            var byScore = distinct.Zip(decompositions).ToDictionary(x => x.First, x => Summarize(x.Second, request.QkTopK));
            return traced.ToDictionary(t => t.Node, t => byScore[t.Score]);
        }
        finally
        {
            foreach (var d in decompositions) d.Dispose();
        }
    }

    /// <summary>
    /// The top pairs and marginals of one score, contributors in the prompt's layout. Terms that are
    /// exactly zero (a node after the query's or key's position, or at a layer the head never reads)
    /// are left out: they explain nothing.
    /// </summary>
    private static QkNodeResult Summarize(QkDecomposition d, int topK)
    {
        static (int, double)[] Top(int[] sources, double[] marginals, int k) =>
            [.. marginals.Select((m, i) => (sources[i], m)).Where(x => x.m != 0).OrderByDescending(x => Math.Abs(x.m)).Take(k)];
        return new QkNodeResult(d.At, d.Score,
            [.. d.TopPairs(topK).Where(p => p.Term != 0).Select(p => (d.Sources[p.Query], d.Sources[p.Key], p.Term))],
            Top(d.Sources, d.QueryMarginals(), topK), Top(d.Sources, d.KeyMarginals(), topK),
            d.QueryUnlistedMarginal + d.QueryConstantMarginal, d.KeyUnlistedMarginal + d.KeyConstantMarginal);
    }

    public static GraphMetadata Metadata(LoadedModel model, AttributionGraph graph, GraphRequest request, GraphScores scores, GeneratorInfo generator) => new()
    {
        Slug = request.Slug,
        Scan = model.Scan,
        PromptTokens = graph.InputTokens.Select(model.Tokenizer.DecodeToken).ToList(),
        Prompt = model.Tokenizer.Decode(graph.InputTokens),
        NodeThreshold = request.NodeThreshold,
        EdgeThreshold = request.EdgeThreshold,
        Info = new GraphInfo(
            CreatorName: string.IsNullOrEmpty(request.UserId) ? "Anonymous" : request.UserId,
            CreatorUrl: "https://neuronpedia.org",
            SourceUrls: model.SourceUrls,
            TranscoderSet: model.TranscoderSet,
            GeneratorName: generator.Name,
            GeneratorVersion: generator.Version,
            GeneratorUrl: generator.Url,
            CreateTimeMs: DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()),
        Generation = new GenerationSettings(request.MaxNLogits, request.DesiredLogitProb, request.BatchSize, request.MaxFeatureNodes),
        Scores = scores,
        Labels = model.Labels,
        Warnings = model.UnseenIn(graph.InputTokens).Warnings,
        LogitDifferences = (request.Targets ?? []).Select((target, place) => (target, place)).Where(t => t.target.Minus is not null)
            .ToDictionary(t => t.target.NodeToken(t.place, model.Replacement.Model.Unembedding.shape[0]), t => t.target),
    };
}
