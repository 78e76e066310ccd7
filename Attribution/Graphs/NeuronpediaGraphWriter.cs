namespace Attribution.Graphs;

using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using static TorchSharp.torch;

/// <summary>Who made a graph and with what, for the `info` block of the metadata (docs/graph-format.md).</summary>
public sealed record GraphInfo(
    string CreatorName,
    string CreatorUrl,
    IReadOnlyList<string> SourceUrls,
    string TranscoderSet,
    string GeneratorName,
    string GeneratorVersion,
    string? GeneratorUrl,
    long CreateTimeMs);

/// <summary>Everything in the metadata block besides what the graph itself determines.</summary>
public sealed record GraphMetadata
{
    public required string Slug { get; init; }
    public required string Scan { get; init; }
    public required IReadOnlyList<string> PromptTokens { get; init; }
    public required string Prompt { get; init; }
    public required double NodeThreshold { get; init; }
    public required double EdgeThreshold { get; init; }
    public GraphInfo? Info { get; init; }
    public GenerationSettings? Generation { get; init; }
    public GraphScores? Scores { get; init; }

    /// <summary>Feature labels written as the feature nodes' clerp (empty when the set has none).</summary>
    public Transcoders.FeatureLabels Labels { get; init; } = Transcoders.FeatureLabels.None;

    /// <summary>What the reader must know about the prompt (tokens the model never saw); written only when there are some.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>The logit nodes that are differences of two logits, by their node token (Tracing.TargetRequest.NodeToken).</summary>
    public IReadOnlyDictionary<long, Tracing.TargetRequest> LogitDifferences { get; init; } = new Dictionary<long, Tracing.TargetRequest>();
}

public sealed record GenerationSettings(int MaxNLogits, double DesiredLogitProb, int BatchSize, int MaxFeatureNodes);

/// <summary>
/// One graph node's QK tracing result (docs/algorithm.md §11): the score of head (layer, head) at
/// (query, key) that its strongest cross-position link's top head computed, its largest pair terms
/// and marginals. Contributors are nodes of the prompt's layout (every active feature, then the
/// errors, then the tokens); <see cref="QueryRest"/> and <see cref="KeyRest"/> are the marginals
/// of what no listed node carries (unlisted features and constants), so each side's marginals sum,
/// with its rest, to <see cref="Score"/>.
/// </summary>
public sealed record QkNodeResult(Tracing.QkScore At, double Score, (int Query, int Key, double Term)[] Pairs,
    (int Node, double Term)[] QueryMarginals, (int Node, double Term)[] KeyMarginals, double QueryRest, double KeyRest);

/// <summary>What a graph's JSON carries beyond nodes and links, computed once the kept links are known.</summary>
public sealed record GraphAnnotations(
    IReadOnlyDictionary<(int Source, int Target), Tracing.EdgeHeads>? HeadLoadings,
    IReadOnlyDictionary<int, QkNodeResult>? QkTracing);

/// <summary>
/// Writes a pruned graph as Neuronpedia graph JSON (docs/graph-format.md), streamed with Utf8JsonWriter so
/// 100 MB graphs are never held as one string. Node ids and fields follow circuit-tracer's
/// frontend models exactly.
/// </summary>
public static class NeuronpediaGraphWriter
{
    private static readonly JsonEncodedText SourceName = JsonEncodedText.Encode("source");
    private static readonly JsonEncodedText TargetName = JsonEncodedText.Encode("target");
    private static readonly JsonEncodedText WeightName = JsonEncodedText.Encode("weight");
    private static readonly JsonEncodedText HeadLoadingsName = JsonEncodedText.Encode("head_loadings");

