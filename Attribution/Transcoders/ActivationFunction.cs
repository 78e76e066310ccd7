namespace Attribution.Transcoders;

using static TorchSharp.torch;

/// <summary>A transcoder's nonlinearity, from pre-activations [..., d_transcoder] to activations.</summary>
public abstract class ActivationFunction : IDisposable
{
    public abstract Tensor Apply(Tensor preActivations);

    public virtual void Dispose() => GC.SuppressFinalize(this);

    public sealed class Relu : ActivationFunction
    {
        public override Tensor Apply(Tensor preActivations) => preActivations.relu();
    }

    /// <summary>JumpReLU: a = pre where pre > θ (one threshold per feature), else 0.</summary>
    public sealed class JumpRelu(Tensor thresholds) : ActivationFunction
    {
        public Tensor Thresholds { get; } = thresholds;

        public override Tensor Apply(Tensor preActivations)
        {
            using var open = preActivations > Thresholds;
            return preActivations * open.to(preActivations.dtype);
        }

        public override void Dispose()
        {
            Thresholds.Dispose();
            base.Dispose();
        }
    }

    /// <summary>TopK: keep the k largest pre-activations at each position, zero the rest.</summary>
    public sealed class TopK(int k) : ActivationFunction
    {
        public int K { get; } = k;

        public override Tensor Apply(Tensor preActivations)
        {
            var (values, indices) = preActivations.topk(K, dim: -1);
            using var scope = NewDisposeScope();
            var gate = zeros_like(preActivations).scatter_(-1, indices, ones_like(values));
            values.Dispose();
            indices.Dispose();
            return (preActivations * gate).MoveToOuterDisposeScope();
        }
    }
}
