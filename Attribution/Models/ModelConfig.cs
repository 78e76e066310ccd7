namespace Attribution.Models;

using System.Text.Json;

public enum ModelArchitecture
{
    Gemma2,
    Llama,
    Qwen3,

    /// <summary>Gemma-3's text model (gemma3_text, and the language model of the multimodal -it checkpoints).</summary>
    Gemma3,
}

/// <summary>Llama 3.x "llama3" rope scaling (config.json rope_scaling / rope_parameters).</summary>
public sealed record Llama3RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions);

/// <summary>
/// The parts of a Hugging Face config.json the forward pass needs, with each architecture's
/// conventions made explicit (norm weight offset, embedding scale, extra norms, soft caps).
/// </summary>
public sealed record ModelConfig
{
    public required ModelArchitecture Architecture { get; init; }
    public required int VocabSize { get; init; }
    public required int DModel { get; init; }
    public required int DMlp { get; init; }
    public required int NLayers { get; init; }
    public required int NHeads { get; init; }
    public required int NKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required double RmsNormEps { get; init; }
    /// <summary>The rotary base of global layers (every layer, unless <see cref="LocalRopeTheta"/> is set).</summary>
    public required double RopeTheta { get; init; }
    public Llama3RopeScaling? RopeScaling { get; init; }

    /// <summary>Linear rope scaling ("linear" rope_type): positions divided by this factor on global layers.</summary>
    public double RopeLinearFactor { get; init; } = 1.0;

