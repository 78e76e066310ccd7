namespace Attribution.Transcoders;

using Attribution.Checkpoints;
using Attribution.Models;
using static TorchSharp.torch;

/// <summary>How a transcoder set is placed in memory and which numbers it computes in.</summary>
public sealed record TranscoderLoadOptions
{
    public Device Device { get; init; } = CPU;
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>Read decoder rows from the checkpoint only for the features that fire (default).</summary>
    public bool LazyDecoders { get; init; } = true;

    /// <summary>Stream encoder matrices from disk at every use instead of holding them (slow, small).</summary>
    public bool LazyEncoders { get; init; }
}

/// <summary>
/// Per-layer transcoders (PLT) or a cross-layer transcoder (CLT), behind one interface.
/// Features of source layer l read at layer l; a PLT feature writes to layer l, a CLT feature to
/// every layer l..L−1 (docs/algorithm.md §1). Math: pre = x·W_encᵀ + b_enc; a = act(pre);
/// ŷ_l' = Σ_{l ≤ l'} a_l·W_dec[l → l'] + b_dec[l'] (+ x_l'·W_skipᵀ).
/// </summary>
public sealed class TranscoderSet : IDisposable
{
    private readonly SourceLayer[] layers;
    private readonly TranscoderLoadOptions options;

    internal TranscoderSet(SourceLayer[] layers, ReadHook readAt, WriteHook writeAt, bool crossLayer, int dModel, int dTranscoder, TranscoderLoadOptions options)
    {
        this.layers = layers;
        this.options = options;
        ReadAt = readAt;
        WriteAt = writeAt;
        IsCrossLayer = crossLayer;
        DModel = dModel;
        DTranscoder = dTranscoder;
    }

    public int NLayers => layers.Length;

    public int DModel { get; }

    public int DTranscoder { get; }

    public ReadHook ReadAt { get; }

    public WriteHook WriteAt { get; }

    public bool IsCrossLayer { get; }

    public bool HasSkip => layers.Any(l => l.Skip is not null);

    public Device Device => options.Device;

    public ScalarType DType => options.DType;

    /// <summary>Layers a feature of <paramref name="sourceLayer"/> writes to: itself, or itself and every later one.</summary>
    public int WriteCount(int sourceLayer) => IsCrossLayer ? NLayers - sourceLayer : 1;

    public ActivationFunction Activation(int layer) => layers[layer].Activation;

    /// <summary>Pre-activations of layer <paramref name="layer"/>'s features: [..., d_model] → [..., d_transcoder].</summary>
    public Tensor PreActivations(int layer, Tensor read) =>
        layers[layer].Encoder.PreActivations(read.to(options.DType), layers[layer].EncoderBias);

    public Tensor Encode(int layer, Tensor read)
    {
        using var pre = PreActivations(layer, read);
        return layers[layer].Activation.Apply(pre);
    }

    /// <summary>Encoder rows of the given features: the direction whose dot product with the read point is the pre-activation. [n, d_model]</summary>
    public Tensor EncoderRows(int layer, IReadOnlyList<long> features) => layers[layer].Encoder.Rows(features);

    public Tensor EncoderBias(int layer) => layers[layer].EncoderBias;

    /// <summary>Decoder vectors of the given features for every layer they write: [n, WriteCount(layer), d_model].</summary>
    public Tensor DecoderRows(int layer, IReadOnlyList<long> features)
    {
        var source = layers[layer].Decoder;
        using var rows = source.Stored is { } stored ? stored.LoadRows(features) : Gather(source.Loaded!, features);
        return rows.to(options.DType, options.Device).view(features.Count, WriteCount(layer), DModel);
    }

    /// <summary>The decoder bias added at write layer <paramref name="writeLayer"/>: [d_model].</summary>
    public Tensor DecoderBias(int writeLayer) => layers[writeLayer].DecoderBias;

    /// <summary>The linear skip path written at <paramref name="layer"/> (x·W_skipᵀ), or null without one.</summary>
    public Tensor? Skip(int layer, Tensor read) =>
        layers[layer].Skip is { } w ? TorchSharp.torch.nn.functional.linear(read.to(options.DType), w) : null;

    private static Tensor Gather(Tensor matrix, IReadOnlyList<long> rows)
    {
        using var index = tensor(rows.ToArray(), device: matrix.device);
        return matrix.index_select(0, index);
    }

    public void Dispose()
    {
        foreach (var layer in layers) layer.Dispose();
    }

    /// <summary>One source layer: its encoder, activation, decoders (lazy or loaded) and biases.</summary>
    internal sealed class SourceLayer(EncoderMatrix encoder, Tensor encoderBias, ActivationFunction activation, DecoderMatrix decoder, Tensor decoderBias, Tensor? skip) : IDisposable
    {
        public EncoderMatrix Encoder { get; } = encoder;
        public Tensor EncoderBias { get; } = encoderBias;
        public ActivationFunction Activation { get; } = activation;
        public DecoderMatrix Decoder { get; } = decoder;
        public Tensor DecoderBias { get; } = decoderBias;
        public Tensor? Skip { get; } = skip;

        public void Dispose()
        {
            Encoder.Dispose();
            EncoderBias.Dispose();
            Activation.Dispose();
            Decoder.Loaded?.Dispose();
            DecoderBias.Dispose();
            Skip?.Dispose();
        }
    }

    /// <summary>Decoder rows [d_transcoder, writes·d_model], either read from disk per use or held.</summary>
    internal sealed record DecoderMatrix(StoredTensor? Stored, Tensor? Loaded);
}