    /// <param name="annotate">
    /// Given the kept links (by graph node), what else to write: head loadings on links, QK tracing
    /// results on nodes and the contributors they name that the graph does not show (docs/graph-format.md); null: none.
    /// </param>
    public static void Write(Stream output, AttributionGraph graph, PruneResult pruning, GraphMetadata metadata, Func<long, string> decodeToken,
        Func<IReadOnlyList<(int Source, int Target, float Weight)>, GraphAnnotations>? annotate = null)
    {
        var nodes = KeptNodes(graph, pruning);
        var links = KeptLinks(graph, pruning, nodes);
        var annotations = annotate?.Invoke(links);
        var heads = annotations?.HeadLoadings;
        var connected = new HashSet<int>(links.SelectMany(l => new[] { l.Source, l.Target }));
        // Each id is written once per node and once per link end: encode it once.
        var ids = nodes.ToDictionary(n => n, n => JsonEncodedText.Encode(NodeId(graph, n), JavaScriptEncoder.UnsafeRelaxedJsonEscaping));
        var shown = nodes.Where(n => n >= graph.TokenStart || connected.Contains(n)).ToHashSet();
        var contributors = annotations?.QkTracing is { } qk ? new QkContributors(graph, shown, metadata.Labels, decodeToken) : null;

        // Relaxed escaping: tokens like "<bos>" and non-ASCII text stay readable, as in circuit-tracer's files.
        using var json = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        WriteMetadata(json, metadata);
        WriteQueryParameters(json);

        json.WriteStartArray("nodes");
        foreach (int node in nodes)
        {
            if (!shown.Contains(node)) continue;
            var qkResult = annotations?.QkTracing?.GetValueOrDefault(node);
            WriteNode(json, graph, node, pruning.CumulativeScores[node], decodeToken, metadata, qkResult is null ? null : () => WriteQkResult(json, qkResult, contributors!));
            if (json.BytesPending > 1 << 16) json.Flush();
        }
        json.WriteEndArray();

        json.WriteStartArray("links");
        foreach (var link in links)
        {
            json.WriteStartObject();
            json.WriteString(SourceName, ids[link.Source]);
            json.WriteString(TargetName, ids[link.Target]);
            json.WriteNumber(WeightName, link.Weight);
            if (heads is not null && heads.TryGetValue((link.Source, link.Target), out var loadings)) WriteHeadLoadings(json, loadings);
            json.WriteEndObject();
            if (json.BytesPending > 1 << 16) json.Flush();
        }
        json.WriteEndArray();
        if (contributors is not null) contributors.WriteHidden(json);
        json.WriteEndObject();
        json.Flush();
    }

    /// <summary>
    /// Neuronpedia's qk_tracing_results: pair_wise_contributors [[q_id, k_id, term]], top_q_marginal_contributors
    /// and top_k_marginal_contributors [[id, term]]; then ours: the head, the positions, the score and each side's rest.
    /// </summary>
    private static void WriteQkResult(Utf8JsonWriter json, QkNodeResult result, QkContributors contributors)
    {
        json.WriteStartObject("qk_tracing_results");
        json.WriteStartArray("pair_wise_contributors");
        foreach (var (query, key, term) in result.Pairs)
        {
            json.WriteStartArray();
            json.WriteStringValue(contributors.Id(query));
            json.WriteStringValue(contributors.Id(key));
            json.WriteNumberValue(term);
            json.WriteEndArray();
        }
        json.WriteEndArray();
        foreach (var (name, marginals) in new[] { ("top_q_marginal_contributors", result.QueryMarginals), ("top_k_marginal_contributors", result.KeyMarginals) })
        {
            json.WriteStartArray(name);
            foreach (var (node, term) in marginals)
            {
                json.WriteStartArray();
                json.WriteStringValue(contributors.Id(node));
                json.WriteNumberValue(term);
                json.WriteEndArray();
            }
            json.WriteEndArray();
        }
        json.WriteNumber("layer", result.At.Layer);
        json.WriteNumber("head", result.At.Head);
        json.WriteNumber("query_ctx_idx", result.At.QueryPosition);
        json.WriteNumber("key_ctx_idx", result.At.KeyPosition);
        json.WriteNumber("score", result.Score);
        json.WriteNumber("q_rest", result.QueryRest);
        json.WriteNumber("k_rest", result.KeyRest);
        json.WriteEndObject();
    }

    /// <summary>
    /// QK contributors' ids: a node the graph shows by its id; any other (an active feature without a
    /// row, or a pruned error, token or feature) by the id it would have, described once in qk_only_nodes.
    /// </summary>
    private sealed class QkContributors(AttributionGraph graph, HashSet<int> shown, Transcoders.FeatureLabels labels, Func<long, string> decodeToken)
    {
        private readonly Dictionary<int, NodeFields> hidden = [];
        private readonly Dictionary<long, int> selectedByActive = graph.SelectedFeatures.Select((f, i) => (f, i)).ToDictionary(x => x.f, x => x.i);

