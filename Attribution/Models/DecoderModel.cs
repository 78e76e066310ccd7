namespace Attribution.Models;

using Attribution.Checkpoints;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

/// <summary>
/// A decoder-only transformer (Gemma-2, Gemma-3, Llama-3, Qwen3) written out as equations, one block per
/// layer. The same forward pass serves plain inference, the clean run that records what
/// attribution needs, the frozen attribution run and steering: a <see cref="RunPolicy"/>
/// decides at each named point (norm scales, attention patterns, transcoder read and write
/// points) what is recorded, frozen or edited.
/// </summary>
public sealed class DecoderModel : IDisposable
{
    // Where checkpoints keep the language model: text-only ones under model.*, the multimodal Gemma-3
    // ones under language_model.model.* (or, saved by newer transformers, model.language_model.*).
    private static readonly string[] LanguageModelPrefixes = ["model.", "language_model.model.", "model.language_model."];
    private static readonly string[] UnembeddingNames = ["lm_head.weight", "language_model.lm_head.weight"];

    private readonly Tensor embedding;          // [vocab, d_model]
    private readonly Tensor unembedding;        // [vocab, d_model]; the embedding when tied
    private readonly Tensor finalNorm;
    private readonly Block[] blocks;
    private readonly Tensor[] inverseFrequencies; // per distinct rotary base: [head_dim / 2], float32
    private readonly int[] rotaryOfLayer;         // layer → index into inverseFrequencies

    private DecoderModel(ModelConfig config, Device device, ScalarType dtype, Tensor embedding, Tensor unembedding, Tensor finalNorm, Block[] blocks)
    {
        Config = config;
        Device = device;
        DType = dtype;
        this.embedding = embedding;
        this.unembedding = unembedding;
        this.finalNorm = finalNorm;
        this.blocks = blocks;
        // Gemma-3's local and global layers rotate with different bases; the others share one table.
        var kinds = Enumerable.Range(0, config.NLayers).Select(config.RopeOfLayer).ToList();
        var distinct = kinds.Distinct().ToList();
        inverseFrequencies = [.. distinct.Select(k => RotaryInverseFrequencies(config, k.Theta, k.Scaled, device))];
        rotaryOfLayer = [.. kinds.Select(k => distinct.IndexOf(k))];
    }

    public ModelConfig Config { get; }

    public Device Device { get; }

    public ScalarType DType { get; }

    /// <summary>Norms and softmax run in float32 as in the reference, or float64 for a float64 model.</summary>
    private ScalarType NormType => DType == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>A layer's value projection, [kv_heads × head_dim, d_model]: kv head g reads rows g·head_dim onwards.</summary>
    public Tensor ValueWeight(int layer) => blocks[layer].Value;

    /// <summary>
    /// One side of a head's attention score as an affine map of the layer's normed attention input
    /// at one position (docs/algorithm.md §11): the query of head <paramref name="head"/> (or, with
    /// <paramref name="key"/>, the key of its key/value head) after the q/k norm — its scale frozen
    /// at the value <paramref name="input"/> gives it, as attribution freezes norms — and the rotary
    /// embedding at <paramref name="position"/>. Returns (Map [head_dim, d_model], Offset [head_dim]):
    /// side(x) = Map·x + Offset, the offset being what the projection's bias puts there. The
    /// pre-softmax score is <see cref="ModelConfig.AttentionScale"/> · query · key.
    /// </summary>
    public (Tensor Map, Tensor Offset) ScoreSide(int layer, int head, bool key, int position, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var block = blocks[layer];
        int headDim = Config.HeadDim, slot = key ? head / (Config.NHeads / Config.NKvHeads) : head;
        using var scope = NewDisposeScope();
        var weight = (key ? block.Key : block.Query).narrow(0, slot * headDim, headDim);
        var bias = (key ? block.KeyBias : block.QueryBias)?.narrow(0, slot * headDim, headDim) ?? zeros(headDim, DType, Device);
        // The per-head norm, frozen: a fixed scale per dimension (1/rms of this position's projection, times the weight).
        var perDimension = ones(headDim, NormType, Device);
        if ((key ? block.KeyNorm : block.QueryNorm) is { } norm)
        {
            var projected = (weight.matmul(input.to(DType)) + bias).to(NormType);
            var inverseRms = (projected.pow(2).mean([-1], keepdim: true) + Config.RmsNormEps).rsqrt();
            perDimension = inverseRms * (Config.NormWeightIsOffset ? norm.to(NormType) + 1.0 : norm.to(NormType));
        }
        var map = (perDimension.unsqueeze(1) * weight.to(NormType)).to(DType);
        var offset = (perDimension * bias.to(NormType)).to(DType);
        // The rotary embedding at this position, as the forward pass computes its tables ("rotate half").
        var angles = tensor((float)position, ScalarType.Float32, Device) * inverseFrequencies[rotaryOfLayer[layer]];
        var doubled = cat([angles, angles], -1);
        var (cos, sin) = (doubled.cos().to(DType), doubled.sin().to(DType));
        long half = headDim / 2;
        Tensor Rotate(Tensor x) => x * cos.view([headDim, .. Enumerable.Repeat(1L, (int)x.dim() - 1)])
            + cat([-x.narrow(0, half, half), x.narrow(0, 0, half)], 0) * sin.view([headDim, .. Enumerable.Repeat(1L, (int)x.dim() - 1)]);
        return (Rotate(map).MoveToOuterDisposeScope(), Rotate(offset).MoveToOuterDisposeScope());
    }