    /// <summary>Gemma-3: sliding-window layers rotate with their own base (rope_local_base_freq) and no scaling.</summary>
    public double? LocalRopeTheta { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public string HiddenActivation { get; init; } = "silu";

    // Gemma only
    public double? QueryPreAttnScalar { get; init; }
    public int? SlidingWindow { get; init; }

    /// <summary>Which layers attend within <see cref="SlidingWindow"/> (config.json layer_types, or the architecture's pattern).</summary>
    public IReadOnlyList<bool> SlidingLayers { get; init; } = [];
    public double? AttnLogitSoftcap { get; init; }
    public double? FinalLogitSoftcap { get; init; }

    public bool IsGemma => Architecture is ModelArchitecture.Gemma2 or ModelArchitecture.Gemma3;

    /// <summary>Gemma's RMSNorm multiplies by (1 + weight) instead of weight (its q/k norms too).</summary>
    public bool NormWeightIsOffset => IsGemma;

    /// <summary>Gemma multiplies token embeddings by sqrt(d_model) before the first layer.</summary>
    public bool ScalesEmbeddings => IsGemma;

    /// <summary>Gemma normalises the attention and MLP outputs before adding them to the residual.</summary>
    public bool HasSublayerOutputNorms => IsGemma;

    /// <summary>Qwen3 and Gemma-3 normalise queries and keys per head before rotary embedding.</summary>
    public bool HasQkNorm => Architecture is ModelArchitecture.Qwen3 or ModelArchitecture.Gemma3;

    public double AttentionScale => Math.Pow(QueryPreAttnScalar ?? HeadDim, -0.5);

    /// <summary>The sliding window of a local layer, null for a global one.</summary>
    public int? WindowOfLayer(int layer) => layer < SlidingLayers.Count && SlidingLayers[layer] ? SlidingWindow : null;

    /// <summary>A layer's rotary base and whether the rope scaling applies to it.</summary>
    public (double Theta, bool Scaled) RopeOfLayer(int layer) =>
        LocalRopeTheta is double local && WindowOfLayer(layer) is not null ? (local, false) : (RopeTheta, true);

    public static ModelConfig Load(string modelFolder)
    {
        string path = Path.Combine(modelFolder, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"{modelFolder} has no config.json");
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        return Parse(json.RootElement, path);
    }

    public static ModelConfig Parse(JsonElement root, string source)
    {
        var architecture = ParseArchitecture(root, source);
        // The multimodal Gemma-3 checkpoints nest the language model's settings under text_config.
        var text = root.TryGetProperty("text_config", out var nested) && nested.ValueKind == JsonValueKind.Object ? nested : root;
        bool gemma = architecture is ModelArchitecture.Gemma2 or ModelArchitecture.Gemma3;
        bool gemma3 = architecture == ModelArchitecture.Gemma3;
        // Gemma3TextConfig's defaults, for the fields the -it checkpoints leave out of text_config.
        int? Gemma3Default(int value) => gemma3 ? value : null;
        int dModel = Int(text, "hidden_size", source);
        int nHeads = OptionalInt(text, "num_attention_heads") ?? Gemma3Default(8) ?? Int(text, "num_attention_heads", source);
        int nLayers = Int(text, "num_hidden_layers", source);
        int? window = gemma ? OptionalInt(text, "sliding_window") ?? Gemma3Default(4096) : null;
        var (ropeScaling, linearFactor) = ParseRopeScaling(text);
        return new ModelConfig
        {
            Architecture = architecture,
            VocabSize = OptionalInt(text, "vocab_size") ?? Gemma3Default(262_208) ?? Int(text, "vocab_size", source),
            DModel = dModel,
            DMlp = Int(text, "intermediate_size", source),
            NLayers = nLayers,
            NHeads = nHeads,
            NKvHeads = OptionalInt(text, "num_key_value_heads") ?? Gemma3Default(4) ?? nHeads,
            HeadDim = OptionalInt(text, "head_dim") ?? Gemma3Default(256) ?? dModel / nHeads,
            RmsNormEps = OptionalDouble(text, "rms_norm_eps") ?? 1e-6,
            RopeTheta = OptionalDouble(text, "rope_theta") ?? RopeParameter(text, "rope_theta", "full_attention") ?? (gemma3 ? 1_000_000.0 : 10000.0),
            RopeScaling = ropeScaling,
            RopeLinearFactor = linearFactor,
            LocalRopeTheta = gemma3 ? OptionalDouble(text, "rope_local_base_freq") ?? RopeParameter(text, "rope_theta", "sliding_attention") ?? 10000.0 : null,
            // Gemma, Qwen3-4B tie the unembedding to the embedding; HF's default is tied too.
            TieWordEmbeddings = OptionalBool(text, "tie_word_embeddings") ?? OptionalBool(root, "tie_word_embeddings") ?? true,
            AttentionBias = OptionalBool(text, "attention_bias") ?? false,
            BosTokenId = OptionalInt(root, "bos_token_id") ?? OptionalInt(text, "bos_token_id"),
            EosTokenIds = TokenIds(root, "eos_token_id") is { Length: > 0 } eos ? eos : TokenIds(text, "eos_token_id"),
            HiddenActivation = OptionalString(text, "hidden_activation") ?? OptionalString(text, "hidden_act") ?? (gemma ? "gelu_pytorch_tanh" : "silu"),
            QueryPreAttnScalar = gemma ? OptionalDouble(text, "query_pre_attn_scalar") ?? Gemma3Default(256) : null,
            SlidingWindow = window,
            SlidingLayers = window is null ? [] : SlidingLayerPattern(text, architecture, nLayers),
            AttnLogitSoftcap = gemma ? OptionalDouble(text, "attn_logit_softcapping") : null,
            FinalLogitSoftcap = gemma ? OptionalDouble(text, "final_logit_softcapping") : null,
        };
    }

    /// <summary>
    /// config.json layer_types when present; otherwise Gemma-2 alternates (even layers local) and
    /// Gemma-3 makes every sliding_window_pattern-th layer global (5 local : 1 global by default).
    /// </summary>
    private static bool[] SlidingLayerPattern(JsonElement config, ModelArchitecture architecture, int nLayers)
    {
        if (config.TryGetProperty("layer_types", out var types) && types.ValueKind == JsonValueKind.Array)
        {
            var sliding = types.EnumerateArray().Select(t => t.GetString() == "sliding_attention").ToArray();
            if (sliding.Length != nLayers) throw new InvalidDataException($"layer_types lists {sliding.Length} layers, the model has {nLayers}");
            return sliding;
        }
        int pattern = architecture == ModelArchitecture.Gemma3 ? OptionalInt(config, "sliding_window_pattern") ?? 6 : 2;
        return [.. Enumerable.Range(0, nLayers).Select(i => (i + 1) % pattern != 0)];
    }

    private static ModelArchitecture ParseArchitecture(JsonElement root, string source)
    {
        string? kind = OptionalString(root, "model_type");
        if (kind is null && root.TryGetProperty("architectures", out var list) && list.GetArrayLength() > 0)
            kind = list[0].GetString();
        return kind switch
        {
            "gemma2" or "Gemma2ForCausalLM" => ModelArchitecture.Gemma2,
            "llama" or "LlamaForCausalLM" => ModelArchitecture.Llama,
            "qwen3" or "Qwen3ForCausalLM" => ModelArchitecture.Qwen3,
            "gemma3_text" or "gemma3" or "Gemma3ForCausalLM" or "Gemma3ForConditionalGeneration" => ModelArchitecture.Gemma3,
            _ => throw new NotSupportedException($"{source}: model type '{kind}' is not supported (Gemma-2, Gemma-3, Llama, Qwen3)"),
        };
    }

    /// <summary>
    /// Rope scaling of the global layers: Llama 3's frequency bands, or a linear factor (Gemma-3).
    /// Older configs say rope_scaling, newer ones rope_parameters, which for Gemma-3 is keyed by
    /// layer type (the full_attention entry is the global layers').
    /// </summary>
    private static (Llama3RopeScaling? Llama3, double LinearFactor) ParseRopeScaling(JsonElement root)
    {
        foreach (string key in new[] { "rope_scaling", "rope_parameters" })
        {
            if (!root.TryGetProperty(key, out var scaling) || scaling.ValueKind != JsonValueKind.Object) continue;
            if (scaling.TryGetProperty("full_attention", out var global) && global.ValueKind == JsonValueKind.Object) scaling = global;
            string? type = OptionalString(scaling, "rope_type") ?? OptionalString(scaling, "type");
            switch (type)
            {
                case "llama3":
                    return (new Llama3RopeScaling(
                        OptionalDouble(scaling, "factor") ?? 8.0,
                        OptionalDouble(scaling, "low_freq_factor") ?? 1.0,
                        OptionalDouble(scaling, "high_freq_factor") ?? 4.0,
                        OptionalInt(scaling, "original_max_position_embeddings") ?? 8192), 1.0);
                case "linear":
                    return (null, OptionalDouble(scaling, "factor") ?? 1.0);
                case null or "default":
                    continue;
                default:
                    throw new NotSupportedException($"rope scaling '{type}' is not supported (llama3, linear)");
            }
        }
        return (null, 1.0);
    }

    /// <summary>A value of rope_parameters, flat or (Gemma-3) under the given layer type.</summary>
    private static double? RopeParameter(JsonElement root, string name, string layerType)
    {
        if (!root.TryGetProperty("rope_parameters", out var p) || p.ValueKind != JsonValueKind.Object) return null;
        if (p.TryGetProperty(layerType, out var typed) && typed.ValueKind == JsonValueKind.Object) p = typed;
        return OptionalDouble(p, name);
    }

    private static int[] TokenIds(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value)) return [];
        return value.ValueKind switch
        {
            JsonValueKind.Number => [value.GetInt32()],
            JsonValueKind.Array => value.EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            _ => [],
        };
    }

    private static int Int(JsonElement root, string name, string source) =>
        OptionalInt(root, name) ?? throw new InvalidDataException($"{source}: '{name}' is missing");

    private static int? OptionalInt(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;

    private static double? OptionalDouble(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    private static bool? OptionalBool(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    private static string? OptionalString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