        /// <summary>The id of prompt-layout node <paramref name="node"/> (active features, errors, tokens).</summary>
        public string Id(int node)
        {
            int active = graph.Active.Count;
            int? graphNode = node >= active ? node - active + graph.FeatureCount
                : selectedByActive.TryGetValue(node, out int selected) ? selected : null;
            if (graphNode is int g && shown.Contains(g)) return NodeId(graph, g);
            if (!hidden.TryGetValue(node, out var fields))
                hidden[node] = fields = graphNode is int pruned ? Describe(graph, pruned, decodeToken, labels, NoDifferences) : DescribeFeature(graph.Active, node, labels);
            return fields.Id;
        }

        public void WriteHidden(Utf8JsonWriter json)
        {
            json.WriteStartObject("qk_only_nodes");
            foreach (var fields in hidden.Values)
            {
                json.WriteStartObject(fields.Id);
                json.WriteString("node_id", fields.Id);
                json.WriteNumber("feature", fields.Feature);
                json.WriteString("layer", fields.Layer);
                json.WriteNumber("ctx_idx", fields.CtxIdx);
                json.WriteString("feature_type", fields.FeatureType);
                json.WriteString("jsNodeId", fields.JsNodeId);
                json.WriteString("clerp", fields.Clerp);
                WriteNullable(json, "activation", fields.Activation);
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
    }

    /// <summary>{"direct": …, "heads": [[layer, head, part], …] (the largest few by |part|), "rest": the other heads' sum}.</summary>
    private static void WriteHeadLoadings(Utf8JsonWriter json, Tracing.EdgeHeads loadings)
    {
        json.WriteStartObject(HeadLoadingsName);
        json.WriteNumber("direct", loadings.Direct);
        json.WriteStartArray("heads");
        double reported = 0;
        foreach (var (layer, head, part) in loadings.Ranked().Take(Tracing.HeadLoadings.ReportedHeads).Where(h => h.Part != 0))
        {
            json.WriteStartArray();
            json.WriteNumberValue(layer);
            json.WriteNumberValue(head);
            json.WriteNumberValue(part);
            json.WriteEndArray();
            reported += part;
        }
        json.WriteEndArray();
        json.WriteNumber("rest", loadings.Total - loadings.Direct - reported);
        json.WriteEndObject();
    }

    /// <summary>The Neuronpedia viewer's display form of a token: newlines, tabs and returns made visible.</summary>
    public static string DisplayToken(string token) => token.Replace("\n", "⏎", StringComparison.Ordinal)
        .Replace("\t", "→", StringComparison.Ordinal).Replace("\r", "↵", StringComparison.Ordinal);

    /// <summary>Cantor pairing of (layer, feature): one integer id per feature across layers.</summary>
    public static long CantorFeatureId(long layer, long feature) => (layer + feature) * (layer + feature + 1) / 2 + feature;

    public static string NodeId(AttributionGraph graph, int node) => Describe(graph, node, _ => "", Transcoders.FeatureLabels.None, NoDifferences).Id;

    private static readonly IReadOnlyDictionary<long, Tracing.TargetRequest> NoDifferences = new Dictionary<long, Tracing.TargetRequest>();

    private static List<int> KeptNodes(AttributionGraph graph, PruneResult pruning) =>
        Enumerable.Range(0, graph.NodeCount).Where(i => pruning.NodeMask[i]).ToList();

    /// <summary>Edges between kept nodes, in row-major (target, source) order; read from the kept rows and columns, not all N².</summary>
    private static List<(int Source, int Target, float Weight)> KeptLinks(AttributionGraph graph, PruneResult pruning, List<int> nodes)
    {
        if (pruning.KeepsEveryPair) return EveryPair(graph, nodes);
        using var scope = NewDisposeScope();
        var rowNodes = nodes.Where(n => graph.RowOf(n) >= 0).ToArray();
        var columnNodes = nodes.Where(n => n < graph.SourceCount).ToArray();
        var rows = tensor(rowNodes.Select(n => (long)graph.RowOf(n)).ToArray());
        var columns = tensor(columnNodes.Select(n => (long)n).ToArray());
        var mask = pruning.EdgeMask.index_select(0, rows).index_select(1, columns);
        var pairs = mask.nonzero().data<long>().ToArray();          // [edges, 2] as (row, column) in kept order
        var values = graph.Rows.index_select(0, rows).index_select(1, columns)[mask].data<float>().ToArray();
        var links = new List<(int, int, float)>(values.Length);
        for (int e = 0; e < values.Length; e++) links.Add((columnNodes[(int)pairs[2 * e + 1]], rowNodes[(int)pairs[2 * e]], values[e]));
        return links;
    }

    /// <summary>Every ordered pair of kept nodes, with its weight (zero where the target has no inputs or the source no outputs).</summary>
    private static List<(int Source, int Target, float Weight)> EveryPair(AttributionGraph graph, List<int> nodes)
    {
        var links = new List<(int, int, float)>(nodes.Count * nodes.Count);
        foreach (int target in nodes)
        {
            int row = graph.RowOf(target);
            float[]? weights = null;
            if (row >= 0)
            {
                using var inputs = graph.Rows[row];
                weights = inputs.data<float>().ToArray();
            }
            foreach (int source in nodes)
                links.Add((source, target, weights is not null && source < graph.SourceCount ? weights[source] : 0f));
        }
        return links;
    }

    private static void WriteMetadata(Utf8JsonWriter json, GraphMetadata m)
    {
        json.WriteStartObject("metadata");
        json.WriteString("slug", m.Slug);
        json.WriteString("scan", m.Scan);
        json.WriteStartArray("transcoder_list");
        json.WriteEndArray();
        json.WriteStartArray("prompt_tokens");
        foreach (var token in m.PromptTokens) json.WriteStringValue(DisplayToken(token));
        json.WriteEndArray();
        json.WriteString("prompt", m.Prompt);
        json.WriteNumber("node_threshold", m.NodeThreshold);
        json.WriteNumber("schema_version", 1);
        if (m.Info is { } info)
        {
            json.WriteStartObject("info");
            json.WriteString("creator_name", info.CreatorName);
            json.WriteString("creator_url", info.CreatorUrl);
            json.WriteStartArray("source_urls");
            foreach (var url in info.SourceUrls) json.WriteStringValue(url);
            json.WriteEndArray();
            json.WriteString("transcoder_set", info.TranscoderSet);
            json.WriteStartObject("generator");
            json.WriteString("name", info.GeneratorName);
            json.WriteString("version", info.GeneratorVersion);
            if (info.GeneratorUrl is { } generatorUrl) json.WriteString("url", generatorUrl);   // optional in the schema: none rather than a made-up one
            json.WriteEndObject();
            json.WriteNumber("create_time_ms", info.CreateTimeMs);
            json.WriteEndObject();
        }
        if (m.Generation is { } g)
        {
            json.WriteStartObject("generation_settings");
            json.WriteNumber("max_n_logits", g.MaxNLogits);
            json.WriteNumber("desired_logit_prob", g.DesiredLogitProb);
            json.WriteNumber("batch_size", g.BatchSize);
            json.WriteNumber("max_feature_nodes", g.MaxFeatureNodes);
            json.WriteEndObject();
        }
        json.WriteStartObject("pruning_settings");
        json.WriteNumber("node_threshold", m.NodeThreshold);
        json.WriteNumber("edge_threshold", m.EdgeThreshold);
        json.WriteEndObject();
        if (m.Scores is { } s)
        {
            json.WriteStartObject("scores");
            json.WriteNumber("replacement_score", s.Replacement);
            json.WriteNumber("completeness_score", s.Completeness);
            json.WriteEndObject();
        }
        json.WriteStringsIfAny("warnings", m.Warnings);
        json.WriteEndObject();
    }

    private static void WriteQueryParameters(Utf8JsonWriter json)
    {
        json.WriteStartObject("qParams");
        json.WriteStartArray("pinnedIds");
        json.WriteEndArray();
        json.WriteStartArray("supernodes");
        json.WriteEndArray();
        json.WriteString("linkType", "both");
        json.WriteString("clickedId", "");
        json.WriteString("sg_pos", "");
        json.WriteEndObject();
    }

    /// <summary>A node's fields in the Neuronpedia graph (docs/graph-format.md).</summary>
    private sealed record NodeFields(string Id, long Feature, string Layer, int CtxIdx, string FeatureType, string JsNodeId, string Clerp)
    {
        public float TokenProb { get; init; }
        public bool IsTarget { get; init; }
        public float? Activation { get; init; }
        public bool HasInfluence { get; init; } = true;
    }

    /// <summary>The one place a node's kind decides its fields.</summary>
    private static NodeFields Describe(AttributionGraph graph, int node, Func<long, string> decodeToken, Transcoders.FeatureLabels labels,
        IReadOnlyDictionary<long, Tracing.TargetRequest> differences)
    {
        var place = graph.Layout.Locate(node);
        string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
        switch (place.Kind)
        {
            case NodeKind.Feature:
                return DescribeFeature(graph.Active, graph.SelectedFeatures[place.Index], labels);
            case NodeKind.Error:
                // feature -1: never a real index, so never a feature's id (circuit-tracer #78)
                return new NodeFields($"{place.Layer}_-1_{place.Position}", -1, Number(place.Layer), place.Position, "mlp reconstruction error", $"{place.Layer}_-1-{place.Position}", "");
            case NodeKind.Token:
            {
                int pos = place.Position;
                return new NodeFields($"E_{graph.InputTokens[pos]}_{pos}", pos, "E", pos, "embedding", $"E_{graph.InputTokens[pos]}-{pos}", "");
            }
            default:
            {
                long token = graph.LogitTokens[place.Index];
                float probability = graph.LogitProbabilities[place.Index];
                // A difference reads as Neuronpedia's webapp parses a logit clerp: quoted tokens, then (p=…), here the weight |p(a) − p(b)|.
                string output = differences.TryGetValue(token, out var difference)
                    ? $"\"{DisplayToken(decodeToken(difference.Token))}\" − \"{DisplayToken(decodeToken(difference.Minus!.Value))}\""
                    : $"\"{DisplayToken(decodeToken(token))}\"";
                return new NodeFields($"{place.Layer}_{token}_{place.Position}", token, Number(place.Layer), place.Position, "logit", $"L_{token}-{place.Position}",
                    string.Create(CultureInfo.InvariantCulture, $"Output {output} (p={probability:0.000})"))
                {
                    TokenProb = probability, IsTarget = place.Index == 0, HasInfluence = false,
                };
            }
        }
    }

    /// <summary>An active feature's fields, whether or not the graph selected it.</summary>
    private static NodeFields DescribeFeature(ActiveFeatures active, long f, Transcoders.FeatureLabels labels)
    {
        long l = active.Layers[f], index = active.Indices[f], pos = active.Positions[f];
        string layer = l.ToString(CultureInfo.InvariantCulture);
        return new NodeFields($"{l}_{index}_{pos}", CantorFeatureId(l, index), layer, (int)pos, "cross layer transcoder", $"{l}_{index}-0", labels.Of(l, index))
        {
            Activation = active.Values[f],
        };
    }

    private static void WriteNode(Utf8JsonWriter json, AttributionGraph graph, int node, float influence, Func<long, string> decodeToken, GraphMetadata metadata,
        Action? writeMore = null)
    {
        var n = Describe(graph, node, decodeToken, metadata.Labels, metadata.LogitDifferences);
        json.WriteStartObject();
        json.WriteString("node_id", n.Id);
        json.WriteNumber("feature", n.Feature);
        json.WriteString("layer", n.Layer);
        json.WriteNumber("ctx_idx", n.CtxIdx);
        json.WriteString("feature_type", n.FeatureType);
        json.WriteNumber("token_prob", n.TokenProb);
        json.WriteBoolean("is_target_logit", n.IsTarget);
        json.WriteNumber("run_idx", 0);
        json.WriteNumber("reverse_ctx_idx", 0);
        json.WriteString("jsNodeId", n.JsNodeId);
        json.WriteString("clerp", n.Clerp);
        WriteNullable(json, "influence", n.HasInfluence ? influence : null);
        WriteNullable(json, "activation", n.Activation);
        writeMore?.Invoke();
        json.WriteEndObject();
    }

    private static void WriteNullable(Utf8JsonWriter json, string name, float? value)
    {
        if (value is float v) json.WriteNumber(name, v);
        else json.WriteNull(name);
    }
}
