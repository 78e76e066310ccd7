namespace Attribution.Tracing;

using Attribution.Models;
using static TorchSharp.torch;

/// <summary>
/// What the clean forward pass of one prompt leaves behind for the frozen runs: attention
/// patterns, norm scales, the transcoder read point and the true MLP output at the write point
/// of every layer, and the final-normed residual. All detached, batch dimension 1.
/// </summary>
public sealed class CleanRecording : IDisposable
{
    private readonly Dictionary<(int Layer, NormPoint Point), Tensor> scales = [];

    internal CleanRecording(int layers)
    {
        Patterns = new Tensor[layers];
        Reads = new Tensor[layers];
        Writes = new Tensor[layers];
    }

    public Tensor[] Patterns { get; }

    public Tensor[] Reads { get; }

    public Tensor[] Writes { get; }

    public Tensor FinalResidual { get; private set; } = null!;

    public Tensor Scale(int layer, NormPoint point) => scales[(layer, point)];

    /// <summary>Runs the clean forward pass of <paramref name="ids"/> [1, positions], recording everything; returns logits.</summary>
    public static (CleanRecording Recording, Tensor Logits) Record(DecoderModel model, ReadHook readAt, WriteHook writeAt, Tensor ids)
    {
        var recording = new CleanRecording(model.Config.NLayers);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var logits = model.Logits(model.Forward(model.Embed(ids), new Recorder(recording, readAt, writeAt)));
        return (recording, logits.MoveToOuterDisposeScope());
    }

    public void Dispose()
    {
        foreach (var t in Patterns.Concat(Reads).Concat(Writes).Concat(scales.Values)) t?.Dispose();
        FinalResidual?.Dispose();
    }

    private static Tensor Keep(Tensor t) => t.detach().DetachFromDisposeScope();

    private sealed class Recorder(CleanRecording recording, ReadHook readAt, WriteHook writeAt) : RunPolicy
    {
        public override ReadHook ReadAt => readAt;

        public override WriteHook WriteAt => writeAt;

        /// <summary>
        /// What is recorded is kept outside the scopes; the rest of a block (its attention scores and
        /// their soft-capped, masked and softmaxed copies: ~6 × heads × n² each) goes when the block
        /// ends, not with the whole pass (at 2,021 tokens of the mid model the pass held ~4.7 GB).
        /// </summary>
        public override bool FreesBlockIntermediates => true;

        public override Tensor NormScale(int layer, NormPoint point, Func<Tensor> compute)
        {
            var scale = compute();
            recording.scales[(layer, point)] = Keep(scale);
            return scale;
        }

        public override Tensor AttentionPattern(int layer, Func<Tensor> compute)
        {
            var pattern = compute();
            recording.Patterns[layer] = Keep(pattern);
            return pattern;
        }

        public override void OnRead(int layer, Tensor read) => recording.Reads[layer] = Keep(read);

        public override Tensor Write(int layer, Tensor read, Func<Tensor> mlp)
        {
            var output = mlp();
            recording.Writes[layer] = Keep(output);
            return output;
        }

        public override void OnFinalResidual(Tensor normed) => recording.FinalResidual = Keep(normed);
    }
}
