namespace Attribution.Steering;

using Attribution.Models;
using static TorchSharp.torch;

/// <summary>One position of a generation: its token and, from the last prompt token on, the top next-token probabilities.</summary>
public sealed record PositionLogits(int Token, IReadOnlyList<(int Token, float Probability)> TopNext);

/// <summary>The prompt and continuation tokens, with one entry per token (the BOS included), and the prompt's length.</summary>
public sealed record GenerationTrace(IReadOnlyList<int> Tokens, IReadOnlyList<PositionLogits> Positions, int PromptLength);

/// <summary>
/// Autoregressive generation with a KV cache: one forward pass over the prompt, then one per new
/// token. The run policy (plain, or with interventions) sees every pass. Every token gets an
/// entry; from the last prompt token on it carries the top_k probabilities of the model's
/// distribution at that position (softmax of the final logits, before temperature and penalty,
/// as the reference server reports them) — the last entry too, EOS included, which costs one
/// forward pass past the last sampled token. A full-recompute mode checks the cache.
/// </summary>
public static class TextGeneration
{
    public static GenerationTrace Generate(DecoderModel model, IReadOnlyList<int> prompt, GenerationOptions options, Func<RunPolicy> policyFactory,
        IReadOnlyCollection<int> stopTokens, bool useCache = true, CancellationToken cancellation = default)
    {
        using var noGrad = no_grad();
        using var sampler = new Sampler(options.Temperature, options.FreqPenalty, options.Seed);
        var policy = policyFactory();
        using var cache = useCache ? new KvCache(model.Config.NLayers) : null;
        var tokens = prompt.ToList();
        var positions = prompt.Take(prompt.Count - 1).Select(t => new PositionLogits(t, [])).ToList();

        var logits = NextLogits(model, tokens, tokens.Count, policy, policyFactory, cache);
        for (int generated = 0; ; generated++)
        {
            // A client that went away frees the accelerator at the next token.
            if (cancellation.IsCancellationRequested)
            {
                logits.Dispose();
                cancellation.ThrowIfCancellationRequested();
            }
            positions.Add(new PositionLogits(tokens[^1], TopNext(logits, options.TopK)));
            bool stopped = generated > 0 && stopTokens.Contains(tokens[^1]);
            if (stopped || generated == options.NTokens) break;
            int next = sampler.Next(logits, tokens);
            logits.Dispose();
            tokens.Add(next);
            logits = NextLogits(model, tokens, 1, policy, policyFactory, cache);
        }
        logits.Dispose();
        return new GenerationTrace(tokens, positions, prompt.Count);
    }

    /// <summary>Logits [vocab] at the last position, feeding the cache the <paramref name="newTokens"/> last tokens (or recomputing all).</summary>
    private static Tensor NextLogits(DecoderModel model, List<int> tokens, int newTokens, RunPolicy policy, Func<RunPolicy> policyFactory, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        var feed = cache is null ? tokens : tokens.GetRange(tokens.Count - newTokens, newTokens);
        using var ids = tensor(feed.Select(t => (long)t).ToArray(), device: model.Device).unsqueeze(0);
        var logits = model.ForwardLogits(ids, cache is null ? policyFactory() : policy, cache);
        var last = logits[0, -1].to(ScalarType.Float32);
        if (!last.isfinite().all().item<bool>())
            throw new NonFiniteLogitsException($"the model's logits are not finite after {tokens.Count} tokens: the steering overflows the model's arithmetic (a delta far beyond the features' activations?)");
        return last.MoveToOuterDisposeScope();
    }

    private static (int Token, float Probability)[] TopNext(Tensor logits, int k)
    {
        if (k == 0) return [];
        using var probabilities = logits.softmax(-1);
        var (values, indices) = probabilities.topk(Math.Min(k, (int)probabilities.shape[0]));
        using (values)
        using (indices)
        {
            var p = values.cpu().data<float>().ToArray();
            var t = indices.cpu().data<long>().ToArray();
            return t.Select((token, i) => ((int)token, p[i])).ToArray();
        }
    }
}

/// <summary>A steered run whose numbers overflowed: the request, not the service, is at fault.</summary>
public sealed class NonFiniteLogitsException : Exception
{
    public NonFiniteLogitsException()
    {
    }

    public NonFiniteLogitsException(string message)
        : base(message)
    {
    }

    public NonFiniteLogitsException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
