namespace Attribution.Requests;

/// <summary>One field of a request: its wire name, what it means (docs/api.md), whether it must be sent.</summary>
public abstract record RequestField(string Name, string Description, bool Required)
{
    /// <summary>The JSON Schema type: integer, number, boolean, string, array.</summary>
    public abstract string JsonType { get; }

    /// <summary>The command-line option that sets this field, e.g. "--batch-size".</summary>
    public string OptionName => "--" + Name.Replace('_', '-');
}

/// <summary>A whole number within [Minimum, Maximum]; no default when <see cref="Default"/> is null (optional or required).</summary>
public sealed record IntegerField(string Name, int? Default, long Minimum, long Maximum, string Description, bool Required = false)
    : RequestField(Name, Description, Required)
{
    public override string JsonType => "integer";

    public int DefaultValue => Default ?? throw new InvalidOperationException($"{Name} has no default");
}

/// <summary>A finite number within [Minimum, Maximum] (infinite bounds: any finite number).</summary>
public sealed record NumberField(string Name, double? Default, double Minimum, double Maximum, string Description)
    : RequestField(Name, Description, Required: false)
{
    public override string JsonType => "number";

    public double DefaultValue => Default ?? throw new InvalidOperationException($"{Name} has no default");

    public bool Bounded => double.IsFinite(Minimum) || double.IsFinite(Maximum);
}

public sealed record FlagField(string Name, bool Default, string Description) : RequestField(Name, Description, Required: false)
{
    public override string JsonType => "boolean";
}

public sealed record TextField(string Name, int MaxLength, string Description, bool Required = false) : RequestField(Name, Description, Required)
{
    public override string JsonType => "string";
}

/// <summary>An array of objects, each with the fields of <see cref="Items"/>, at most <see cref="MaxItems"/>.</summary>
public sealed record ObjectListField(string Name, string ItemName, IReadOnlyList<RequestField> Items, int MaxItems, string Description, bool Required = false)
    : RequestField(Name, Description, Required)
{
    public override string JsonType => "array";
}

/// <summary>
/// The one table of request fields: name, type, default, range and meaning. Request validation,
/// the OpenAPI document, the CLI's options and the engine's defaults all read it, so they cannot
/// disagree. Defaults are the Neuronpedia graph server's; ranges accept everything the Neuronpedia
/// webapp sends and refuse only what would hurt the service (huge batches, lists, generations).
/// </summary>
public static class RequestSchema
{
    public const int MaxPromptCharacters = 20_000;

    // --- Prompt and model ---
    public static readonly TextField Prompt = new("prompt", MaxPromptCharacters, "The prompt text (required unless messages are sent). A BOS is prepended unless it starts with a special token.");
    public static readonly TextField Role = new("role", 64, "Who speaks: system, user or assistant (any role the model's chat template accepts).", Required: true);
    public static readonly TextField Content = new("content", MaxPromptCharacters, "What the turn says; may be empty.", Required: true);
    public static readonly ObjectListField Messages = new("messages", "ChatMessage", [Role, Content], 256,
        "Chat turns instead of prompt: rendered with the model's chat template, the final turn left open (an empty final assistant turn: the generation prompt), as the Neuronpedia graph server does.");
    public static readonly TextField ModelId = new("model_id", 256, "The served model: its Hugging Face id or its Neuronpedia id (scan).", Required: true);
    public static readonly TextField OptionalModelId = ModelId with { Required = false };

    // --- Graph generation ---
    public static readonly IntegerField BatchSize = new("batch_size", 48, 1, 1024, "Attribution targets per backward pass.");
    public static readonly IntegerField MaxNLogits = new("max_n_logits", 10, 1, 1000, "At most this many next-token logits become targets.");
    public static readonly NumberField DesiredLogitProb = new("desired_logit_prob", 0.95, 0, 1, "Keep the smallest top set of logits whose probability reaches this.");
    public static readonly NumberField NodeThreshold = new("node_threshold", 0.8, 0, 1, "Pruning: keep the nodes carrying this share of the influence.");
    public static readonly NumberField EdgeThreshold = new("edge_threshold", 0.98, 0, 1, "Pruning: keep the edges carrying this share of the influence.");
    public static readonly IntegerField MaxFeatureNodes = new("max_feature_nodes", 10000, 1, 1_000_000, "At most this many features get attribution rows, the most influential first.");
    public static readonly IntegerField UpdateInterval = new("update_interval", 1000, 1, 1_000_000,
        "Batches between feature re-rankings (1000: rank once, as the Neuronpedia server; circuit-tracer's default is 4). A setting of the service (UPDATE_INTERVAL), an option of the CLI.");
    public static readonly TextField SlugIdentifier = new("slug_identifier", 128, "The graph's slug and the job id: letters, digits, '.', '_' and '-'. Default: a generated one.");
    public static readonly TextField SignedUrl = new("signed_url", 8192, "A presigned S3 PUT URL on an allowed host: the graph is uploaded there.");
    public static readonly FlagField Compress = new("compress", false, "Gzip the uploaded graph (Content-Encoding: gzip).");
    public static readonly FlagField Blob = new("blob", false, "Upload the graph to the configured Azure Blob container.");
    public static readonly TextField UserId = new("user_id", 256, "Who asked: the graph's info.creator_name.");
    public static readonly FlagField HeadLoadings = new("head_loadings", false,
        "Split every kept link's weight by the attention head its paths first pass through: links gain head_loadings {direct, heads: [[layer, head, weight], …] (the 3 largest), rest}, exact (docs/algorithm.md §10).");
    public static readonly FlagField EnableQkTracing = new("enable_qk_tracing", false,
        "QK attributions: for the most influential nodes, the attention score of the head that carried their strongest link from another position, split into (query node, key node) pair terms and each side's marginals: "
        + "nodes gain qk_tracing_results, contributors outside the graph are listed in qk_only_nodes (docs/algorithm.md §11). Computes head loadings too.");
    public static readonly NumberField QkTopFraction = new("qk_top_fraction", 0.6, 0, 1,
        "QK tracing: the share of the graph's nodes with a link from another position that are traced, the most influential first (logits first), at most 64.");
    public static readonly IntegerField QkTopK = new("qk_topk", 10, 1, 1000, "QK tracing: how many pair terms, and how many marginals of each side, are kept per traced node.");
    public static readonly IntegerField WaitSeconds = new("wait_seconds", 220, 0, 3600,
        "How long the request waits for the job before answering 202 (also a query parameter; 0 or the header 'Prefer: respond-async': at once). Default: the GRAPH_WAIT_SECONDS setting.");

