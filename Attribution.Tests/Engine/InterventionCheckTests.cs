namespace Attribution.Tests.Engine;

using Attribution.Graphs;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// The core proof of correctness (docs/algorithm.md §4): on seeded random tiny models of every supported
/// architecture, every error column, every token column and a sample of feature columns of the
/// adjacency matrix reproduce the effect of the matching intervention in the frozen model.
/// </summary>
public class InterventionCheckTests
{
    // In float64 the check is limited by rows stored as float32 (~5e-8 seen); float32 models reach ~1e-5.
    private const double Float64Tolerance = 1e-6;
    private const double Float32Tolerance = 5e-4;

    public static TheoryData<ModelArchitecture, bool, string> PerLayerCases => new()
    {
        { ModelArchitecture.Gemma2, false, "jump_relu" },
        { ModelArchitecture.Llama, false, "jump_relu" },
        { ModelArchitecture.Qwen3, false, "jump_relu" },
        { ModelArchitecture.Gemma2, true, "jump_relu" },
        { ModelArchitecture.Llama, true, "relu" },
        { ModelArchitecture.Qwen3, true, "topk" },
    };

    [Theory]
    [MemberData(nameof(PerLayerCases))]
    public void Per_layer_transcoder_columns_equal_interventions(ModelArchitecture architecture, bool skip, string activation)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, Seed = 11 },
            new TinyTranscoderSpec { Skip = skip, Activation = activation, Seed = 5 },
            ScalarType.Float64);
        AssertAllColumnsMatch(tiny, maxFeatureNodes: null, Float64Tolerance);
    }

    [Theory]
    [InlineData(ModelArchitecture.Gemma2, false)]
    [InlineData(ModelArchitecture.Gemma2, true)]
    [InlineData(ModelArchitecture.Llama, false)]
    [InlineData(ModelArchitecture.Llama, true)]
    public void Cross_layer_transcoder_columns_equal_interventions(ModelArchitecture architecture, bool skip)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, Seed = 31 },
            new TinyTranscoderSpec { Kind = TranscoderKind.CrossLayer, Skip = skip, Seed = 4 },
            ScalarType.Float64);
        Assert.True(tiny.Replacement.Transcoders.IsCrossLayer);
        AssertAllColumnsMatch(tiny, maxFeatureNodes: null, Float64Tolerance);
    }

    /// <summary>Gemma-3 with circuit-tracer's own layouts and GemmaScope-2's (whose affine skip a CLT applies too).</summary>
    [Theory]
    [InlineData(TranscoderKind.PerLayer, TinyTranscoderFormat.Safetensors, false)]
    [InlineData(TranscoderKind.PerLayer, TinyTranscoderFormat.GemmaScope2, true)]
    [InlineData(TranscoderKind.CrossLayer, TinyTranscoderFormat.Safetensors, false)]
    [InlineData(TranscoderKind.CrossLayer, TinyTranscoderFormat.GemmaScope2, true)]
    public void Gemma3_columns_equal_interventions(TranscoderKind kind, TinyTranscoderFormat format, bool skip)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = ModelArchitecture.Gemma3, NLayers = 4, Seed = 37 },
            new TinyTranscoderSpec { Kind = kind, Format = format, Skip = skip, Seed = 6 },
            ScalarType.Float64);
        Assert.Equal(skip, tiny.Replacement.Transcoders.HasSkip);
        Assert.Equal([4, null, 4, null], Enumerable.Range(0, 4).Select(tiny.Replacement.Model.Config.WindowOfLayer));
        AssertAllColumnsMatch(tiny, maxFeatureNodes: null, Float64Tolerance);
    }

    [Fact]
    public void A_Gemma3_it_model_silences_its_chat_header_as_circuit_tracer_does()
    {
        Assert.Equal(4, ReplacementModel.SilencedPositionsFor("google/gemma-3-4b-it"));
        Assert.Equal(1, ReplacementModel.SilencedPositionsFor("google/gemma-3-4b"));
        Assert.Equal(1, ReplacementModel.SilencedPositionsFor("google/gemma-2-2b"));

        using var tiny = new TinyReplacement(new TinyModelSpec { Architecture = ModelArchitecture.Gemma3, Seed = 5 }, new TinyTranscoderSpec { Seed = 2 });
        var headerSilenced = new ReplacementModel(tiny.Replacement.Model, tiny.Replacement.Transcoders) { SilencedPositions = 4 };   // shares tiny's weights
        using var prompt = PreparedPrompt.Prepare(headerSilenced, tiny.Prompt(8));
        Assert.All(prompt.Active.Positions, p => Assert.True(p >= 4, $"a feature at silenced position {p}"));
        Assert.Contains(prompt.Active.Positions, p => p == 4);
        Assert.Equal(0.0, prompt.Errors.narrow(1, 0, 4).abs().max().item<float>());
    }

    [Fact]
    public void Columns_equal_interventions_in_float32_the_production_dtype()
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = ModelArchitecture.Gemma2, Seed = 23 },
            new TinyTranscoderSpec { Skip = true, Seed = 2 });
        AssertAllColumnsMatch(tiny, maxFeatureNodes: null, Float32Tolerance);
    }

    [Theory]
    [InlineData(ModelArchitecture.Gemma2, 2)]      // ranked rounds: whole rows
    [InlineData(ModelArchitecture.Llama, 2)]
    [InlineData(ModelArchitecture.Gemma2, 1000)]   // one round selects all: compact rows
    public void Selected_rows_stay_exact_when_max_feature_nodes_is_below_the_active_count(ModelArchitecture architecture, int updateInterval)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, Seed = 17 },
            new TinyTranscoderSpec { Skip = true, Seed = 9 },
            ScalarType.Float64);
        AssertAllColumnsMatch(tiny, maxFeatureNodes: 40, Float64Tolerance, updateInterval);
    }

    /// <summary>
    /// A logit-difference target (and a token target beside it): the difference's row is the gradient
    /// of logit(a) − logit(b), checked against interventions with the directions computed here from
    /// the unembedding, on every architecture, per-layer and cross-layer, in float64.
    /// </summary>
    [Theory]
    [InlineData(ModelArchitecture.Gemma2, TranscoderKind.PerLayer)]
    [InlineData(ModelArchitecture.Llama, TranscoderKind.PerLayer)]
    [InlineData(ModelArchitecture.Qwen3, TranscoderKind.PerLayer)]
    [InlineData(ModelArchitecture.Gemma3, TranscoderKind.PerLayer)]
    [InlineData(ModelArchitecture.Llama, TranscoderKind.CrossLayer)]
    public void A_logit_difference_target_row_is_the_gradient_of_that_difference(ModelArchitecture architecture, TranscoderKind kind)
    {
        using var tiny = new TinyReplacement(
            new TinyModelSpec { Architecture = architecture, NLayers = 4, Seed = 43 },
            new TinyTranscoderSpec { Kind = kind, Skip = true, Seed = 7 },
            ScalarType.Float64);
        var tokens = tiny.Prompt(8);
        using var prompt = PreparedPrompt.Prepare(tiny.Replacement, tokens);
        var probabilities = prompt.LastLogits.softmax(-1);
        var (topProbabilities, ids) = probabilities.topk(2);
        var top = topProbabilities.to(ScalarType.Float64);
        long a = ids[0].item<long>(), b = ids[1].item<long>();
        var unembedding = tiny.Replacement.Model.Unembedding;
        long vocabulary = unembedding.shape[0];

        TargetRequest[] targets = [new(a, Minus: b), new(b)];
        using var directions = stack([unembedding[a] - unembedding[b], unembedding[b] - unembedding.mean([0])]);
        using var graph = AssertAllColumnsMatch(tiny.Replacement, tokens, maxFeatureNodes: null, Float64Tolerance, targets: targets, directions: directions);
        Assert.Equal([vocabulary, b], graph.LogitTokens);
        Assert.Equal(Math.Abs(top[0].item<double>() - top[1].item<double>()), graph.LogitProbabilities[0], 1e-6);
        Assert.Equal(top[1].item<double>(), graph.LogitProbabilities[1], 1e-6);
    }

    /// <summary>
    /// A prompt longer than the backward batch allows (200 positions at batch 48: 15 rows per pass)
    /// still gives exact columns: the cap changes how many targets share a pass, not what a row is.
    /// </summary>
    [Fact]
    public void A_long_prompt_runs_fewer_rows_per_backward_pass_and_stays_exact()
    {
        Assert.Equal(48, AttributionContext.BackwardBatch(48, 65));   // Neuronpedia's limit: unchanged
        Assert.Equal(15, AttributionContext.BackwardBatch(48, 200));
        Assert.Equal(1, AttributionContext.BackwardBatch(48, 100_000));
        Assert.Equal(8, AttributionContext.BackwardBatch(8, 200));
        using var tiny = new TinyReplacement(new TinyModelSpec { Architecture = ModelArchitecture.Llama, Seed = 19 }, new TinyTranscoderSpec { Skip = true, Seed = 8 }, ScalarType.Float64);
        AssertAllColumnsMatch(tiny.Replacement, tiny.Prompt(200), maxFeatureNodes: 60, Float64Tolerance, batchSize: 48).Dispose();
    }

    /// <summary>Naming as targets the tokens the salient rule picks gives the same graph, exactly.</summary>
    [Fact]
    public void Token_targets_chosen_as_the_salient_rule_chooses_give_the_same_graph()
    {
        using var tiny = new TinyReplacement(new TinyModelSpec { Architecture = ModelArchitecture.Gemma2, Seed = 29 }, new TinyTranscoderSpec { Skip = true, Seed = 3 });
        var tokens = tiny.Prompt(8);
        var settings = new AttributionSettings { BatchSize = 16, MaxFeatureNodes = 40, MaxNLogits = 5, DesiredLogitProb = 0.99, UpdateInterval = 2 };
        using var salient = Attributor.Attribute(tiny.Replacement, tokens, settings);
        Assert.True(salient.Graph.LogitTokens.Length > 1, "the check needs more than one logit");
        using var named = Attributor.Attribute(tiny.Replacement, tokens, settings with
        {
            Targets = [.. salient.Graph.LogitTokens.Select(t => new TargetRequest(t))],
            MaxNLogits = 1, DesiredLogitProb = 0,   // ignored with targets
        });
        Assert.Equal(salient.Graph.LogitTokens, named.Graph.LogitTokens);
        Assert.Equal(salient.Graph.LogitProbabilities, named.Graph.LogitProbabilities);
        Assert.Equal(salient.Graph.SelectedFeatures, named.Graph.SelectedFeatures);
        Assert.Equal(salient.Graph.Rows.shape, named.Graph.Rows.shape);
        Assert.True(salient.Graph.Rows.eq(named.Graph.Rows).all().item<bool>(), "the adjacency matrices differ");
    }

    private static void AssertAllColumnsMatch(TinyReplacement tiny, int? maxFeatureNodes, double tolerance, int updateInterval = 2) =>
        AssertAllColumnsMatch(tiny.Replacement, tiny.Prompt(8), maxFeatureNodes, tolerance, updateInterval).Dispose();

    /// <summary>
    /// Every error and token column and 50 feature columns of the prompt's graph against their
    /// interventions; the graph is returned (the caller disposes it).
    /// </summary>
    internal static AttributionGraph AssertAllColumnsMatch(ReplacementModel replacement, int[] tokens, int? maxFeatureNodes, double tolerance, int updateInterval = 2,
        IReadOnlyList<TargetRequest>? targets = null, Tensor? directions = null, int batchSize = 16)
    {
        var settings = new AttributionSettings { BatchSize = batchSize, MaxFeatureNodes = maxFeatureNodes, MaxNLogits = 5, DesiredLogitProb = 0.99, UpdateInterval = updateInterval, Targets = targets };
        var result = Attributor.Attribute(replacement, tokens, settings);
        var graph = result.Graph;
        int activeCount = graph.Active.Count;
        Assert.True(activeCount > 60, $"the transcoders should fire on many features, got {activeCount}");
        if (maxFeatureNodes is int max) Assert.Equal(max, graph.FeatureCount);
        else Assert.Equal(activeCount, graph.FeatureCount);

        using var check = new InterventionCheck(replacement, graph, directions);
        for (int layer = 0; layer < graph.NLayers; layer++)
            for (int position = 1; position < graph.NPos; position++)
                check.CheckErrorColumn(layer, position);
        for (int position = 1; position < graph.NPos; position++) check.CheckTokenColumn(position);
        var random = new Random(1);
        var columns = Enumerable.Range(0, graph.FeatureCount).OrderBy(_ => random.Next()).Take(Math.Min(50, graph.FeatureCount));
        foreach (int column in columns) check.CheckFeatureColumn(column);

        Assert.True(check.ColumnsChecked >= Math.Min(50, graph.FeatureCount) + graph.NLayers * (graph.NPos - 1));
        Console.WriteLine($"intervention check: worst relative error {check.WorstRelativeError:E2} over {check.ColumnsChecked} columns, {activeCount} active features");
        Assert.True(check.WorstRelativeError < tolerance, $"worst relative error {check.WorstRelativeError:E2} over {check.ColumnsChecked} columns");
        return result.Graph;
    }
}

public class GradientModeTests
{
    [Fact]
    public void Attribution_works_when_the_calling_thread_has_gradients_disabled()
    {
        using var tiny = new TinyReplacement(new TinyModelSpec { Seed = 2 }, new TinyTranscoderSpec { Seed = 2 });
        using var noGrad = no_grad();
        using var result = Attributor.Attribute(tiny.Replacement, tiny.Prompt(6), new AttributionSettings { BatchSize = 8, MaxFeatureNodes = 10 });
        Assert.Equal(10, result.Graph.FeatureCount);
        Assert.True(result.Graph.Rows.abs().sum().item<float>() > 0, "rows must hold direct effects, not zeros");
    }
}
