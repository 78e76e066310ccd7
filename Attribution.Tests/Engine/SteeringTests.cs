namespace Attribution.Tests.Engine;

using Attribution.Models;
using Attribution.Requests;
using Attribution.Steering;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>Feature interventions, KV-cached generation and the sampler (issue #5).</summary>
public class SteeringTests
{
    /// <summary>Adds fixed vectors at write points: the hand-made version of an intervention.</summary>
    private sealed class ManualEdit(TranscoderSet transcoders, Dictionary<int, Tensor> additions) : RunPolicy
    {
        public override ReadHook ReadAt => transcoders.ReadAt;
        public override WriteHook WriteAt => transcoders.WriteAt;
        public override Tensor Write(int layer, Tensor read, Func<Tensor> mlp) =>
            additions.TryGetValue(layer, out var add) ? mlp() + add : mlp();
    }

    private static readonly SteeringVocabulary NoStops = new(BosId: -1, StopIds: []);

    private static TinyReplacement Tiny(TranscoderKind kind, ModelArchitecture architecture = ModelArchitecture.Gemma2) =>
        new(new TinyModelSpec { Architecture = architecture, Seed = 21 }, new TinyTranscoderSpec { Kind = kind, Seed = 6 }, ScalarType.Float64);

    private static Tensor Logits(ReplacementModel replacement, int[] tokens, RunPolicy policy)
    {
        using var ids = tensor(tokens.Select(t => (long)t).ToArray()).unsqueeze(0);
        using var noGrad = no_grad();
        return replacement.Model.ForwardLogits(ids, policy);
    }

    /// <summary>An active feature of layer 1 at a middle position, with its clean activation (stored as float32) and decoder vectors.</summary>
    private static (int Layer, int Index, int Position, double Activation, Tensor Decoders) SomeActiveFeature(ReplacementModel replacement, int[] tokens)
    {
        using var prompt = PreparedPrompt.Prepare(replacement, tokens);
        var active = prompt.Active;
        int node = Enumerable.Range(0, active.Count).First(i => active.Layers[i] == 1 && active.Positions[i] == 4);
        var (start, _) = active.RangeOfLayer(1);
        var decoders = replacement.Transcoders.DecoderRows(1, [active.Indices[node]])[0];   // [writes, d]
        return (1, (int)active.Indices[node], 4, active.Values[node], decoders.DetachFromDisposeScope());
    }

    private static Dictionary<int, Tensor> AddAt(int layer, int position, int length, Tensor decoders, double scale)
    {
        var additions = new Dictionary<int, Tensor>();
        for (int w = 0; w < decoders.shape[0]; w++)
        {
            var delta = zeros(1, length, decoders.shape[1], decoders.dtype);
            delta[0, position] = decoders[w] * scale;
            additions[layer + w] = delta;
        }
        return additions;
    }

    [Theory]
    [InlineData(TranscoderKind.PerLayer)]
    [InlineData(TranscoderKind.CrossLayer)]
    public void Ablating_a_feature_equals_removing_its_decoder_contribution_by_hand(TranscoderKind kind)
    {
        using var tiny = Tiny(kind);
        var tokens = tiny.Prompt(8);
        var (layer, index, position, activation, decoders) = SomeActiveFeature(tiny.Replacement, tokens);
        Assert.True(activation > 0);

        using var steered = Logits(tiny.Replacement, tokens, new InterventionRun(tiny.Replacement.Transcoders, [new FeatureSetting(layer, index, 0, position, int.MaxValue)], null, tokens.Length));
        using var byHand = Logits(tiny.Replacement, tokens, new ManualEdit(tiny.Replacement.Transcoders, AddAt(layer, position, tokens.Length, decoders, -activation)));
        using var plain = Logits(tiny.Replacement, tokens, RunPolicy.Plain);

        Assert.True(steered.allclose(byHand, rtol: 1e-6, atol: 1e-7), "ablation must remove exactly a·W_dec at the write point(s)");
        Assert.False(steered.allclose(plain, rtol: 1e-6, atol: 1e-6), "ablating an active feature should change the logits");
    }

    [Fact]
    public void Delta_sets_the_feature_to_its_clean_activation_plus_delta()
    {
        using var tiny = Tiny(TranscoderKind.PerLayer, ModelArchitecture.Llama);
        var tokens = tiny.Prompt(8);
        var (layer, index, position, activation, decoders) = SomeActiveFeature(tiny.Replacement, tokens);

        using var steered = Logits(tiny.Replacement, tokens, new InterventionRun(tiny.Replacement.Transcoders, [new FeatureSetting(layer, index, activation + 3.5, position, int.MaxValue)], null, tokens.Length));
        using var byHand = Logits(tiny.Replacement, tokens, new ManualEdit(tiny.Replacement.Transcoders, AddAt(layer, position, tokens.Length, decoders, 3.5)));
        Assert.True(steered.allclose(byHand, rtol: 1e-6, atol: 1e-7));
    }

    [Fact]
    public void Cross_layer_interventions_write_to_every_later_layer()
    {
        using var tiny = Tiny(TranscoderKind.CrossLayer);
        var tokens = tiny.Prompt(8);
        var (layer, index, position, activation, decoders) = SomeActiveFeature(tiny.Replacement, tokens);
        Assert.Equal(tiny.Replacement.NLayers - layer, decoders.shape[0]);

        using var steered = Logits(tiny.Replacement, tokens, new InterventionRun(tiny.Replacement.Transcoders, [new FeatureSetting(layer, index, activation + 2, position, int.MaxValue)], null, tokens.Length));
        using var allLayers = Logits(tiny.Replacement, tokens, new ManualEdit(tiny.Replacement.Transcoders, AddAt(layer, position, tokens.Length, decoders, 2)));
        using var firstOnly = Logits(tiny.Replacement, tokens, new ManualEdit(tiny.Replacement.Transcoders, AddAt(layer, position, tokens.Length, decoders.narrow(0, 0, 1), 2)));
        Assert.True(steered.allclose(allLayers, rtol: 1e-6, atol: 1e-7));
        Assert.False(steered.allclose(firstOnly, rtol: 1e-6, atol: 1e-6), "a CLT feature writes beyond its own layer");
    }

    /// <summary>A hand-made edit with the clean run's attention patterns: what circuit-tracer freezes, and nothing else.</summary>
    private sealed class FrozenPatternsEdit(TranscoderSet transcoders, Dictionary<int, Tensor> additions, CleanRecording clean) : RunPolicy
    {
        public override ReadHook ReadAt => transcoders.ReadAt;
        public override WriteHook WriteAt => transcoders.WriteAt;
        public override Tensor Write(int layer, Tensor read, Func<Tensor> mlp) =>
            additions.TryGetValue(layer, out var add) ? mlp() + add : mlp();
        public override Tensor AttentionPattern(int layer, Func<Tensor> compute)
        {
            using var computed = compute();
            return clean.Patterns[layer].expand(computed.shape).clone();
        }
    }

    [Theory]
    [InlineData(ModelArchitecture.Gemma2)]
    [InlineData(ModelArchitecture.Llama)]
    public void Freezing_attention_freezes_the_patterns_only_and_norm_scales_follow_the_steered_run(ModelArchitecture architecture)
    {
        // Upstream (circuit-tracer's feature_intervention_generate) freezes attention patterns;
        // norm scales are recomputed, so a delta at a prompt position moves its later norms.
        using var tiny = Tiny(TranscoderKind.PerLayer, architecture);
        var tokens = tiny.Prompt(8);
        var (layer, index, position, activation, decoders) = SomeActiveFeature(tiny.Replacement, tokens);
        var transcoders = tiny.Replacement.Transcoders;
        using var ids = tensor(tokens.Select(t => (long)t).ToArray()).unsqueeze(0);
        var (clean, cleanLogits) = CleanRecording.Record(tiny.Replacement.Model, transcoders.ReadAt, transcoders.WriteAt, ids);
        using (clean)
        using (cleanLogits)
        {
            using var steered = Logits(tiny.Replacement, tokens, new InterventionRun(transcoders, [new FeatureSetting(layer, index, activation + 40, position, int.MaxValue)], clean, tokens.Length));
            using var byHand = Logits(tiny.Replacement, tokens, new FrozenPatternsEdit(transcoders, AddAt(layer, position, tokens.Length, decoders, 40), clean));
            Assert.True(steered.allclose(byHand, rtol: 1e-6, atol: 1e-7), $"max |Δ| {(steered - byHand).abs().max().item<double>()}");
            Assert.False(steered.allclose(cleanLogits, rtol: 1e-4, atol: 1e-4), "the delta must change the logits");
        }
    }

    [Fact]
    public void A_feature_steered_at_the_bos_position_is_dropped_as_the_reference_server_does()
    {
        using var tiny = Tiny(TranscoderKind.PerLayer);
        var tokens = tiny.Prompt(7);
        var (layer, index, _, _, _) = SomeActiveFeatureAnywhere(tiny.Replacement, tokens);
        var options = new GenerationOptions { NTokens = 4, TopK = 3 };
        var atBos = Steerer.Steer(tiny.Replacement, tokens, [new FeatureSteer(layer, index, 3, SteerPosition: 0, Delta: 500)], options,
            new SteeringVocabulary(BosId: tokens[0], StopIds: []));
        Assert.Same(atBos.Default, atBos.Steered);

        // The same feature one position later does steer: the drop is the BOS rule, not a weak feature.
        var later = Steerer.Steer(tiny.Replacement, tokens, [new FeatureSteer(layer, index, 3, SteerPosition: 1, Delta: 500)], options,
            new SteeringVocabulary(BosId: tokens[0], StopIds: []));
        Assert.NotEqual(later.Default.Positions[^1].TopNext, later.Steered.Positions[^1].TopNext);
    }

    [Fact]
    public void Token_active_position_zero_reads_a_clean_activation_of_zero_so_the_target_is_the_delta()
    {
        using var tiny = Tiny(TranscoderKind.PerLayer);
        var tokens = tiny.Prompt(7);
        var transcoders = tiny.Replacement.Transcoders;
        using var ids = tensor(tokens.Select(t => (long)t).ToArray()).unsqueeze(0);
        var (clean, cleanLogits) = CleanRecording.Record(tiny.Replacement.Model, transcoders.ReadAt, transcoders.WriteAt, ids);
        int layer = 1;
        int index;
        double bosActivation;
        using (clean)
        using (cleanLogits)
        using (var bos = transcoders.Encode(layer, clean.Reads[layer][0][0].unsqueeze(0))[0])
        {
            index = (int)bos.argmax().item<long>();
            bosActivation = bos[index].to(ScalarType.Float64).item<double>();
        }
        Assert.True(bosActivation > 0, "the BOS must activate some feature for this test to tell the two rules apart");

        const double delta = 2.5;
        var options = new GenerationOptions { NTokens = 3, TopK = 4 };
        var result = Steerer.Steer(tiny.Replacement, tokens, [new FeatureSteer(layer, index, TokenActivePosition: 0, SteerPosition: 3, Delta: delta)], options, NoStops);
        var expected = TextGeneration.Generate(tiny.Replacement.Model, tokens, options,
            () => new InterventionRun(transcoders, [new FeatureSetting(layer, index, delta, 3, int.MaxValue)], null, tokens.Length), []);
        var misread = TextGeneration.Generate(tiny.Replacement.Model, tokens, options,
            () => new InterventionRun(transcoders, [new FeatureSetting(layer, index, bosActivation + delta, 3, int.MaxValue)], null, tokens.Length), []);
        Assert.Equal(expected.Positions.Select(p => p.TopNext), result.Steered.Positions.Select(p => p.TopNext));
        Assert.NotEqual(misread.Positions.Select(p => p.TopNext), result.Steered.Positions.Select(p => p.TopNext));
    }

    public static TheoryData<bool, bool, double> CacheCases => new()
    {
        { false, false, 0.0 },     // plain, greedy
        { true, false, 0.0 },      // steered on generated tokens
        { true, true, 0.0 },       // steered with frozen attention
        { true, false, 0.8 },      // sampled, seeded
    };

    [Theory]
    [MemberData(nameof(CacheCases))]
    public void Kv_cached_generation_equals_recomputing_the_whole_sequence(bool steer, bool freeze, double temperature)
    {
        using var tiny = Tiny(TranscoderKind.PerLayer);
        var tokens = tiny.Prompt(7);
        var (layer, index, _, activation, _) = SomeActiveFeatureAnywhere(tiny.Replacement, tokens);
        FeatureSteer[] features = steer
            ? [new FeatureSteer(layer, index, 3, SteerPosition: 3, Delta: 5), new FeatureSteer(layer, index, 3, SteerGeneratedTokens: true, Delta: 4)]
            : [new FeatureSteer(layer, index, 3, SteerPosition: 3, Ablate: true)];
        var options = new GenerationOptions { NTokens = 6, TopK = 4, Temperature = temperature, Seed = 1234, FreezeAttention = freeze };

        var cached = Steerer.Steer(tiny.Replacement, tokens, features, options, NoStops, useCache: true);
        var recomputed = Steerer.Steer(tiny.Replacement, tokens, features, options, NoStops, useCache: false);
        foreach (var (a, b) in new[] { (cached.Default, recomputed.Default), (cached.Steered, recomputed.Steered) })
        {
            Assert.Equal(b.Tokens, a.Tokens);
            Assert.Equal(tokens.Length + options.NTokens, a.Positions.Count);
            for (int p = 0; p < a.Positions.Count; p++)
            {
                Assert.Equal(b.Positions[p].TopNext.Select(t => t.Token), a.Positions[p].TopNext.Select(t => t.Token));
                foreach (var (x, y) in a.Positions[p].TopNext.Zip(b.Positions[p].TopNext)) Assert.Equal(y.Probability, x.Probability, 5);
            }
        }
        _ = activation;
    }

    private static (int, int, int, double, Tensor) SomeActiveFeatureAnywhere(ReplacementModel replacement, int[] tokens)
    {
        using var prompt = PreparedPrompt.Prepare(replacement, tokens);
        var active = prompt.Active;
        int node = Enumerable.Range(0, active.Count).First(i => active.Positions[i] == 3);
        return ((int)active.Layers[node], (int)active.Indices[node], 3, active.Values[node], zeros(1));
    }

    [Fact]
    public void Steering_generated_tokens_changes_the_continuation_and_prompt_entries_are_empty_before_the_last_token()
    {
        using var tiny = Tiny(TranscoderKind.PerLayer);
        var tokens = tiny.Prompt(7);
        var (layer, index, _, _, _) = SomeActiveFeatureAnywhere(tiny.Replacement, tokens);
        var result = Steerer.Steer(tiny.Replacement, tokens, [new FeatureSteer(layer, index, 3, SteerGeneratedTokens: true, Delta: 200)],
            new GenerationOptions { NTokens = 5, TopK = 3 }, NoStops);
        Assert.All(result.Steered.Positions.Take(tokens.Length - 1), p => Assert.Empty(p.TopNext));
        Assert.All(result.Steered.Positions.Skip(tokens.Length - 1), p => Assert.Equal(3, p.TopNext.Count));
        Assert.Equal(tokens, result.Default.Positions.Take(tokens.Length).Select(p => p.Token));
        Assert.NotEqual(result.Default.Tokens, result.Steered.Tokens);
    }

    [Fact]
    public void Generation_stops_at_an_end_of_sequence_token()
    {
        using var tiny = Tiny(TranscoderKind.PerLayer);
        var tokens = tiny.Prompt(6);
        var free = TextGeneration.Generate(tiny.Replacement.Model, tokens, new GenerationOptions { NTokens = 4 }, () => RunPolicy.Plain, []);
        int firstGenerated = free.Tokens[tokens.Length];
        var stopped = TextGeneration.Generate(tiny.Replacement.Model, tokens, new GenerationOptions { NTokens = 4 }, () => RunPolicy.Plain, [firstGenerated]);
        Assert.Equal(tokens.Length + 1, stopped.Tokens.Count);
        Assert.Equal(firstGenerated, stopped.Positions[^1].Token);
        Assert.Equal(RequestSchema.TopK.DefaultValue, stopped.Positions[^1].TopNext.Count);   // the reference reports the EOS entry's top-k too
    }

    /// <summary>Counts forward passes and cancels the request after a few, as a client that hangs up.</summary>
    private sealed class HangUpAfter(CancellationTokenSource client, int passes) : RunPolicy
    {
        public int Passes { get; private set; }

        public override void OnFinalResidual(Tensor normed)
        {
            if (++Passes == passes) client.Cancel();
        }
    }

    [Fact]
    public void Generation_stops_at_the_next_token_once_its_client_has_gone()
    {
        using var tiny = Tiny(TranscoderKind.PerLayer);
        var tokens = tiny.Prompt(6);
        using var client = new CancellationTokenSource();
        var policy = new HangUpAfter(client, passes: 3);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            TextGeneration.Generate(tiny.Replacement.Model, tokens, new GenerationOptions { NTokens = 200 }, () => policy, [], cancellation: client.Token));
        Assert.Equal(3, policy.Passes);   // not 200: the accelerator is free again
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_seeds_matter()
    {
        using var logits = randn(50, generator: new Generator(3));
        int[] Draw(long seed)
        {
            using var sampler = new Sampler(temperature: 1.0, frequencyPenalty: 0, seed);
            return Enumerable.Range(0, 20).Select(_ => sampler.Next(logits, [])).ToArray();
        }
        Assert.Equal(Draw(7), Draw(7));
        Assert.NotEqual(Draw(7), Draw(8));
    }

    [Fact]
    public void Temperature_zero_is_greedy()
    {
        using var logits = tensor(new float[] { 0.1f, 2.5f, 2.4f, -1f });
        using var sampler = new Sampler(0, frequencyPenalty: 5, seed: 1);
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Equal(1, sampler.Next(logits, [1, 1, 1])));
    }

    [Fact]
    public void Frequency_penalty_subtracts_penalty_times_count_from_the_tempered_logits()
    {
        using var logits = tensor(new float[] { 1f, 2f, 3f });
        using var sampler = new Sampler(temperature: 2, frequencyPenalty: 0.5, seed: 1);
        using var distribution = sampler.Distribution(logits, [2, 2, 0]);
        // (1, 2, 3) / 2 − 0.5 · (1, 0, 2) = (0, 1, 0.5)
        using var expected = tensor(new float[] { 0f, 1f, 0.5f }).softmax(0);
        Assert.True(distribution.allclose(expected, rtol: 1e-6, atol: 1e-7));

        using var withoutPenalty = new Sampler(temperature: 2, frequencyPenalty: 0, seed: 1).Distribution(logits, [2, 2, 0]);
        Assert.True(withoutPenalty[2].item<float>() > distribution[2].item<float>());

        // TransformerLens applies only a positive penalty: a negative one leaves the distribution alone.
        using var negative = new Sampler(temperature: 2, frequencyPenalty: -1.5, seed: 1).Distribution(logits, [2, 2, 0]);
        Assert.True(negative.allclose(withoutPenalty, rtol: 0, atol: 0));
    }

    [Fact]
    public void Extreme_temperatures_and_penalties_still_give_a_distribution()
    {
        using var logits = tensor(new float[] { 1f, 2f, 3f });

        // A temperature of 1e-300 is greedy in effect, not NaN.
        using var cold = new Sampler(temperature: 1e-300, frequencyPenalty: 0, seed: 1).Distribution(logits, []);
        Assert.Equal([0f, 0f, 1f], cold.data<float>().ToArray());

        // A penalty beyond float32 rules out the counted token and leaves the others.
        using var harsh = new Sampler(temperature: 100, frequencyPenalty: 1e308, seed: 1).Distribution(logits, [2]);
        var p = harsh.data<float>().ToArray();
        Assert.All(p, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(0f, p[2]);
        Assert.Equal(1f, p[0] + p[1], 5);

        // When every token is ruled out, the tempered distribution stands.
        using var everything = new Sampler(temperature: 100, frequencyPenalty: 1e308, seed: 1).Distribution(logits, [0, 1, 2]);
        using var tempered = new Sampler(temperature: 100, frequencyPenalty: 0, seed: 1).Distribution(logits, []);
        Assert.True(everything.allclose(tempered));
        Assert.InRange(new Sampler(temperature: 100, frequencyPenalty: 1e308, seed: 1).Next(logits, [0, 1, 2]), 0, 2);
    }
}
