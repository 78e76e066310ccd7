namespace Attribution.Tracing;

using static TorchSharp.torch;

/// <summary>
/// The logits attributed from (docs/algorithm.md §5): the most likely next tokens until their cumulative
/// probability reaches <c>desired_logit_prob</c> (at most <c>max_n_logits</c>). What is attributed
/// is each token's demeaned logit: its unembedding vector minus the vocabulary mean.
/// </summary>
public sealed class LogitTargets : IDisposable
{
    private LogitTargets(long[] tokenIds, float[] probabilities, Tensor demeanedVectors)
    {
        TokenIds = tokenIds;
        Probabilities = probabilities;
        DemeanedVectors = demeanedVectors;
    }

    public long[] TokenIds { get; }

    public float[] Probabilities { get; }

    /// <summary>[n_logits, d_model], the vector injected at the final residual for each target.</summary>
    public Tensor DemeanedVectors { get; }

    public int Count => TokenIds.Length;

    /// <summary>Salient next tokens from logits [vocab] (soft cap included) and the unembedding [vocab, d_model].</summary>
    public static LogitTargets Select(Tensor logits, Tensor unembedding, int maxLogits, double desiredProbability)
    {
        var (ids, probs) = SalientTokens(logits, maxLogits, desiredProbability);
        using var scope = NewDisposeScope();
        using var index = tensor(ids, device: unembedding.device);
        var mean = unembedding.mean([0], keepdim: true);
        var demeaned = (unembedding.index_select(0, index) - mean).MoveToOuterDisposeScope();
        return new LogitTargets(ids, probs, demeaned.DetachFromDisposeScope());
    }

    /// <summary>Top tokens by probability until the cumulative probability reaches the threshold.</summary>
    public static (long[] Ids, float[] Probabilities) SalientTokens(Tensor logits, int maxLogits, double desiredProbability)
    {
        using var scope = NewDisposeScope();
        var probabilities = logits.to(ScalarType.Float32).softmax(-1);
        var (topProbabilities, topIds) = probabilities.topk(Math.Min(maxLogits, (int)probabilities.shape[0]));
        var cumulative = topProbabilities.cumsum(0).cpu().data<float>().ToArray();
        // circuit-tracer: searchsorted(cumsum, p) + 1, i.e. up to and including the first prefix reaching p.
        int reached = Array.FindIndex(cumulative, c => c >= desiredProbability);
        int keep = reached < 0 ? cumulative.Length : reached + 1;
        return (topIds.cpu().data<long>().Take(keep).ToArray(), topProbabilities.cpu().data<float>().Take(keep).ToArray());
    }

    public void Dispose() => DemeanedVectors.Dispose();
}
