namespace Attribution.Tests.Demo;

using System.Text.Json;
using Attribution.Demo;
using Attribution.Loading;
using Attribution.Pipeline;
using Attribution.Tests.Engine;
using Xunit.Abstractions;
using static TorchSharp.torch;

/// <summary>
/// The shipped demo (docs/demo.md) against the quality bars it is built to: the model answers
/// its task prompts, the transcoders explain its MLPs on sentences they never saw with a small
/// L0, the tour prompts' graphs are mostly explained and show the circuit, and attribution is
/// exact on it. Everything is loaded the way the service loads the bundled default.
/// </summary>
public sealed class DemoModelTests(DemoModelTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<DemoModelTests.Fixture>
{
    public sealed class Fixture : IDisposable
    {
        public LoadedModel PerLayer { get; } = Load(null);

        public LoadedModel CrossLayer { get; } = Load(BundledModel.CrossLayerChoice);

        public LoadedModel Of(bool crossLayer) => crossLayer ? CrossLayer : PerLayer;

        private static LoadedModel Load(string? set) =>
            LoadedModel.LoadAsync(new ModelSettings { ModelId = BundledModel.Id, TranscoderSet = set }, hub: null).GetAwaiter().GetResult();

        public void Dispose()
        {
            PerLayer.Dispose();
            CrossLayer.Dispose();
        }
    }

    /// <summary>The tour's graph prompts: the answer and the input token its circuit starts from.</summary>
    public static TheoryData<string, string, string> TourGraphs => new()
    {
        { "The capital of France is", " Paris", " France" },
        { "La capitale de la France est", " Paris", " France" },
        { "3 + 4 =", " 7", " 4" },
        { "Mary and John went out . John gave it to", " Mary", "Mary" },
    };

    [Fact]
    public void The_model_answers_held_out_task_prompts_and_knows_its_tables()
    {
        var model = fixture.PerLayer;
        var heldOut = DemoModelTrainer.Evaluate(model.Replacement.Model, model.Tokenizer, DemoCorpus.HeldOut());
        var tables = DemoModelTrainer.Evaluate(model.Replacement.Model, model.Tokenizer, DemoCorpus.Training());
        foreach (var a in heldOut.Concat(tables)) output.WriteLine($"{a.Task}: {a.Correct}/{a.Total}");
        Assert.True(heldOut.Sum(a => a.Correct) >= 0.95 * heldOut.Sum(a => a.Total), "held-out accuracy below 95%");
        Assert.All(heldOut.Concat(tables), a => Assert.True(a.Fraction >= 0.95, $"{a.Task}: {a.Correct}/{a.Total}"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_transcoders_explain_every_MLP_on_sentences_they_never_saw(bool crossLayer)
    {
        var model = fixture.Of(crossLayer);
        var transcoders = model.Replacement.Transcoders;
        Assert.Equal(crossLayer, transcoders.IsCrossLayer);
        var (_, heldOut) = DemoBuild.TranscoderSplit(model.Tokenizer, new DemoModelTraining().Seed);
        using var activations = MlpActivations.Record(model.Replacement.Model, heldOut, transcoders.ReadAt, transcoders.WriteAt);
        using var scope = NewDisposeScope();
        var all = Enumerable.Range(0, transcoders.DTranscoder).Select(i => (long)i).ToList();
        var codes = Enumerable.Range(0, transcoders.NLayers).Select(l => transcoders.Encode(l, activations.Reads[l])).ToArray();
        for (int target = 0; target < transcoders.NLayers; target++)
        {
            // ŷ at a layer: its decoder bias plus what every feature writing there adds (a CLT's earlier layers too).
            var reconstruction = transcoders.DecoderBias(target).expand(activations.Count, -1);
            for (int source = crossLayer ? 0 : target; source <= target; source++)
                reconstruction = reconstruction + codes[source].matmul(transcoders.DecoderRows(source, all)[.., target - source]);
            var truth = activations.Writes[target];
            double explained = 1 - (truth - reconstruction).pow(2).sum().item<float>() / (truth - truth.mean([0])).pow(2).sum().item<float>();
            double l0 = (codes[target] != 0).sum(1).to(ScalarType.Float32).mean().item<float>();
            output.WriteLine($"layer {target}: variance explained {explained:0.000}, L0 {l0:0.0}");
            Assert.True(explained >= 0.9, $"layer {target}: variance explained {explained:0.000}");
            Assert.InRange(l0, 8, 64);
        }
    }

    [Theory]
    [MemberData(nameof(TourGraphs))]
    public void A_tour_graph_predicts_the_answer_and_runs_from_the_key_token_through_features(string prompt, string answer, string keyToken)
    {
        foreach (var model in new[] { fixture.PerLayer, fixture.CrossLayer })
        {
            using var json = new MemoryStream();
            GraphPipeline.Generate(model, new GraphRequest { Prompt = prompt, Slug = "tour" }, json);
            using var graph = JsonDocument.Parse(json.ToArray());
            var nodes = graph.RootElement.GetProperty("nodes").EnumerateArray().ToList();
            var target = nodes.Single(n => n.GetProperty("is_target_logit").GetBoolean());
            Assert.Equal($"Output \"{answer}\"", target.GetProperty("clerp").GetString()![..(answer.Length + 9)]);
            double replacement = graph.RootElement.GetProperty("metadata").GetProperty("scores").GetProperty("replacement_score").GetDouble();
            output.WriteLine($"{model.TranscoderSet} \"{prompt}\": replacement {replacement:0.000}");
            Assert.True(replacement >= 0.8, $"{model.TranscoderSet} \"{prompt}\": replacement score {replacement:0.000}");

            var promptTokens = graph.RootElement.GetProperty("metadata").GetProperty("prompt_tokens").EnumerateArray().Select(t => t.GetString()).ToList();
            int keyPosition = promptTokens.IndexOf(keyToken);
            var key = nodes.Single(n => n.GetProperty("feature_type").GetString() == "embedding" && n.GetProperty("ctx_idx").GetInt32() == keyPosition);
            var path = FeaturePath(graph.RootElement, key.GetProperty("node_id").GetString()!, target.GetProperty("node_id").GetString()!);
            Assert.True(path is { Count: > 2 }, $"no path from {keyToken} to {answer} through features in {model.TranscoderSet}'s graph");
            var labels = nodes.ToDictionary(n => n.GetProperty("node_id").GetString()!, n => n.GetProperty("clerp").GetString());
            // The set's labels.json reaches the graph: most feature nodes carry a label.
            var features = nodes.Where(n => n.GetProperty("feature_type").GetString() == "cross layer transcoder").ToList();
            Assert.True(features.Count(n => n.GetProperty("clerp").GetString() is { Length: > 0 }) * 2 > features.Count, "most feature nodes should carry their label as clerp");
            output.WriteLine("  " + string.Join(" → ", path.Select(id => $"{id} {labels[id]}")));
        }
    }

    [Fact]
    public async Task Attribution_on_the_trained_model_equals_interventions()
    {
        using var model = await LoadedModel.LoadAsync(new ModelSettings { ModelId = BundledModel.Id, DType = ScalarType.Float64 }, hub: null);
        InterventionCheckTests.AssertAllColumnsMatch(model.Replacement, model.Tokenize("The capital of France is"), maxFeatureNodes: null, tolerance: 1e-6).Dispose();
    }

    /// <summary>
    /// The strongest path from one node to another whose inner nodes are all features: at each
    /// step (target side first, as edges point upwards) the heaviest positive edge into the path.
    /// Null when no such path exists.
    /// </summary>
    private static List<string>? FeaturePath(JsonElement graph, string from, string to)
    {
        var features = graph.GetProperty("nodes").EnumerateArray()
            .Where(n => n.GetProperty("feature_type").GetString() == "cross layer transcoder").Select(n => n.GetProperty("node_id").GetString()!).ToHashSet();
        var incoming = graph.GetProperty("links").EnumerateArray()
            .Select(l => (Source: l.GetProperty("source").GetString()!, Target: l.GetProperty("target").GetString()!, Weight: l.GetProperty("weight").GetDouble()))
            .Where(l => l.Weight > 0).ToLookup(l => l.Target);
        // Breadth-first from the answer backwards through features, heaviest edges first, until the key token.
        var previous = new Dictionary<string, string> { [to] = to };
        var frontier = new Queue<string>([to]);
        while (frontier.TryDequeue(out var node))
        {
            foreach (var edge in incoming[node].OrderByDescending(e => e.Weight))
            {
                if (edge.Source == from && node != to)
                {
                    var path = new List<string> { from };
                    for (string n = node; n != to; n = previous[n]) path.Add(n);
                    path.Add(to);
                    return path;
                }
                if (features.Contains(edge.Source) && previous.TryAdd(edge.Source, node)) frontier.Enqueue(edge.Source);
            }
        }
        return null;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_shipped_dashboards_show_each_features_top_sentences_as_the_model_computes_them(bool crossLayer)
    {
        var model = fixture.Of(crossLayer);
        var transcoders = model.Replacement.Transcoders;
        Assert.True(model.Dashboards.Available);
        int checkedExamples = 0;
        using var noGrad = no_grad();
        for (int layer = 0; layer < transcoders.NLayers; layer++)
        {
            Assert.Equal(transcoders.DTranscoder, model.Dashboards.FeaturesIn(layer));
            for (int index = layer; index < transcoders.DTranscoder; index += 61)   // a spread sample of every layer
            {
                var feature = model.Dashboards.Read(layer, index)!;
                var examples = feature["examples_quantiles"]![0]!["examples"]!.AsArray();
                // A labelled feature shows the sentences its label was read from.
                if (model.Labels.Of(layer, index).Length > 0) Assert.NotEmpty(examples);
                foreach (var example in examples.Take(2))
                {
                    var tokens = example!["tokens"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
                    var shown = example["tokens_acts_list"]!.AsArray().Select(a => a!.GetValue<double>()).ToArray();
                    var ids = model.Tokenize(string.Concat(tokens.Skip(1)));
                    Assert.Equal(tokens, ids.Select(id => model.Tokenizer.DecodeToken(id)));
                    using var scope = NewDisposeScope();
                    using var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
                    var (recording, logits) = Attribution.Tracing.CleanRecording.Record(model.Replacement.Model, transcoders.ReadAt, transcoders.WriteAt, input);
                    using (recording)
                    using (logits)
                    {
                        var computed = transcoders.Encode(layer, recording.Reads[layer][0]).to(ScalarType.Float64)[.., index].data<double>().ToArray();
                        computed[0] = 0;   // the BOS position is left out, as graphs silence it
                        for (int p = 0; p < ids.Length; p++) Assert.Equal(computed[p], shown[p], 3e-4);
                    }
                    checkedExamples++;
                }
            }
        }
        output.WriteLine($"{(crossLayer ? "cross-layer" : "per-layer")}: {checkedExamples} example sentences recomputed");
        Assert.True(checkedExamples > 10);
    }
}