    /// <summary>Unembedding vectors, one row per vocabulary entry: [vocab, d_model].</summary>
    public Tensor Unembedding => unembedding;

    /// <summary>Loads a Hugging Face model folder (config.json + safetensors, sharded or not).</summary>
    public static DecoderModel Load(string folder, Device device, ScalarType dtype)
    {
        var config = ModelConfig.Load(folder);
        var stored = CheckpointIndex.ReadModelFolder(folder);
        return FromCheckpoint(config, name => stored.Require(name, folder).Load(), stored.ContainsKey, device, dtype);
    }

    /// <summary>Builds the model from named tensors, with the real Hugging Face names.</summary>
    public static DecoderModel FromCheckpoint(ModelConfig config, Func<string, Tensor> read, Func<string, bool> has, Device device, ScalarType dtype)
    {
        Tensor Take(string name)
        {
            using var raw = read(name);
            return raw.to(dtype, device).DetachFromDisposeScope();
        }
        Tensor? Maybe(string name) => has(name) ? Take(name) : null;

        bool gemma = config.IsGemma;
        string prefix = LanguageModelPrefixes.FirstOrDefault(p => has(p + "embed_tokens.weight")) ?? "model.";   // a vision tower is left unread
        var blocks = new Block[config.NLayers];
        for (int l = 0; l < config.NLayers; l++)
        {
            string p = $"{prefix}layers.{l}.";
            blocks[l] = new Block(
                InputNorm: Take(p + "input_layernorm.weight"),
                AttentionOutputNorm: gemma ? Take(p + "post_attention_layernorm.weight") : null,
                MlpInputNorm: Take(p + (gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight")),
                MlpOutputNorm: gemma ? Take(p + "post_feedforward_layernorm.weight") : null,
                Query: Take(p + "self_attn.q_proj.weight"),
                Key: Take(p + "self_attn.k_proj.weight"),
                Value: Take(p + "self_attn.v_proj.weight"),
                Output: Take(p + "self_attn.o_proj.weight"),
                QueryBias: Maybe(p + "self_attn.q_proj.bias"),
                KeyBias: Maybe(p + "self_attn.k_proj.bias"),
                ValueBias: Maybe(p + "self_attn.v_proj.bias"),
                OutputBias: Maybe(p + "self_attn.o_proj.bias"),
                QueryNorm: config.HasQkNorm ? Take(p + "self_attn.q_norm.weight") : null,
                KeyNorm: config.HasQkNorm ? Take(p + "self_attn.k_norm.weight") : null,
                Gate: Take(p + "mlp.gate_proj.weight"),
                Up: Take(p + "mlp.up_proj.weight"),
                Down: Take(p + "mlp.down_proj.weight"));
        }
        var embedding = Take(prefix + "embed_tokens.weight");
        string? head = UnembeddingNames.FirstOrDefault(has);
        var unembedding = config.TieWordEmbeddings || head is null ? embedding : Take(head);
        return new DecoderModel(config, device, dtype, embedding, unembedding, Take(prefix + "norm.weight"), blocks);
    }

    /// <summary>Token vectors as they enter the residual stream: [batch, positions, d_model].</summary>
    public Tensor Embed(Tensor ids)
    {
        using var flat = ids.to(Device).flatten();
        var vectors = embedding.index_select(0, flat).view([.. ids.shape, Config.DModel]);
        if (!Config.ScalesEmbeddings) return vectors;
        // Gemma rounds sqrt(d_model) to the model dtype before scaling, as in the reference.
        using var normalizer = tensor(Math.Sqrt(Config.DModel), DType, Device);
        return vectors * normalizer;
    }

    /// <summary>
    /// Runs every block on the residual stream <paramref name="residual"/> (positions starting at
    /// <paramref name="positionOffset"/>) and returns the final-normed residual.
    /// </summary>
    public Tensor Forward(Tensor residual, RunPolicy policy, int positionOffset = 0, KvCache? cache = null)
    {
        policy.BeginForward(positionOffset, (int)residual.shape[1]);
        using var span = new PositionSpan(this, positionOffset, residual.shape[1]);
        var h = residual;
        for (int l = 0; l < blocks.Length; l++)
        {
            using var blockScope = policy.FreesBlockIntermediates ? NewDisposeScope() : null;
            var output = BlockForward(l, h, policy, span, cache);
            h = blockScope is null ? output : output.MoveToOuterDisposeScope();
        }
        cache?.Advance(residual.shape[1]);
        var normed = RmsNorm(h, finalNorm, Config.NLayers, NormPoint.Final, policy).Output;
        policy.OnFinalResidual(normed);
        return normed;
    }

    /// <summary>Logits from the final-normed residual, with Gemma-2's final soft cap.</summary>
    public Tensor Logits(Tensor finalResidual)
    {
        var logits = F.linear(finalResidual, unembedding);
        return Config.FinalLogitSoftcap is double cap ? SoftCap(logits, cap) : logits;
    }

    /// <summary>Plain inference: ids [batch, positions] → logits [batch, positions, vocab].</summary>
    public Tensor ForwardLogits(Tensor ids, RunPolicy? policy = null, KvCache? cache = null)
    {
        int offset = cache?.Length ?? 0;
        return Logits(Forward(Embed(ids), policy ?? RunPolicy.Plain, offset, cache));
    }

    private Tensor BlockForward(int layer, Tensor h, RunPolicy policy, PositionSpan span, KvCache? cache)
    {
        var block = blocks[layer];
        var attentionIn = RmsNorm(h, block.InputNorm, layer, NormPoint.AttentionInput, policy).Output;
        policy.OnAttentionInput(layer, attentionIn);
        var residMid = h;
        if (!policy.SkipsAttention)
        {
            var attention = Attention(layer, block, attentionIn, policy, span, cache);
            if (block.AttentionOutputNorm is not null)
                attention = RmsNorm(attention, block.AttentionOutputNorm, layer, NormPoint.AttentionOutput, policy).Output;
            residMid = h + attention;
        }

        var (mlpIn, normalized) = RmsNorm(residMid, block.MlpInputNorm, layer, NormPoint.MlpInput, policy);
        var read = policy.ReadAt switch
        {
            ReadHook.ResidMid => residMid,
            ReadHook.Ln2Normalized => normalized.to(DType),
            _ => mlpIn,
        };
        policy.OnRead(layer, read);

        Tensor Mlp() => F.linear(Activation(F.linear(mlpIn, block.Gate)) * F.linear(mlpIn, block.Up), block.Down);
        Tensor OutputNorm(Tensor raw) => block.MlpOutputNorm is null ? raw
            : RmsNorm(raw, block.MlpOutputNorm, layer, NormPoint.MlpOutput, policy).Output;

        var sublayer = policy.WriteAt == WriteHook.MlpHookOut
            ? OutputNorm(policy.Write(layer, read, Mlp))
            : policy.Write(layer, read, () => OutputNorm(Mlp()));
        return residMid + sublayer;
    }

    private Tensor Attention(int layer, Block block, Tensor x, RunPolicy policy, PositionSpan span, KvCache? cache)
    {
        long batch = x.shape[0], positions = x.shape[1];
        int heads = Config.NHeads, kvHeads = Config.NKvHeads, headDim = Config.HeadDim, group = heads / kvHeads;

        var values = F.linear(x, block.Value, block.ValueBias).view(batch, positions, kvHeads, headDim).transpose(1, 2);
        Tensor? keys = null;
        if (cache is not null)
        {
            keys = Keys(layer, block, x, span);
            (keys, values) = cache.Append(layer, keys, values);
        }

        var pattern = policy.AttentionPattern(layer, () =>
        {
            var queries = F.linear(x, block.Query, block.QueryBias).view(batch, positions, heads, headDim);
            if (block.QueryNorm is not null) queries = HeadNorm(queries, block.QueryNorm);
            queries = span.Rotate(queries.transpose(1, 2), rotaryOfLayer[layer]);
            var allKeys = keys ?? Keys(layer, block, x, span);
            long keyCount = allKeys.shape[2];

            // Grouped-query attention: each key/value head serves `group` query heads.
            var scores = queries.view(batch, kvHeads, group, positions, headDim)
                .matmul(allKeys.unsqueeze(2).transpose(-1, -2))
                .view(batch, heads, positions, keyCount) * Config.AttentionScale;
            policy.OnAttentionScores(layer, scores);
            if (Config.AttnLogitSoftcap is double cap) scores = SoftCap(scores, cap);
            using var mask = MaskedKeys(span.Offset, positions, keyCount, Config.WindowOfLayer(layer));
            scores = scores.masked_fill(mask, double.NegativeInfinity);
            return scores.softmax(-1, NormType).to(DType);
        });

        long patternBatch = pattern.shape[0], keyLength = values.shape[2];
        Tensor mixed;
        if (patternBatch == 1 && batch > 1)
        {
            // One (frozen) pattern for every batch row: the batch goes into the value columns, so the
            // matmul never copies the [positions, keys] pattern per row, nor keeps those copies for
            // the backward (b × layers × heads × n² — 1.2 GB at 1,011 tokens of the mid model).
            var folded = values.permute(1, 2, 0, 3).reshape(1, kvHeads, 1, keyLength, batch * headDim);
            mixed = pattern.view(1, kvHeads, group, positions, keyLength)
                .matmul(folded)
                .view(kvHeads, group, positions, batch, headDim)
                .permute(3, 2, 0, 1, 4)
                .reshape(batch, positions, heads * headDim);
        }
        else
        {
            mixed = pattern.view(patternBatch, kvHeads, group, positions, keyLength)
                .matmul(values.unsqueeze(2))
                .reshape(batch, heads, positions, headDim)
                .transpose(1, 2)
                .reshape(batch, positions, heads * headDim);
        }
        return F.linear(policy.AttentionHeads(layer, mixed), block.Output, block.OutputBias);
    }

    private Tensor Keys(int layer, Block block, Tensor x, PositionSpan span)
    {
        var keys = F.linear(x, block.Key, block.KeyBias).view(x.shape[0], x.shape[1], Config.NKvHeads, Config.HeadDim);
        if (block.KeyNorm is not null) keys = HeadNorm(keys, block.KeyNorm);
        return span.Rotate(keys.transpose(1, 2), rotaryOfLayer[layer]);
    }

    /// <summary>True where a query may not see a key: the future, or beyond a sliding window.</summary>
    private Tensor MaskedKeys(int positionOffset, long queries, long keys, int? window)
    {
        using var queryPositions = arange(positionOffset, positionOffset + queries, device: Device).unsqueeze(1);
        using var keyPositions = arange(0, keys, device: Device).unsqueeze(0);
        var masked = keyPositions > queryPositions;
        if (window is int w)
        {
            using var outside = (queryPositions - keyPositions) >= w;
            masked = masked.logical_or_(outside);
        }
        return masked;
    }

    /// <summary>
    /// The positions of one forward pass and their rotary tables, computed on first use (a frozen
    /// pass never needs them) and then shared by every layer's queries and keys.
    /// </summary>
    private sealed class PositionSpan(DecoderModel model, int offset, long count) : IDisposable
    {
        private readonly (Tensor Cos, Tensor Sin)?[] tables = new (Tensor, Tensor)?[model.inverseFrequencies.Length];

        public int Offset => offset;

        /// <summary>Rotary position embedding, the non-interleaved "rotate half" form; x: [batch, heads, positions, head_dim].</summary>
        public Tensor Rotate(Tensor x, int rotary)
        {
            var (cos, sin) = tables[rotary] ??= Tables(model.inverseFrequencies[rotary]);
            long half = x.shape[3] / 2;
            using var rotated = cat([-x.narrow(3, half, half), x.narrow(3, 0, half)], -1);
            return x * cos + rotated * sin;
        }

        private (Tensor, Tensor) Tables(Tensor inverseFrequencies)
        {
            using var scope = NewDisposeScope();
            var angles = arange(offset, offset + count, ScalarType.Float32, model.Device).unsqueeze(1) * inverseFrequencies.unsqueeze(0);
            var doubled = cat([angles, angles], -1);
            return (doubled.cos().to(model.DType).DetachFromDisposeScope(), doubled.sin().to(model.DType).DetachFromDisposeScope());
        }

        public void Dispose()
        {
            foreach (var table in tables)
            {
                table?.Cos.Dispose();
                table?.Sin.Dispose();
            }
        }
    }

    /// <summary>
    /// RMSNorm computed in float32. Returns the output and x / rms(x) before the weight
    /// (TransformerLens' hook_normalized). The scale 1/rms goes through the policy, which may freeze it.
    /// </summary>
    private (Tensor Output, Tensor Normalized) RmsNorm(Tensor x, Tensor weight, int layer, NormPoint point, RunPolicy policy)
    {
        var x32 = x.to(NormType);
        var scale = policy.NormScale(layer, point, () => (x32.pow(2).mean([-1], keepdim: true) + Config.RmsNormEps).rsqrt());
        var normalized = x32 * scale;
        var output = Config.NormWeightIsOffset
            ? (normalized * (weight.to(NormType) + 1.0)).to(x.dtype)
            : weight * normalized.to(x.dtype);
        return (output, normalized);
    }

    /// <summary>The per-head query/key norm of Qwen3 (weight) and Gemma-3 (1 + weight); never frozen, it only shapes patterns.</summary>
    private Tensor HeadNorm(Tensor x, Tensor weight)
    {
        var x32 = x.to(NormType);
        var normalized = x32 * (x32.pow(2).mean([-1], keepdim: true) + Config.RmsNormEps).rsqrt();
        return Config.NormWeightIsOffset
            ? (normalized * (weight.to(NormType) + 1.0)).to(x.dtype)
            : weight * normalized.to(x.dtype);
    }

    private Tensor Activation(Tensor x) => Config.HiddenActivation switch
    {
        "gelu_pytorch_tanh" or "gelu_tanh" => x.gelu(TorchSharp.Modules.GELU.Approximate.tanh),
        "gelu" => x.gelu(),
        "silu" or "swish" => F.silu(x),
        _ => throw new NotSupportedException($"activation '{Config.HiddenActivation}' is not supported"),
    };

    private static Tensor SoftCap(Tensor x, double cap) => (x / cap).tanh() * cap;

    /// <summary>
    /// Rotary inverse frequencies in float32 for base <paramref name="theta"/>; when
    /// <paramref name="scaled"/>, with Llama 3's frequency-dependent scaling or a linear factor.
    /// </summary>
    private static Tensor RotaryInverseFrequencies(ModelConfig config, double theta, bool scaled, Device device)
    {
        using var scope = NewDisposeScope();
        int dim = config.HeadDim;
        var exponents = arange(0, dim, 2, ScalarType.Int64).to(ScalarType.Float32) / dim;
        var inverse = 1.0f / full_like(exponents, (float)theta).pow(exponents);
        if (scaled && config.RopeLinearFactor != 1.0) inverse = inverse / config.RopeLinearFactor;
        if (scaled && config.RopeScaling is { } s)
        {
            double lowWavelength = s.OriginalMaxPositions / s.LowFreqFactor;
            double highWavelength = s.OriginalMaxPositions / s.HighFreqFactor;
            var wavelength = 2 * Math.PI / inverse;
            // Long wavelengths are divided by the factor, short ones kept, the band between blended.
            var longKept = where(wavelength > lowWavelength, inverse / s.Factor, inverse);
            var smooth = (s.OriginalMaxPositions / wavelength - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            var blended = (1 - smooth) * longKept / s.Factor + smooth * longKept;
            var medium = (wavelength >= highWavelength).logical_and(wavelength <= lowWavelength);
            inverse = where(medium, blended, longKept);
        }
        return inverse.to(device).MoveToOuterDisposeScope().DetachFromDisposeScope();
    }

    public void Dispose()
    {
        var tensors = new List<Tensor?> { embedding, unembedding, finalNorm };
        tensors.AddRange(inverseFrequencies);
        foreach (var b in blocks)
        {
            tensors.AddRange([b.InputNorm, b.AttentionOutputNorm, b.MlpInputNorm, b.MlpOutputNorm, b.Query, b.Key, b.Value, b.Output,
                b.QueryBias, b.KeyBias, b.ValueBias, b.OutputBias, b.QueryNorm, b.KeyNorm, b.Gate, b.Up, b.Down]);
        }
        foreach (var t in tensors.Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor?>()) t?.Dispose();
    }

    private sealed record Block(
        Tensor InputNorm, Tensor? AttentionOutputNorm, Tensor MlpInputNorm, Tensor? MlpOutputNorm,
        Tensor Query, Tensor Key, Tensor Value, Tensor Output,
        Tensor? QueryBias, Tensor? KeyBias, Tensor? ValueBias, Tensor? OutputBias,
        Tensor? QueryNorm, Tensor? KeyNorm,
        Tensor Gate, Tensor Up, Tensor Down);
}