    // --- Attribution targets ---
    public static readonly TextField TargetToken = new("token", 256, "A token to attribute from, as text: it must be exactly one token of the model (e.g. \" Paris\"). Or token_id.");
    public static readonly IntegerField TargetTokenId = new("token_id", null, 0, int.MaxValue, "A token to attribute from, by its id. Or token.");
    public static readonly TextField TargetMinus = new("minus", 256, "Makes the target a logit difference: this token's logit is subtracted (text, one token; e.g. \" London\"). Or minus_id.");
    public static readonly IntegerField TargetMinusId = new("minus_id", null, 0, int.MaxValue, "As minus, by the token's id.");
    public static readonly ObjectListField AttributionTargets = new("attribution_targets", "AttributionTarget", [TargetToken, TargetTokenId, TargetMinus, TargetMinusId], 64,
        "What the graph explains instead of the most likely next tokens (circuit-tracer's attribution targets): tokens, each a logit node with its probability, "
        + "or logit differences (a token minus another), each one logit node whose row is the gradient of that difference, weighted by the absolute difference of the two probabilities. "
        + "Absent: the salient logits (max_n_logits, desired_logit_prob).");

    // --- Steering ---
    public static readonly IntegerField Layer = new("layer", null, 0, 10_000, "The feature's layer.", Required: true);
    public static readonly IntegerField Index = new("index", null, 0, int.MaxValue, "The feature's index in its transcoder.", Required: true);
    public static readonly IntegerField TokenActivePosition = new("token_active_position", null, 0, 100_000,
        "Where the feature's clean activation is read (BOS = 0); the steered value is that activation + delta.", Required: true);
    public static readonly IntegerField SteerPosition = new("steer_position", null, int.MinValue, int.MaxValue, "The prompt position to steer at (BOS = 0); or set steer_generated_tokens.");
    public static readonly FlagField SteerGeneratedTokens = new("steer_generated_tokens", false, "Steer every generated token instead of one prompt position.");
    public static readonly NumberField Delta = new("delta", null, double.NegativeInfinity, double.PositiveInfinity, "Added to the clean activation; or set ablate.");
    public static readonly FlagField Ablate = new("ablate", false, "Set the feature to 0.");
    public static readonly ObjectListField Features = new("features", "SteerFeature",
        [Layer, Index, TokenActivePosition, SteerPosition, SteerGeneratedTokens, Delta, Ablate], 4096,
        "Features to steer; an empty list makes the steered generation the default one.", Required: true);
    public static readonly IntegerField NTokens = new("n_tokens", 10, 1, 512, "New tokens to generate.");
    public static readonly IntegerField TopK = new("top_k", 5, 0, 1000, "Top next-token probabilities per position.");
    public static readonly NumberField Temperature = new("temperature", 0, 0, 100, "Sampling temperature; 0 is greedy.");
    public static readonly NumberField FreqPenalty = new("freq_penalty", 0, double.NegativeInfinity, double.PositiveInfinity,
        "Subtracted from the logits per earlier occurrence of a token, with temperature > 0; as in TransformerLens, only a positive penalty acts.");
    public static readonly IntegerField Seed = new("seed", null, int.MinValue, int.MaxValue, "Seeds both generations' sampler.");
    public static readonly FlagField FreezeAttention = new("freeze_attention", false, "Keep the clean run's attention patterns on the prompt positions.");

    /// <summary>POST /generate-graph.</summary>
    public static IReadOnlyList<RequestField> GenerateGraph { get; } =
    [
        Prompt, Messages, ModelId, BatchSize, MaxNLogits, DesiredLogitProb, NodeThreshold, EdgeThreshold, SlugIdentifier, MaxFeatureNodes,
        SignedUrl, Compress, Blob, UserId, WaitSeconds, AttributionTargets, HeadLoadings, EnableQkTracing, QkTopFraction, QkTopK,
    ];

    /// <summary>POST /steer.</summary>
    public static IReadOnlyList<RequestField> Steer { get; } = [ModelId, Prompt, Messages, Features, NTokens, TopK, Temperature, FreqPenalty, Seed, FreezeAttention];

    /// <summary>POST /forward-pass.</summary>
    public static IReadOnlyList<RequestField> ForwardPass { get; } = [Prompt, Messages, OptionalModelId, MaxNLogits, DesiredLogitProb];

    /// <summary>POST /parse-chat-prompt.</summary>
    public static IReadOnlyList<RequestField> ParseChatPrompt { get; } = [Prompt with { Required = true }, OptionalModelId];

    /// <summary>What shapes a graph, as the CLI's `graph` command takes it (the request fields plus the service's update interval).</summary>
    public static IReadOnlyList<RequestField> GraphSettings { get; } =
        [BatchSize, MaxNLogits, DesiredLogitProb, NodeThreshold, EdgeThreshold, MaxFeatureNodes, UpdateInterval, QkTopFraction, QkTopK];
}
