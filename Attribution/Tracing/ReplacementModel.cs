namespace Attribution.Tracing;

using Attribution.Models;
using Attribution.Transcoders;

/// <summary>A model with a transcoder attached to every layer: the object attribution runs on.</summary>
public sealed class ReplacementModel : IDisposable
{
    public ReplacementModel(DecoderModel model, TranscoderSet transcoders)
    {
        if (transcoders.NLayers != model.Config.NLayers)
            throw new ArgumentException($"the transcoder set has {transcoders.NLayers} layers, the model {model.Config.NLayers}");
        if (transcoders.DModel != model.Config.DModel)
            throw new ArgumentException($"the transcoders' d_model is {transcoders.DModel}, the model's {model.Config.DModel}");
        Model = model;
        Transcoders = transcoders;
    }

    public DecoderModel Model { get; }

    public TranscoderSet Transcoders { get; }

    public int NLayers => Model.Config.NLayers;

    /// <summary>
    /// Leading positions whose features and errors are silenced (zeroed), as circuit-tracer does:
    /// position 0 holds the BOS, whose huge norm would otherwise dominate every graph.
    /// </summary>
    public const int SilencedPositions = 1;

    public void Dispose()
    {
        Model.Dispose();
        Transcoders.Dispose();
    }
}
