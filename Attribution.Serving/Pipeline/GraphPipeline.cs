namespace Attribution.Pipeline;

using System.Diagnostics;
using Attribution.Graphs;
using Attribution.Loading;
using Attribution.Tracing;

/// <summary>What one graph took: attribution phases, then prune and JSON, the graph's size, and its metadata's warnings.</summary>
public sealed record GraphSummary(PhaseTimings Timings, int ActiveFeatures, int SelectedFeatures, int KeptNodes, int Logits, GraphScores Scores, IReadOnlyList<string> Warnings);

/// <summary>
/// Prompt → Neuronpedia graph JSON, in process: tokenize, attribute (docs/algorithm.md), prune, score and
/// write (docs/graph-format.md). The CLI and the service's synchronous path call this; the Durable
/// orchestration computes the rows in activities and finishes with <see cref="WriteGraph"/>.
/// </summary>
public static class GraphPipeline
{
    public const string PrunePhase = "prune";
    public const string JsonPhase = "json";
    public const string HeadLoadingsPhase = "head loadings";

    public static GraphSummary Generate(LoadedModel model, GraphRequest request, Stream output, IProgress<AttributionProgress>? progress = null, GeneratorInfo? generator = null)
    {
        var tokens = model.Tokenize(request.Prompt);
        try
        {
            using var result = Attributor.Attribute(model.Replacement, tokens, request.Attribution, progress);
            model.ObserveActivity(result.Graph.Active, tokens.Length);   // later graphs' memory estimates
            return WriteGraph(model, result.Graph, request, output, result.Timings, generator);
        }
        finally
        {
            TorchInfo.ReleaseFreedMemory();   // the job's batches go back to the system, once
        }
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
            request.HeadLoadings ? links => timings.Time(HeadLoadingsPhase, () => LinkHeads(model, graph, links, request)) : null);
        timings.Add(JsonPhase, clock.Elapsed.TotalSeconds - timings[HeadLoadingsPhase]);
        return new GraphSummary(timings, graph.Active.Count, graph.FeatureCount, pruning.NodeMask.Count(k => k), graph.LogitTokens.Length, scores, metadata.Warnings);
    }

    /// <summary>
    /// The head loadings of the kept links (docs/algorithm.md §10), by (source, target) graph node. The
    /// prompt is prepared again (the attribution's own is gone by now, on another worker perhaps): the
    /// same tokens give the same active features and logit targets.
    /// </summary>
    public static Dictionary<(int Source, int Target), EdgeHeads> LinkHeads(LoadedModel model, AttributionGraph graph,
        IReadOnlyList<(int Source, int Target, float Weight)> keptLinks, GraphRequest request)
    {
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
        // Only links into nodes with rows, from nodes with outputs (an every-pair graph lists the others too, at 0).
        var links = keptLinks.Where(l => graph.RowOf(l.Target) >= 0 && l.Source < graph.SourceCount).ToList();
        var loadings = HeadLoadings.Compute(replacement, prompt, targets, [.. links.Select(l => (InPrompt(l.Target), InPrompt(l.Source)))], request.BatchSize);
        return links.Select((link, i) => (link, i)).ToDictionary(x => (x.link.Source, x.link.Target), x => loadings[x.i]);
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
