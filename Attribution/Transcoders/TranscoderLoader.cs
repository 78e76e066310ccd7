namespace Attribution.Transcoders;

using Attribution.Checkpoints;
using Attribution.Models;
using static TorchSharp.torch;

/// <summary>The activation a transcoder set declares when its files carry no thresholds.</summary>
public sealed record ActivationSpec(string Kind, int K = 0)
{
    public static ActivationSpec Relu { get; } = new("relu");
}

/// <summary>
/// Reads transcoder checkpoints in the layouts circuit-tracer reads (docs/algorithm.md §8), with
/// its loaders' semantics:
/// <list type="bullet">
/// <item>per-layer files: circuit-tracer's `layer_i.safetensors` (W_enc, W_dec, b_enc, b_dec, optional
/// W_skip and activation_function.threshold; a declared `activation: relu | topk` wins over a
/// stored threshold), GemmaScope's `params.npz` and GemmaScope-2's `params.safetensors` (w_enc,
/// w_dec, threshold, optional affine_skip_connection: always JumpReLU, whatever is declared);</item>
/// <item>cross-layer sets: a folder of `W_enc_i.safetensors` + `W_dec_i.safetensors` (JumpReLU when
/// the files carry thresholds, else ReLU; a stored W_skip_i is not read, as circuit-tracer's CLT
/// loader does not), or GemmaScope-2's per-layer `params_layer_i.safetensors` listed in the config
/// (skip applied).</item>
/// </list>
/// </summary>
public static class TranscoderLoader
{
    /// <summary>
    /// Loads the set a config.yaml describes. <paramref name="resolve"/> turns each entry (a path
    /// relative to the config, an absolute path or an hf:// URI) into a local path.
    /// </summary>
    public static TranscoderSet Load(TranscoderSetConfig config, Func<string, string> resolve, TranscoderLoadOptions options)
    {
        if (config.Kind == TranscoderKind.CrossLayer)
        {
            if (config.Transcoders.Count > 1 || config.Transcoders is [var only] && only.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                return LoadGemmaScope2CrossLayer(config.Transcoders.Select(resolve).ToList(), config.InputHook, config.OutputHook, options);
            string folder = config.Transcoders.Count == 0 ? config.BaseDirectory : resolve(config.Transcoders[0]);
            return LoadCrossLayer(folder, config.InputHook, config.OutputHook, options);
        }
        if (config.Transcoders.Count == 0) throw new InvalidDataException("a transcoder_set config must list its transcoders");
        return LoadPerLayer(config.Transcoders.Select(resolve).ToList(), config.InputHook, config.OutputHook, config.Activation, options);
    }

    /// <summary>Loads a config.yaml whose entries are local paths (relative to the config or absolute).</summary>
    public static TranscoderSet LoadLocal(string configPath, TranscoderLoadOptions options)
    {
        var config = TranscoderSetConfig.Load(configPath);
        return Load(config, entry => Path.GetFullPath(entry, config.BaseDirectory), options);
    }

    /// <summary>One file per layer, in layer order.</summary>
    public static TranscoderSet LoadPerLayer(IReadOnlyList<string> files, ReadHook readAt, WriteHook writeAt, ActivationSpec? activation, TranscoderLoadOptions options)
    {
        if (files.Count == 0) throw new ArgumentException("a transcoder set needs at least one layer file", nameof(files));
        var layers = new TranscoderSet.SourceLayer[files.Count];
        int dModel = 0, dTranscoder = 0;
        for (int l = 0; l < files.Count; l++)
        {
            string source = files[l];
            var tensors = CheckpointIndex.ReadFile(source);
            var layout = LayoutOf(source, tensors);
            bool google = layout != LayerFileLayout.CircuitTracer;
            var decoderBias = tensors.Require("b_dec", source);
            var encoderBias = tensors.Require("b_enc", source);
            dModel = (int)decoderBias.Shape[^1];
            dTranscoder = (int)encoderBias.Shape[^1];

            // Google stores the encoder as [d_model, d_sae] (x @ w_enc); circuit-tracer as [d_sae, d_model].
            var encoder = tensors.Require(layout == LayerFileLayout.GemmaScope2 ? "w_enc" : "W_enc", source);
            bool encoderRows = FeaturesAreRows(encoder, dTranscoder, dModel, preferRows: !google, source);
            var decoder = tensors.Require(layout == LayerFileLayout.GemmaScope2 ? "w_dec" : "W_dec", source);
            bool decoderRows = FeaturesAreRows(decoder, dTranscoder, dModel, preferRows: true, source);

            var threshold = tensors.GetValueOrDefault("activation_function.threshold") ?? tensors.GetValueOrDefault("threshold");
            layers[l] = new TranscoderSet.SourceLayer(
                EncoderMatrix.Create(encoder, encoderRows, options.LazyEncoders, options.Device, options.DType),
                Small(encoderBias, options),
                google ? JumpRelu(threshold, options, source) : PerLayerActivation(threshold, activation, options, source),
                Decoder(decoder, decoderRows, options),
                Small(decoderBias, options),
                SkipWeight(tensors, layout, options));
        }
        return new TranscoderSet(layers, readAt, writeAt, crossLayer: false, dModel, dTranscoder, options);
    }

    /// <summary>A cross-layer transcoder folder: W_enc_i.safetensors and W_dec_i.safetensors for i = 0..L−1.</summary>
    public static TranscoderSet LoadCrossLayer(string folder, ReadHook readAt, WriteHook writeAt, TranscoderLoadOptions options)
    {
        int nLayers = 0;
        while (File.Exists(Path.Combine(folder, $"W_enc_{nLayers}.safetensors"))) nLayers++;
        if (nLayers == 0) throw new FileNotFoundException($"{folder} holds no W_enc_0.safetensors: not a cross-layer transcoder folder");

        var layers = new TranscoderSet.SourceLayer[nLayers];
        int dModel = 0, dTranscoder = 0;
        for (int i = 0; i < nLayers; i++)
        {
            string encoderFile = Path.Combine(folder, $"W_enc_{i}.safetensors");
            string decoderFile = Path.Combine(folder, $"W_dec_{i}.safetensors");
            var enc = SafetensorsFormat.ReadHeader(encoderFile);
            var dec = File.Exists(decoderFile) ? SafetensorsFormat.ReadHeader(decoderFile)
                : throw new FileNotFoundException($"{decoderFile} is missing for layer {i}");
            var encoder = enc.Require($"W_enc_{i}", encoderFile);
            dTranscoder = (int)encoder.Shape[0];
            dModel = (int)encoder.Shape[1];
            var decoder = dec.Require($"W_dec_{i}", decoderFile);
            if (decoder.Shape.Length != 3 || decoder.Shape[0] != dTranscoder || decoder.Shape[1] != nLayers - i || decoder.Shape[2] != dModel)
                throw new InvalidDataException($"{decoderFile}: W_dec_{i} has shape [{string.Join(", ", decoder.Shape)}], expected [{dTranscoder}, {nLayers - i}, {dModel}]");

            layers[i] = new TranscoderSet.SourceLayer(
                EncoderMatrix.Create(encoder, featuresAreRows: true, options.LazyEncoders, options.Device, options.DType),
                Small(enc.Require($"b_enc_{i}", encoderFile), options),
                enc.TryGetValue($"threshold_{i}", out var threshold) ? JumpRelu(threshold, options, encoderFile) : new ActivationFunction.Relu(),
                Decoder(decoder, rows: true, options),
                Small(enc.Require($"b_dec_{i}", encoderFile), options),
                skip: null);   // circuit-tracer's load_clt reads no W_skip_i: a stored one is not applied
        }
        return new TranscoderSet(layers, readAt, writeAt, crossLayer: true, dModel, dTranscoder, options);
    }

    /// <summary>Whether a [d_transcoder, d_model] matrix is stored with features as rows; square ones follow the format's convention.</summary>
    private static bool FeaturesAreRows(StoredTensor matrix, int dTranscoder, int dModel, bool preferRows, string source)
    {
        if (matrix.Shape.Length != 2) throw new InvalidDataException($"{source}: {matrix.Name} is not a matrix");
        bool rows = matrix.Shape[0] == dTranscoder && matrix.Shape[1] == dModel;
        bool columns = matrix.Shape[0] == dModel && matrix.Shape[1] == dTranscoder;
        if (!rows && !columns)
            throw new InvalidDataException($"{source}: {matrix.Name} has shape [{string.Join(", ", matrix.Shape)}], expected [{dTranscoder}, {dModel}] or its transpose");
        return rows && columns ? preferRows : rows;
    }

    private static TranscoderSet.DecoderMatrix Decoder(StoredTensor stored, bool rows, TranscoderLoadOptions options)
    {
        if (rows && options.LazyDecoders) return new(stored, null);
        using var raw = stored.Load();
        using var asRows = rows ? raw.reshape(stored.RowCount, -1) : raw.t();
        return new(null, asRows.to(options.DType, options.Device).contiguous().DetachFromDisposeScope());
    }

    /// <summary>
    /// GemmaScope-2's cross-layer layout: one params_layer_i.safetensors per source layer with
    /// w_enc [d_model, d_sae], w_dec [d_sae, n_layers, d_model] (the write layers from i on are
    /// used), b_enc, b_dec, threshold and optionally affine_skip_connection [d_model, d_model].
    /// Every listed file is a layer (circuit-tracer's loader iterates range(max(layer)), which
    /// leaves the last one out; we do not copy that).
    /// </summary>
    public static TranscoderSet LoadGemmaScope2CrossLayer(IReadOnlyList<string> files, ReadHook readAt, WriteHook writeAt, TranscoderLoadOptions options)
    {
        int nLayers = files.Count, dModel = 0, dTranscoder = 0;
        var layers = new TranscoderSet.SourceLayer[nLayers];
        for (int i = 0; i < nLayers; i++)
        {
            string source = files[i];
            var tensors = CheckpointIndex.ReadFile(source);
            var encoder = tensors.Require("w_enc", source);
            dModel = (int)encoder.Shape[0];
            dTranscoder = (int)encoder.Shape[1];
            var decoder = tensors.Require("w_dec", source);
            if (decoder.Shape.Length != 3 || decoder.Shape[0] != dTranscoder || decoder.Shape[1] != nLayers || decoder.Shape[2] != dModel)
                throw new InvalidDataException($"{source}: w_dec has shape [{string.Join(", ", decoder.Shape)}], expected [{dTranscoder}, {nLayers}, {dModel}]");
            using var allWrites = decoder.Load();
            using var fromHere = allWrites.narrow(1, i, nLayers - i).reshape(dTranscoder, -1);
            layers[i] = new TranscoderSet.SourceLayer(
                EncoderMatrix.Create(encoder, featuresAreRows: false, lazy: false, options.Device, options.DType),
                Small(tensors.Require("b_enc", source), options),
                JumpRelu(tensors.GetValueOrDefault("threshold"), options, source),
                new(null, fromHere.to(options.DType, options.Device).contiguous().DetachFromDisposeScope()),
                Small(tensors.Require("b_dec", source), options),
                SkipWeight(tensors, LayerFileLayout.GemmaScope2, options));
        }
        return new TranscoderSet(layers, readAt, writeAt, crossLayer: true, dModel, dTranscoder, options);
    }

    /// <summary>The per-layer file layouts, told apart by file type and tensor names.</summary>
    private enum LayerFileLayout
    {
        CircuitTracer,
        GemmaScopeNpz,
        GemmaScope2,
    }

    private static LayerFileLayout LayoutOf(string path, IReadOnlyDictionary<string, StoredTensor> tensors) =>
        path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase) ? LayerFileLayout.GemmaScopeNpz
        : tensors.ContainsKey("w_enc") ? LayerFileLayout.GemmaScope2
        : LayerFileLayout.CircuitTracer;

