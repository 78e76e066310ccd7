namespace Attribution.Tracing;

using static TorchSharp.torch;

/// <summary>
/// One attribution target a request names (circuit-tracer's attribution targets): a token's logit,
/// or with <see cref="Minus"/> the difference of two logits (e.g. " Paris" − " London").
/// </summary>
public sealed record TargetRequest(long Token, long? Minus = null)
{
    /// <summary>
    /// The token id of the target's logit node: the token itself, or for a difference a virtual id
    /// past the vocabulary (vocabulary size + the target's place in the request), as circuit-tracer
    /// numbers its custom targets, so no difference node takes a real token's id.
    /// </summary>
    public long NodeToken(int place, long vocabularySize) => Minus is null ? Token : vocabularySize + place;
}

/// <summary>
/// The logits attributed from (docs/algorithm.md §5). By default the most likely next tokens until
/// their cumulative probability reaches <c>desired_logit_prob</c> (at most <c>max_n_logits</c>);
/// or the targets a request names. What is attributed is a direction at the final residual: a
/// token's demeaned logit (its unembedding vector minus the vocabulary mean), or a difference's
/// unembedding difference (the means cancel), weighted by the token's probability or, as
/// circuit-tracer's demo weighs a contrast, |p(token) − p(minus)|.
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

    /// <summary>[n_logits, d_model], the direction injected at the final residual for each target.</summary>
    public Tensor DemeanedVectors { get; }

    public int Count => TokenIds.Length;

    /// <summary>The targets of <paramref name="settings"/>: the ones it names, else the salient next tokens.</summary>
    public static LogitTargets For(Tensor logits, Tensor unembedding, AttributionSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings.Targets is { Count: > 0 } named ? Named(logits, unembedding, named) : Select(logits, unembedding, settings.MaxNLogits, settings.DesiredLogitProb);
    }

    /// <summary>Named targets, in the order given; every token must be in the vocabulary (checked by the caller, asserted here).</summary>
    public static LogitTargets Named(Tensor logits, Tensor unembedding, IReadOnlyList<TargetRequest> targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        long vocabulary = unembedding.shape[0];
        if (targets.Any(t => t.Token < 0 || t.Token >= vocabulary || t.Minus is < 0 || t.Minus >= vocabulary))
            throw new ArgumentOutOfRangeException(nameof(targets), $"a target token is outside the vocabulary (0-{vocabulary - 1})");
        using var scope = NewDisposeScope();
        var probabilities = logits.to(ScalarType.Float32).softmax(-1).cpu().data<float>().ToArray();
        var mean = unembedding.mean([0], keepdim: true);
        var vectors = targets.Select(t => t.Minus is long minus
            ? unembedding[t.Token].unsqueeze(0) - unembedding[minus].unsqueeze(0)
            : unembedding[t.Token].unsqueeze(0) - mean).ToArray();
        var weights = targets.Select(t => t.Minus is long minus
            ? Math.Abs(probabilities[t.Token] - probabilities[minus])
            : probabilities[t.Token]).ToArray();
        var ids = targets.Select((t, place) => t.NodeToken(place, vocabulary)).ToArray();
        var directions = cat(vectors, 0).MoveToOuterDisposeScope();
        return new LogitTargets(ids, weights, directions.DetachFromDisposeScope());
    }

    /// <summary>Salient next tokens from logits [vocab] (soft cap included) and the unembedding [vocab, d_model]: those tokens named.</summary>
    public static LogitTargets Select(Tensor logits, Tensor unembedding, int maxLogits, double desiredProbability) =>
        Named(logits, unembedding, [.. SalientTokens(logits, maxLogits, desiredProbability).Ids.Select(id => new TargetRequest(id))]);

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
