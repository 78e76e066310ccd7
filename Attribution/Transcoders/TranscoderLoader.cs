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
/// Reads transcoder checkpoints in the layouts the seed's sets use (docs/algorithm.md §8):
/// per-layer files (`layer_i.safetensors` of circuit-tracer, or GemmaScope `params.npz`) and
/// cross-layer folders (`W_enc_i.safetensors` + `W_dec_i.safetensors`).
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
            string folder = config.Transcoders.Count == 0 ? config.BaseDirectory : resolve(config.Transcoders[0]);
            return LoadCrossLayer(folder, config.InputHook, config.OutputHook, config.Activation, options);
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
            var tensors = CheckpointIndex.ReadFile(files[l]);
            string source = files[l];
            var decoderBias = tensors.Require("b_dec", source);
            var encoderBias = tensors.Require("b_enc", source);
            dModel = (int)decoderBias.Shape[^1];
            dTranscoder = (int)encoderBias.Shape[^1];
            bool npz = files[l].EndsWith(".npz", StringComparison.OrdinalIgnoreCase);

            var encoder = tensors.Require("W_enc", source);
            bool encoderRows = FeaturesAreRows(encoder, dTranscoder, dModel, preferRows: !npz, source);
            var decoder = tensors.Require("W_dec", source);
            bool decoderRows = FeaturesAreRows(decoder, dTranscoder, dModel, preferRows: true, source);

            var threshold = tensors.GetValueOrDefault("activation_function.threshold") ?? tensors.GetValueOrDefault("threshold");
            layers[l] = new TranscoderSet.SourceLayer(
                EncoderMatrix.Create(encoder, encoderRows, options.LazyEncoders, options.Device, options.DType),
                Small(encoderBias, options),
                MakeActivation(threshold, activation, options, source),
                Decoder(decoder, decoderRows, options),
                Small(decoderBias, options),
                tensors.TryGetValue("W_skip", out var skip) ? Small(skip, options) : null);
        }
        return new TranscoderSet(layers, readAt, writeAt, crossLayer: false, dModel, dTranscoder, options);
    }

    /// <summary>A cross-layer transcoder folder: W_enc_i.safetensors and W_dec_i.safetensors for i = 0..L−1.</summary>
    public static TranscoderSet LoadCrossLayer(string folder, ReadHook readAt, WriteHook writeAt, ActivationSpec? activation, TranscoderLoadOptions options)
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
                MakeActivation(enc.GetValueOrDefault($"threshold_{i}"), activation, options, encoderFile),
                Decoder(decoder, rows: true, options),
                Small(enc.Require($"b_dec_{i}", encoderFile), options),
                enc.TryGetValue($"W_skip_{i}", out var skip) ? Small(skip, options) : null);
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

    private static ActivationFunction MakeActivation(StoredTensor? threshold, ActivationSpec? declared, TranscoderLoadOptions options, string source)
    {
        if (threshold is not null) return new ActivationFunction.JumpRelu(Small(threshold, options));
        return (declared?.Kind ?? "relu").ToLowerInvariant() switch
        {
            "relu" => new ActivationFunction.Relu(),
            "topk" or "top_k" => declared!.K > 0 ? new ActivationFunction.TopK(declared.K)
                : throw new InvalidDataException($"{source}: a TopK transcoder set needs k > 0"),
            "jumprelu" or "jump_relu" => throw new InvalidDataException($"{source}: JumpReLU declared but the file has no threshold"),
            var other => throw new InvalidDataException($"{source}: unknown activation '{other}'"),
        };
    }

    private static Tensor Small(StoredTensor stored, TranscoderLoadOptions options)
    {
        using var raw = stored.Load();
        return raw.to(options.DType, options.Device).DetachFromDisposeScope();
    }
}
