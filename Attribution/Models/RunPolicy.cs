namespace Attribution.Models;

using static TorchSharp.torch;

/// <summary>Where a transcoder reads its input (TransformerLens hook names, docs/algorithm.md §1).</summary>
public enum ReadHook
{
    /// <summary>hook_resid_mid: the residual stream after attention, before the pre-MLP norm.</summary>
    ResidMid,

    /// <summary>ln2.hook_normalized: x / rms(x) of that residual, before the norm weight.</summary>
    Ln2Normalized,

    /// <summary>mlp.hook_in: the MLP's actual input (norm weight applied).</summary>
    MlpIn,
}

/// <summary>Where a transcoder writes its output.</summary>
public enum WriteHook
{
    /// <summary>hook_mlp_out: what the MLP sublayer adds to the residual (after Gemma-2's post-MLP norm).</summary>
    MlpOut,

    /// <summary>mlp.hook_out: the raw MLP output (down projection), before any post-MLP norm.</summary>
    MlpHookOut,
}

/// <summary>The normalisations of a block, whose scales (1/rms) the frozen runs hold fixed.</summary>
public enum NormPoint
{
    AttentionInput,
    AttentionOutput,
    MlpInput,
    MlpOutput,
    Final,
}

/// <summary>
/// What one forward pass does beyond plain inference: the "frozen run" object of the
/// architecture. TorchSharp has no hooks, so the forward pass asks its policy at each named
/// point. Thunks are passed where a frozen run can skip work (attention scores, the MLP).
/// </summary>
public class RunPolicy
{
    public static RunPolicy Plain { get; } = new();

    public virtual ReadHook ReadAt => ReadHook.MlpIn;

    public virtual WriteHook WriteAt => WriteHook.MlpOut;

    /// <summary>
    /// Whether the forward pass frees each block's intermediate tensors when the block is done
    /// (autograd keeps what its backward needs). A policy that says so keeps whatever it records
    /// out of the dispose scopes itself; one that carries tensors from block to block says no.
    /// </summary>
    public virtual bool FreesBlockIntermediates => false;

    /// <summary>Called before each forward pass with the absolute positions it covers (incremental decoding starts past 0).</summary>
    public virtual void BeginForward(int positionOffset, int positions)
    {
    }

    /// <summary>The norm's inverse root-mean-square, [batch, positions, 1] in float32.</summary>
    public virtual Tensor NormScale(int layer, NormPoint point, Func<Tensor> compute) => compute();

    /// <summary>Whether the blocks' attention sublayers are left out (the residual stream passes them unchanged).</summary>
    public virtual bool SkipsAttention => false;

    /// <summary>Post-softmax attention weights, [batch, heads, queries, keys].</summary>
    public virtual Tensor AttentionPattern(int layer, Func<Tensor> compute) => compute();

    /// <summary>Pre-softmax attention scores, [batch, heads, queries, keys], scaled, before any soft cap and the mask (computed only where the pattern is).</summary>
    public virtual void OnAttentionScores(int layer, Tensor scores)
    {
    }

    /// <summary>The normed input of a layer's attention, [batch, positions, d_model]: what its queries, keys and values read.</summary>
    public virtual void OnAttentionInput(int layer, Tensor normed)
    {
    }

    /// <summary>The heads' mixed values before the output projection, [batch, positions, heads × head_dim]; a policy may add to them.</summary>
    public virtual Tensor AttentionHeads(int layer, Tensor mixed) => mixed;

    /// <summary>The transcoder input of a layer (the tensor at <see cref="ReadAt"/>).</summary>
    public virtual void OnRead(int layer, Tensor read)
    {
    }

    /// <summary>The MLP contribution at <see cref="WriteAt"/>; a policy may replace or edit it.</summary>
    public virtual Tensor Write(int layer, Tensor read, Func<Tensor> mlp) => mlp();

    /// <summary>The final-normed residual stream, the input of the unembedding.</summary>
    public virtual void OnFinalResidual(Tensor normed)
    {
    }
}
