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
    /// position 0 holds the BOS, whose huge norm would otherwise dominate every graph; for the
    /// instruction-tuned Gemma-3 models also the chat header after it (<see cref="SilencedPositionsFor"/>).
    /// </summary>
    public int SilencedPositions { get; init; } = 1;

    /// <summary>
    /// circuit-tracer's rule: a Gemma-3 "-it" model's prompts open with &lt;bos&gt;&lt;start_of_turn&gt;user\n,
    /// and those four positions are silenced; every other model silences the BOS alone.
    /// </summary>
    public static int SilencedPositionsFor(string modelId) =>
        modelId.Contains("gemma-3", StringComparison.OrdinalIgnoreCase) && modelId.EndsWith("-it", StringComparison.OrdinalIgnoreCase) ? 4 : 1;

    public void Dispose()
    {
        Model.Dispose();
        Transcoders.Dispose();
    }
}
