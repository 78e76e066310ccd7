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
    /// <summary>Well inside float32's normal range (≥ 1.2e-38).</summary>
    private const double SmallestTemperature = 1e-30;

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
        var raw = logits.to(ScalarType.Float32);
        // Shifted by the maximum before the division (softmax does not see a shift), so every value is
        // ≤ 0 and the top one 0; a temperature below float32's range (1e-300 is 0 there, and 0/0 NaN)
        // divides as its smallest one does: greedy in effect, as it is in the limit.
        var tempered = (raw - raw.max()) / Math.Max(temperature, SmallestTemperature);
        var adjusted = tempered;
        if (frequencyPenalty > 0)
        {
            using var ids = tensor(sequence.Select(t => (long)t).ToArray(), device: logits.device);
            var counts = ids.bincount(null, logits.shape[0]).to(ScalarType.Float32);
            // Only counted tokens are penalised: 0 × a penalty beyond float32 (1e308 → ∞) would be NaN.
            adjusted = tempered - where(counts > 0, counts * frequencyPenalty, zeros_like(counts));
            // A penalty that rules out every token leaves the tempered distribution.
            if (float.IsNegativeInfinity(adjusted.max().item<float>())) adjusted = tempered;
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
