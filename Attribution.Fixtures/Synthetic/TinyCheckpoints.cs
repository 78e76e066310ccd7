namespace Attribution.Synthetic;

using System.Text.Json;
using Attribution.Checkpoints;
using Attribution.Models;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>Shape and storage of a random model written in the real Hugging Face layout.</summary>
public sealed record TinyModelSpec
{
    public ModelArchitecture Architecture { get; init; } = ModelArchitecture.Gemma2;
    public int VocabSize { get; init; } = 256;
    public int DModel { get; init; } = 64;
    public int DMlp { get; init; } = 128;
    public int NLayers { get; init; } = 3;
    public int NHeads { get; init; } = 4;
    public int NKvHeads { get; init; } = 2;
    public int HeadDim { get; init; } = 16;
    public int BosTokenId { get; init; } = 2;
    public int EosTokenId { get; init; } = 1;
    public double WeightStd { get; init; } = 0.2;
    public ulong Seed { get; init; }
    public ScalarType StoreDType { get; init; } = ScalarType.Float32;

    /// <summary>config.json's _name_or_path (tiny/{architecture} when null).</summary>
    public string? Name { get; init; }

    /// <summary>Split the weights over two shards with a model.safetensors.index.json.</summary>
    public bool Sharded { get; init; }
}

public enum TinyTranscoderFormat
{
    /// <summary>circuit-tracer's layer_i.safetensors.</summary>
    Safetensors,

    /// <summary>GemmaScope's params.npz per layer (W_enc stored transposed).</summary>
    GemmaScopeNpz,

    /// <summary>
    /// GemmaScope-2's params.safetensors per layer (PLT) or params_layer_i.safetensors (CLT, w_dec
    /// over every write layer): lower-case names, w_enc as [d_model, d_sae], the skip as
    /// affine_skip_connection (x·A); JumpReLU only.
    /// </summary>
    GemmaScope2,
}

/// <summary>A random transcoder set; thresholds are calibrated so about <see cref="TargetL0"/> features fire per position.</summary>
public sealed record TinyTranscoderSpec
{
    public TranscoderKind Kind { get; init; } = TranscoderKind.PerLayer;
    public TinyTranscoderFormat Format { get; init; } = TinyTranscoderFormat.Safetensors;
    public string Activation { get; init; } = "jump_relu";
    public bool Skip { get; init; }
    public int DTranscoder { get; init; } = 96;
    public int TargetL0 { get; init; } = 12;
    public ReadHook? InputHook { get; init; }
    public WriteHook? OutputHook { get; init; }
    public ulong Seed { get; init; } = 1;
    public ScalarType StoreDType { get; init; } = ScalarType.Float32;
}

/// <summary>
/// One layer's transcoder: encoder [d_tc, d_model], encoder bias [d_tc], decoder [d_tc, d_model]
/// (a CLT's: [d_tc, layers after it, d_model]), decoder bias [d_model], JumpReLU thresholds [d_tc]
/// or null, and an optional skip matrix [d_model, d_model].
/// </summary>
public sealed record LayerTranscoder(Tensor Encoder, Tensor EncoderBias, Tensor Decoder, Tensor DecoderBias, Tensor? Threshold, Tensor? Skip);

