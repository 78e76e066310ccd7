namespace Attribution.Steering;

using static TorchSharp.torch;

/// <summary>
/// The next-token sampler of the reference server (TransformerLens' sample_logits): greedy at
/// temperature 0 (the penalty then plays no part); otherwise logits / temperature minus
/// freq_penalty × (occurrences of each token in the sequence so far), sampled from the
/// softmax. As there, only a positive penalty acts: a negative one (the Neuronpedia webapp offers
/// −2…2) is accepted and changes nothing.
/// </summary>
public sealed class Sampler : IDisposable
{
    private readonly double temperature;
    private readonly double frequencyPenalty;
    private readonly Generator generator;

    public Sampler(double temperature, double frequencyPenalty, long? seed)
    {
        this.temperature = temperature;
        this.frequencyPenalty = frequencyPenalty;
        generator = new Generator(seed is long s ? unchecked((ulong)s) : (ulong)Random.Shared.NextInt64());
    }

    /// <summary>The distribution sampled from, [vocab], for logits [vocab] after <paramref name="sequence"/>.</summary>
    public Tensor Distribution(Tensor logits, IReadOnlyList<int> sequence)
    {
        using var scope = NewDisposeScope();
        var adjusted = logits.to(ScalarType.Float32) / temperature;
        if (frequencyPenalty > 0)
        {
            using var ids = tensor(sequence.Select(t => (long)t).ToArray(), device: logits.device);
            adjusted = adjusted - frequencyPenalty * ids.bincount(null, logits.shape[0]).to(ScalarType.Float32);
        }
        return adjusted.softmax(-1).MoveToOuterDisposeScope();
    }

    public int Next(Tensor logits, IReadOnlyList<int> sequence)
    {
        if (temperature == 0) return (int)logits.argmax().item<long>();
        using var probabilities = Distribution(logits, sequence);
        using var cpu = probabilities.cpu();
        using var drawn = cpu.multinomial(1, generator: generator);
        return (int)drawn.item<long>();
    }

    public void Dispose() => generator.Dispose();
}
