namespace Attribution.Tests.Engine;

using Attribution.Loading;
using Attribution.Models;
using Attribution.Tracing;

/// <summary>The memory estimate's terms follow the shapes they are made of (docs/performance.md, "Memory estimate").</summary>
public class MemoryEstimateTests
{
    /// <summary>The mid benchmark model: Gemma-2 layout, 12 layers, d_model 512, 8 heads, 8,192 features per layer, ~64 firing per position.</summary>
    private static MemoryShape Mid(bool crossLayer = false) => new(new ModelConfig
    {
        Architecture = ModelArchitecture.Gemma2, VocabSize = 4096, DModel = 512, DMlp = 2048, NLayers = 12, NHeads = 8, NKvHeads = 4, HeadDim = 64,
        RmsNormEps = 1e-6, RopeTheta = 10000,
    }, DTranscoder: 8192, CrossLayer: crossLayer, Skip: false, ElementSize: 4, SilencedPositions: 1, Activity: new ActivityProfile(64, 160));

    private static long Term(MemoryEstimate estimate, string name) => estimate.Terms.Single(t => t.Term == name).Bytes;

    [Fact]
    public void Only_the_attention_patterns_grow_with_the_square_of_the_prompt()
    {
        var settings = new AttributionSettings { MaxFeatureNodes = 1000, BatchSize = 1 };
        var short_ = MemoryEstimate.For(Mid(), 1025, settings);
        var long_ = MemoryEstimate.For(Mid(), 2049, settings);
        Assert.Equal(4.0, Term(long_, "attention patterns") / (double)Term(short_, "attention patterns"), 2);
        foreach (var term in new[] { "prompt", "frozen pass", "contraction", "preparing" })
            Assert.InRange(Term(long_, term) / (double)Term(short_, term), 1.9, 2.1);
        Assert.Equal(Term(short_, "weights"), Term(long_, "weights"));
        Assert.Equal(64L * 2048 * 12, long_.ActiveFeatures);
        Assert.Equal(short_.Terms.Sum(t => t.Bytes), short_.PeakBytes);
    }

    [Fact]
    public void Tracing_attention_adds_its_passes()
    {
        var settings = new AttributionSettings { MaxFeatureNodes = 1000, BatchSize = 48 };
        var plain = MemoryEstimate.For(Mid(), 65, settings);
        var traced = MemoryEstimate.For(Mid(), 65, settings, tracesAttention: true);
        long frozenPass = Term(plain, "frozen pass"), heads = 2L * 12 * 48 * 65 * 8 * 64 * 4, propagation = 49L * 65 * 512 * 4 * (3 * 12 + 1);
        Assert.Equal(2 * (frozenPass + heads + propagation), Term(traced, "attention tracing"));
        Assert.Equal(plain.PeakBytes + Term(traced, "attention tracing"), traced.PeakBytes);
        Assert.DoesNotContain(plain.Terms, t => t.Term == "attention tracing");
        var qk = MemoryEstimate.For(Mid(), 65, settings, tracesAttention: true, tracesQk: true);
        Assert.Equal(2L * QkAttributions.MaxScores * (1000 + 13 * 65) * 64 * 4, Term(qk, "qk parts"));
        Assert.Equal(traced.PeakBytes + Term(qk, "qk parts"), qk.PeakBytes);
    }

    [Fact]
    public void Rows_are_whole_and_doubled_for_ranking_only_when_rounds_rank_from_them()
    {
        var oneRound = MemoryEstimate.For(Mid(), 65, new AttributionSettings { MaxFeatureNodes = 1000 });
        var ranked = MemoryEstimate.For(Mid(), 65, new AttributionSettings { MaxFeatureNodes = 1000, UpdateInterval = 4 });
        long selected = 1000, logits = 10, errorsAndTokens = 13 * 65, active = 64 * 64 * 12;
        Assert.Equal((selected + logits) * (active + errorsAndTokens) * 4 * 2, Term(ranked, "rows"));
        Assert.Equal((selected + logits) * (selected + errorsAndTokens) * 4, Term(ranked, "graph"));
        // Compact rows of one round are smaller than what preparing holds for a while: preparing sets the peak.
        Assert.DoesNotContain(oneRound.Terms, t => t.Term == "rows");
        Assert.Equal(12L * 65 * 8192 * 4 + active * 512 * 2 * 4, Term(oneRound, "preparing"));
        Assert.True(ranked.PeakBytes > oneRound.PeakBytes);
    }