/// <summary>
/// Writes seeded random models and transcoder sets to disk in the real formats, so tests, the
/// CLI and the bundled demo run with no downloads and exercise the real loading code.
/// </summary>
public static class TinyCheckpoints
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The hook points each architecture's published transcoders use.</summary>
    public static (ReadHook Read, WriteHook Write) DefaultHooks(ModelArchitecture architecture) => architecture switch
    {
        ModelArchitecture.Gemma2 => (ReadHook.Ln2Normalized, WriteHook.MlpOut),
        ModelArchitecture.Gemma3 => (ReadHook.MlpIn, WriteHook.MlpOut),   // GemmaScope-2: the normed MLP input → after the post-MLP norm
        ModelArchitecture.Qwen3 => (ReadHook.MlpIn, WriteHook.MlpHookOut),
        _ => (ReadHook.ResidMid, WriteHook.MlpHookOut),
    };

    /// <summary>Every weight of a model in the Hugging Face layout, with its shape, in a fixed order (the order seeded draws follow).</summary>
    public static IEnumerable<(string Name, long[] Shape)> WeightShapes(TinyModelSpec spec)
    {
        bool gemma = spec.Architecture is ModelArchitecture.Gemma2 or ModelArchitecture.Gemma3;
        yield return ("model.embed_tokens.weight", [spec.VocabSize, spec.DModel]);
        yield return ("model.norm.weight", [spec.DModel]);
        for (int l = 0; l < spec.NLayers; l++)
        {
            string p = $"model.layers.{l}.";
            yield return (p + "input_layernorm.weight", [spec.DModel]);
            yield return (p + "post_attention_layernorm.weight", [spec.DModel]);
            if (gemma)
            {
                yield return (p + "pre_feedforward_layernorm.weight", [spec.DModel]);
                yield return (p + "post_feedforward_layernorm.weight", [spec.DModel]);
            }
            yield return (p + "self_attn.q_proj.weight", [spec.NHeads * spec.HeadDim, spec.DModel]);
            yield return (p + "self_attn.k_proj.weight", [spec.NKvHeads * spec.HeadDim, spec.DModel]);
            yield return (p + "self_attn.v_proj.weight", [spec.NKvHeads * spec.HeadDim, spec.DModel]);
            yield return (p + "self_attn.o_proj.weight", [spec.DModel, spec.NHeads * spec.HeadDim]);
            if (spec.Architecture is ModelArchitecture.Qwen3 or ModelArchitecture.Gemma3)
            {
                yield return (p + "self_attn.q_norm.weight", [spec.HeadDim]);
                yield return (p + "self_attn.k_norm.weight", [spec.HeadDim]);
            }
            yield return (p + "mlp.gate_proj.weight", [spec.DMlp, spec.DModel]);
            yield return (p + "mlp.up_proj.weight", [spec.DMlp, spec.DModel]);
            yield return (p + "mlp.down_proj.weight", [spec.DModel, spec.DMlp]);
        }
    }

    public static void WriteModel(string folder, TinyModelSpec spec)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), ConfigJson(spec));
        using var scope = NewDisposeScope();
        using var generator = new Generator(spec.Seed);
        var weights = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        Tensor Random(params long[] shape) => (randn(shape, generator: generator) * spec.WeightStd).to(spec.StoreDType);

        foreach (var (name, shape) in WeightShapes(spec)) weights[name] = Random(shape);
        // Llama/Qwen RMSNorm multiplies by the weight itself: centre those weights on 1, as trained models are.
        if (spec.Architecture is not (ModelArchitecture.Gemma2 or ModelArchitecture.Gemma3))
        {
            foreach (var name in weights.Keys.Where(n => n.EndsWith("norm.weight", StringComparison.Ordinal)).ToList())
                weights[name] = (weights[name].to(ScalarType.Float32) + 1).to(spec.StoreDType);
        }

        if (!spec.Sharded)
        {
            SafetensorsFormat.Write(Path.Combine(folder, CheckpointIndex.SingleFile), weights, new Dictionary<string, string> { ["format"] = "pt" });
            return;
        }
        var names = weights.Keys.ToList();
        var shards = new[] { names.Take(names.Count / 2).ToList(), names.Skip(names.Count / 2).ToList() };
        var weightMap = new Dictionary<string, string>();
        for (int s = 0; s < shards.Length; s++)
        {
            string file = $"model-{s + 1:00000}-of-{shards.Length:00000}.safetensors";
            SafetensorsFormat.Write(Path.Combine(folder, file), shards[s].ToDictionary(n => n, n => weights[n]));
            foreach (var n in shards[s]) weightMap[n] = file;
        }
        File.WriteAllText(Path.Combine(folder, CheckpointIndex.ShardIndex),
            JsonSerializer.Serialize(new Dictionary<string, object> { ["metadata"] = new { }, ["weight_map"] = weightMap }));
    }

    /// <summary>Writes a random transcoder set for the model in <paramref name="modelFolder"/>; returns the config.yaml path.</summary>
    public static string WriteTranscoders(string folder, string modelFolder, TinyTranscoderSpec spec)
    {
        var config = ModelConfig.Load(modelFolder);
        var hooks = DefaultHooks(config.Architecture);
        var readAt = spec.InputHook ?? hooks.Read;
        var writeAt = spec.OutputHook ?? hooks.Write;
        int d = config.DModel, dtc = spec.DTranscoder, layers = config.NLayers;
        bool crossLayer = spec.Kind == TranscoderKind.CrossLayer;

        using var scope = NewDisposeScope();
        using var generator = new Generator(spec.Seed);
        var reads = CalibrationReads(modelFolder, readAt, writeAt, spec.Seed);

        var weights = new List<LayerTranscoder>();
        for (int l = 0; l < layers; l++)
        {
            var encoder = randn([dtc, d], generator: generator) / Math.Sqrt(d);
            var decoder = randn(crossLayer ? [dtc, layers - l, d] : [dtc, d], generator: generator) * (0.5 / Math.Sqrt(spec.TargetL0));
            var decoderBias = randn([d], generator: generator) * 0.05;
            var skip = spec.Skip ? randn([d, d], generator: generator) * (0.3 / Math.Sqrt(d)) : null;

            // One threshold for the layer, at the quantile where TargetL0 of d_tc features fire per
            // calibration position (a per-feature quantile cannot be estimated from a few positions),
            // jittered ±10% per feature.
            var pre = reads[l].matmul(encoder.t()).flatten();
            long keep = Math.Max(1, (long)Math.Round(pre.shape[0] * (double)spec.TargetL0 / dtc));
            var (top, _) = pre.topk((int)Math.Min(keep, pre.shape[0]));
            var jitter = 0.9 + 0.2 * rand([dtc], generator: generator);
            var threshold = (top[-1].clamp_min(1e-3) * jitter).to(ScalarType.Float32);

            weights.Add(spec.Activation switch
            {
                "jump_relu" => new LayerTranscoder(encoder, zeros(dtc), decoder, decoderBias, threshold, skip),
                "relu" => new LayerTranscoder(encoder, -threshold, decoder, decoderBias, null, skip),
                _ => new LayerTranscoder(encoder, randn([dtc], generator: generator) * 0.01, decoder, decoderBias, null, skip),
            });
        }
        var activation = spec.Activation == "topk" ? new ActivationSpec("topk", spec.TargetL0) : spec.Activation == "relu" ? ActivationSpec.Relu : null;
        return SaveTranscoders(folder, config, spec.Kind, spec.Format, activation, readAt, writeAt, weights, spec.StoreDType);
    }

    /// <summary>
    /// Writes one transcoder per layer in the layout <paramref name="format"/> names, with the
    /// config.yaml circuit-tracer reads; returns its path. A JumpReLU layer carries its thresholds;
    /// <paramref name="activation"/> (null for JumpReLU) is declared in config.yaml.
    /// </summary>
    public static string SaveTranscoders(string folder, ModelConfig config, TranscoderKind kind, TinyTranscoderFormat format, ActivationSpec? activation,
        ReadHook readAt, WriteHook writeAt, IReadOnlyList<LayerTranscoder> weights, ScalarType storeDType, string? modelName = null, string? setId = null)
    {
        Directory.CreateDirectory(folder);
        int d = config.DModel;
        bool crossLayer = kind == TranscoderKind.CrossLayer;
        var files = new List<string>();
        for (int l = 0; l < weights.Count; l++)
        {
            var (encoder, encoderBias, decoder, decoderBias, threshold, skip) = weights[l];
            long dtc = encoder.shape[0];
            if (format == TinyTranscoderFormat.GemmaScope2)
            {
                if (threshold is null) throw new ArgumentException("GemmaScope-2 transcoders are JumpReLU");
                // A CLT's w_dec spans every write layer; the ones before the source layer are unused.
                var allWrites = crossLayer ? cat([zeros([dtc, l, d]), decoder], 1) : decoder;
                var google = new Dictionary<string, Tensor>
                {
                    ["w_enc"] = encoder.t().contiguous(), ["w_dec"] = allWrites, ["b_enc"] = encoderBias, ["b_dec"] = decoderBias, ["threshold"] = threshold,
                };
                if (skip is not null) google["affine_skip_connection"] = skip.t().contiguous();
                string file = crossLayer ? $"params_layer_{l}.safetensors" : $"layer_{l}/params.safetensors";
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(folder, file))!);
                SafetensorsFormat.Write(Path.Combine(folder, file), Stored(google, storeDType));
                files.Add(file);
                continue;
            }

            var tensors = new Dictionary<string, Tensor>();
            string Suffix(string name) => crossLayer ? $"{name}_{l}" : name;
            tensors[Suffix("W_enc")] = encoder;
            tensors[Suffix("b_dec")] = decoderBias;
            tensors[Suffix("b_enc")] = encoderBias;
            if (threshold is not null)
                tensors[crossLayer ? $"threshold_{l}" : format == TinyTranscoderFormat.GemmaScopeNpz ? "threshold" : "activation_function.threshold"] = threshold;
            if (skip is not null) tensors[Suffix("W_skip")] = skip;

            if (crossLayer)
            {
                SafetensorsFormat.Write(Path.Combine(folder, $"W_enc_{l}.safetensors"), Stored(tensors, storeDType));
                SafetensorsFormat.Write(Path.Combine(folder, $"W_dec_{l}.safetensors"), Stored(new() { [$"W_dec_{l}"] = decoder }, storeDType));
            }
            else if (format == TinyTranscoderFormat.GemmaScopeNpz)
            {
                tensors["W_enc"] = encoder.t().contiguous();
                tensors["W_dec"] = decoder;
                string file = $"layer_{l}/params.npz";
                NpzFormat.Write(Path.Combine(folder, file), Stored(tensors, ScalarType.Float32));
                files.Add(file);
            }
            else
            {
                tensors["W_dec"] = decoder;
                string file = $"layer_{l}.safetensors";
                SafetensorsFormat.Write(Path.Combine(folder, file), Stored(tensors, storeDType));
                files.Add(file);
            }
        }

        // circuit-tracer's hub loader reads scan (and repo_id for CLTs); "gemma-scope-2" in the repo id selects Google's layout.
        string architecture = config.Architecture.ToString().ToLowerInvariant();
        setId ??= $"tiny/{(format == TinyTranscoderFormat.GemmaScope2 ? "gemma-scope-2-" : "")}{architecture}-{(crossLayer ? "clt" : "plt")}";
        var setConfig = new TranscoderSetConfig
        {
            ModelName = modelName ?? "tiny/" + architecture,
            Scan = setId,
            RepoId = setId,
            Kind = kind,
            InputHook = readAt,
            OutputHook = writeAt,
            Activation = activation,
            Transcoders = files,
        };
        string configPath = Path.Combine(folder, "config.yaml");
        File.WriteAllText(configPath, setConfig.ToYaml());
        return configPath;
    }

    /// <summary>Transcoder inputs of each layer over a few seeded random sequences: [positions, d_model].</summary>
    private static Tensor[] CalibrationReads(string modelFolder, ReadHook readAt, WriteHook writeAt, ulong seed)
    {
        using var model = DecoderModel.Load(modelFolder, CPU, ScalarType.Float32);
        using var generator = new Generator(seed + 7919);
        var perLayer = Enumerable.Range(0, model.Config.NLayers).Select(_ => new List<Tensor>()).ToArray();
        for (int sequence = 0; sequence < 4; sequence++)
        {
            using var ids = randint(model.Config.VocabSize, [1, 32], generator: generator);
            var (recording, logits) = CleanRecording.Record(model, readAt, writeAt, ids);
            using (recording)
            using (logits)
            {
                for (int l = 0; l < perLayer.Length; l++) perLayer[l].Add(recording.Reads[l][0].narrow(0, 1, 31).clone());
            }
        }
        return perLayer.Select(parts => cat(parts, 0)).ToArray();
    }

    private static Dictionary<string, Tensor> Stored(Dictionary<string, Tensor> tensors, ScalarType dtype) =>
        tensors.ToDictionary(kv => kv.Key, kv => kv.Value.to(dtype));

    internal static string ConfigJson(TinyModelSpec spec)
    {
        var config = new Dictionary<string, object>
        {
            ["_name_or_path"] = spec.Name ?? "tiny/" + spec.Architecture.ToString().ToLowerInvariant(),   // as transformers records where a model came from
            ["vocab_size"] = spec.VocabSize,
            ["hidden_size"] = spec.DModel,
            ["intermediate_size"] = spec.DMlp,
            ["num_hidden_layers"] = spec.NLayers,
            ["num_attention_heads"] = spec.NHeads,
            ["num_key_value_heads"] = spec.NKvHeads,
            ["head_dim"] = spec.HeadDim,
            ["bos_token_id"] = spec.BosTokenId,
            ["eos_token_id"] = spec.EosTokenId,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = spec.StoreDType == ScalarType.BFloat16 ? "bfloat16" : "float32",
        };
        switch (spec.Architecture)
        {
            case ModelArchitecture.Gemma2:
                config["model_type"] = "gemma2";
                config["architectures"] = new[] { "Gemma2ForCausalLM" };
                config["query_pre_attn_scalar"] = spec.HeadDim;
                config["sliding_window"] = 4;
                config["attn_logit_softcapping"] = 50.0;
                config["final_logit_softcapping"] = 30.0;
                config["hidden_activation"] = "gelu_pytorch_tanh";
                config["rms_norm_eps"] = 1e-6;
                config["rope_theta"] = 10000.0;
                break;
            case ModelArchitecture.Gemma3:
                // Every other layer global (the real models: every sixth), so a tiny model has both kinds.
                config["model_type"] = "gemma3_text";
                config["architectures"] = new[] { "Gemma3ForCausalLM" };
                config["query_pre_attn_scalar"] = spec.HeadDim;
                config["sliding_window"] = 4;
                config["sliding_window_pattern"] = 2;
                config["layer_types"] = Enumerable.Range(0, spec.NLayers).Select(i => (i + 1) % 2 != 0 ? "sliding_attention" : "full_attention").ToArray();
                config["hidden_activation"] = "gelu_pytorch_tanh";
                config["rms_norm_eps"] = 1e-6;
                config["rope_theta"] = 1000000.0;
                config["rope_local_base_freq"] = 10000.0;
                config["rope_scaling"] = new Dictionary<string, object> { ["rope_type"] = "linear", ["factor"] = 8.0 };
                config["final_logit_softcapping"] = null!;
                config["attn_logit_softcapping"] = null!;
                break;
            case ModelArchitecture.Llama:
                config["model_type"] = "llama";
                config["architectures"] = new[] { "LlamaForCausalLM" };
                config["hidden_act"] = "silu";
                config["rms_norm_eps"] = 1e-5;
                config["rope_theta"] = 500000.0;
                config["rope_scaling"] = new Dictionary<string, object>
                {
                    ["rope_type"] = "llama3", ["factor"] = 32.0, ["low_freq_factor"] = 1.0,
                    ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
                };
                break;
            case ModelArchitecture.Qwen3:
                config["model_type"] = "qwen3";
                config["architectures"] = new[] { "Qwen3ForCausalLM" };
                config["hidden_act"] = "silu";
                config["rms_norm_eps"] = 1e-6;
                config["rope_theta"] = 1000000.0;
                break;
        }
        return JsonSerializer.Serialize(config, Indented);
    }
}
