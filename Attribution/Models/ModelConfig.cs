namespace Attribution.Models;

using System.Text.Json;

public enum ModelArchitecture
{
    Gemma2,
    Llama,
    Qwen3,
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
    public required double RopeTheta { get; init; }
    public Llama3RopeScaling? RopeScaling { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public string HiddenActivation { get; init; } = "silu";

    // Gemma-2 only
    public double? QueryPreAttnScalar { get; init; }
    public int? SlidingWindow { get; init; }
    public double? AttnLogitSoftcap { get; init; }
    public double? FinalLogitSoftcap { get; init; }

    /// <summary>Gemma's RMSNorm multiplies by (1 + weight) instead of weight.</summary>
    public bool NormWeightIsOffset => Architecture == ModelArchitecture.Gemma2;

    /// <summary>Gemma multiplies token embeddings by sqrt(d_model) before the first layer.</summary>
    public bool ScalesEmbeddings => Architecture == ModelArchitecture.Gemma2;

    /// <summary>Gemma-2 normalises the attention and MLP outputs before adding them to the residual.</summary>
    public bool HasSublayerOutputNorms => Architecture == ModelArchitecture.Gemma2;

    /// <summary>Qwen3 normalises queries and keys per head before rotary embedding.</summary>
    public bool HasQkNorm => Architecture == ModelArchitecture.Qwen3;

    public double AttentionScale => Math.Pow(QueryPreAttnScalar ?? HeadDim, -0.5);

    /// <summary>Gemma-2 alternates local (sliding window, even layers) and global attention.</summary>
    public int? WindowOfLayer(int layer) =>
        Architecture == ModelArchitecture.Gemma2 && layer % 2 == 0 ? SlidingWindow : null;

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
        int dModel = Int(root, "hidden_size", source);
        int nHeads = Int(root, "num_attention_heads", source);
        bool gemma = architecture == ModelArchitecture.Gemma2;
        return new ModelConfig
        {
            Architecture = architecture,
            VocabSize = Int(root, "vocab_size", source),
            DModel = dModel,
            DMlp = Int(root, "intermediate_size", source),
            NLayers = Int(root, "num_hidden_layers", source),
            NHeads = nHeads,
            NKvHeads = OptionalInt(root, "num_key_value_heads") ?? nHeads,
            HeadDim = OptionalInt(root, "head_dim") ?? dModel / nHeads,
            RmsNormEps = OptionalDouble(root, "rms_norm_eps") ?? 1e-6,
            RopeTheta = OptionalDouble(root, "rope_theta") ?? RopeParameter(root, "rope_theta") ?? 10000.0,
            RopeScaling = ParseRopeScaling(root),
            // Gemma-2 and Qwen3-4B tie the unembedding to the embedding; HF's default is tied too.
            TieWordEmbeddings = OptionalBool(root, "tie_word_embeddings") ?? true,
            AttentionBias = OptionalBool(root, "attention_bias") ?? false,
            BosTokenId = OptionalInt(root, "bos_token_id"),
            EosTokenIds = TokenIds(root, "eos_token_id"),
            HiddenActivation = OptionalString(root, "hidden_activation") ?? OptionalString(root, "hidden_act") ?? (gemma ? "gelu_pytorch_tanh" : "silu"),
            QueryPreAttnScalar = gemma ? OptionalDouble(root, "query_pre_attn_scalar") : null,
            SlidingWindow = gemma ? OptionalInt(root, "sliding_window") : null,
            AttnLogitSoftcap = gemma ? OptionalDouble(root, "attn_logit_softcapping") : null,
            FinalLogitSoftcap = gemma ? OptionalDouble(root, "final_logit_softcapping") : null,
        };
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
            _ => throw new NotSupportedException($"{source}: model type '{kind}' is not supported (Gemma-2, Llama, Qwen3)"),
        };
    }

    /// <summary>Older configs store rope settings as rope_scaling, newer ones as rope_parameters.</summary>
    private static Llama3RopeScaling? ParseRopeScaling(JsonElement root)
    {
        foreach (string key in new[] { "rope_scaling", "rope_parameters" })
        {
            if (!root.TryGetProperty(key, out var scaling) || scaling.ValueKind != JsonValueKind.Object) continue;
            string? type = OptionalString(scaling, "rope_type") ?? OptionalString(scaling, "type");
            if (type == "llama3")
            {
                return new Llama3RopeScaling(
                    OptionalDouble(scaling, "factor") ?? 8.0,
                    OptionalDouble(scaling, "low_freq_factor") ?? 1.0,
                    OptionalDouble(scaling, "high_freq_factor") ?? 4.0,
                    OptionalInt(scaling, "original_max_position_embeddings") ?? 8192);
            }
            if (type is not null and not "default")
                throw new NotSupportedException($"rope scaling '{type}' is not supported");
        }
        return null;
    }

    private static double? RopeParameter(JsonElement root, string name) =>
        root.TryGetProperty("rope_parameters", out var p) && p.ValueKind == JsonValueKind.Object ? OptionalDouble(p, name) : null;

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