    [Fact]
    public void A_cross_layer_set_holds_a_decoder_vector_per_layer_written()
    {
        var settings = new AttributionSettings { MaxFeatureNodes = 1000 };
        var perLayer = MemoryEstimate.For(Mid(), 65, settings);
        var crossLayer = MemoryEstimate.For(Mid(crossLayer: true), 65, settings);
        // Encoder + decoder rows: 1 + 1 vectors per feature against 1 + 6.5 (a CLT writes to 6.5 layers on average);
        // each write point contracts with the features of every layer that writes there.
        double activeVectors(MemoryEstimate e) => Term(e, "prompt") - 3.0 * 12 * 65 * 512 * 4;
        Assert.Equal(7.5 / 2, activeVectors(crossLayer) / activeVectors(perLayer), 6);
        Assert.Equal((160 * 6.5 + 1) / (160 + 1), Term(crossLayer, "contraction") / (double)Term(perLayer, "contraction"), 6);
    }

    [Fact]
    public void The_refusal_names_the_estimate_its_terms_and_the_limit()
    {
        var estimate = MemoryEstimate.For(Mid(), 2049, new AttributionSettings { MaxFeatureNodes = 1000 });
        var limit = new MemoryLimit(4_000_000_000, "MEMORY_LIMIT_GB");
        string refusal = limit.Refusal(estimate)!;
        Assert.StartsWith($"this graph would need about {estimate.PeakGb.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)} GB (runtime", refusal, StringComparison.Ordinal);
        Assert.Contains("attention patterns", refusal, StringComparison.Ordinal);
        Assert.Contains("for 2049 tokens and 1000 features, more than the 4.0 GB limit (MEMORY_LIMIT_GB)", refusal, StringComparison.Ordinal);
        Assert.Null(new MemoryLimit(estimate.PeakBytes, "MEMORY_LIMIT_GB").Refusal(estimate));
    }

    [Fact]
    public void Without_a_setting_the_limit_is_the_devices_memory()
    {
        var cpu = MemoryLimit.Resolve(null, "MEMORY_LIMIT_GB", "cpu");
        Assert.NotNull(cpu);
        Assert.InRange(cpu.Gb, 0.5, 1e6);

        // A CUDA device's memory as its driver reports it, by the device's index (cuda = cuda:0).
        var asked = new List<int>();
        long? Driver(int index)
        {
            asked.Add(index);
            return index == 1 ? 81_559 : null;   // an H100's "81559" MiB on the second card only
        }
        var second = MemoryLimit.Resolve(null, "MEMORY_LIMIT_GB", "cuda:1", Driver);
        Assert.Equal((81_559L * 1024 * 1024, "the memory of GPU 1, as its driver reports it"), (second!.Bytes, second.Source));
        Assert.Null(MemoryLimit.Resolve(null, "MEMORY_LIMIT_GB", "cuda", Driver));   // unreadable: no check
        Assert.Equal([1, 0], asked);

        // The setting wins over the device.
        var configured = MemoryLimit.Resolve(2.5, "MEMORY_LIMIT_GB", "cuda", Driver);
        Assert.Equal(("MEMORY_LIMIT_GB", 2.5), (configured!.Source, configured.Gb));
        Assert.Equal([1, 0], asked);
    }

    [Theory]
    [InlineData("81559\n", 81_559L)]
    [InlineData(" 24576 \n 24576\n", 24_576L)]
    [InlineData("[N/A]\n", null)]
    [InlineData("", null)]
    public void The_drivers_answer_is_read_in_MiB(string output, long? mib) => Assert.Equal(mib, MemoryLimit.ParseMiB(output));
}