    /// <summary>
    /// The skip as a linear weight (x·Wᵀ): circuit-tracer's W_skip as stored; Google's
    /// affine_skip_connection is applied as x·A, so it is transposed.
    /// </summary>
    private static Tensor? SkipWeight(IReadOnlyDictionary<string, StoredTensor> tensors, LayerFileLayout layout, TranscoderLoadOptions options)
    {
        if (layout != LayerFileLayout.GemmaScope2)
            return tensors.TryGetValue("W_skip", out var skip) ? Small(skip, options) : null;
        if (!tensors.TryGetValue("affine_skip_connection", out var affine)) return null;
        using var raw = affine.Load();
        return raw.t().to(options.DType, options.Device).contiguous().DetachFromDisposeScope();
    }

    /// <summary>circuit-tracer's per-layer rule: a declared relu or topk wins; otherwise JumpReLU when the file has thresholds, else ReLU.</summary>
    private static ActivationFunction PerLayerActivation(StoredTensor? threshold, ActivationSpec? declared, TranscoderLoadOptions options, string source) =>
        (declared?.Kind.ToLowerInvariant()) switch
        {
            "relu" => new ActivationFunction.Relu(),
            "topk" or "top_k" => declared!.K > 0 ? new ActivationFunction.TopK(declared.K)
                : throw new InvalidDataException($"{source}: a TopK transcoder set needs k > 0"),
            null or "jumprelu" or "jump_relu" => threshold is null
                ? declared is null ? new ActivationFunction.Relu() : throw new InvalidDataException($"{source}: JumpReLU declared but the file has no threshold")
                : JumpRelu(threshold, options, source),
            var other => throw new InvalidDataException($"{source}: unknown activation '{other}'"),
        };

    private static ActivationFunction.JumpRelu JumpRelu(StoredTensor? threshold, TranscoderLoadOptions options, string source) =>
        new(Small(threshold ?? throw new InvalidDataException($"{source}: a JumpReLU transcoder file has no threshold"), options));

    private static Tensor Small(StoredTensor stored, TranscoderLoadOptions options)
    {
        using var raw = stored.Load();
        return raw.to(options.DType, options.Device).DetachFromDisposeScope();
    }
}
