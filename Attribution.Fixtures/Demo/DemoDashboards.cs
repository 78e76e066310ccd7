namespace Attribution.Demo;

using System.Text.Json.Nodes;
using Attribution.Loading;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// The demo sets' feature dashboards (<see cref="FeatureDashboards"/>, circuit-tracer's local
/// format), written by train-demo beside each set so the viewer can show what a label was read
/// from: a feature's strongest corpus sentences with its activation at every token, the tokens its
/// decoder raises and lowers most through the unembedding, and how often it fires.
/// </summary>
public static class DemoDashboards
{
    /// <summary>Example sentences per feature (distinct sentences, strongest first).</summary>
    public const int Examples = 12;

    /// <summary>Tokens listed at either end of a feature's logit effects.</summary>
    public const int LogitTokens = 10;

    public static void Write(string transcoderFolder, LoadedModel model, Dictionary<(int Layer, long Index), List<FeatureFiring>> firings)
    {
        var transcoders = model.Replacement.Transcoders;
        int layers = transcoders.NLayers, width = (int)transcoders.DTranscoder;
        // Each feature's example sentences, strongest firing first, each sentence once.
        var chosen = firings.ToDictionary(kv => kv.Key, kv => kv.Value.Select(f => f.Example.Text).Distinct().Take(Examples).ToList());
        var wantedIn = chosen.SelectMany(kv => kv.Value.Select(text => (text, kv.Key))).ToLookup(p => p.text, p => p.Key);
        var (activations, tokens, firedAt, positions) = Scan(model, wantedIn);
        var (raised, lowered) = LogitEffects(model);

        var dashboards = new List<IReadOnlyList<JsonObject>>();
        for (int layer = 0; layer < layers; layer++)
        {
            var features = new List<JsonObject>();
            for (int index = 0; index < width; index++)
            {
                var examples = new JsonArray();
                float most = 0;
                foreach (string text in chosen.GetValueOrDefault((layer, index), []))
                {
                    float[] acts = activations[(text, layer, index)];
                    most = Math.Max(most, acts.Max());
                    examples.Add(new JsonObject
                    {
                        ["tokens"] = new JsonArray([.. tokens[text].Select(t => JsonValue.Create(t))]),
                        ["tokens_acts_list"] = new JsonArray([.. acts.Select(a => JsonValue.Create(MathF.Round(a, 4)))]),
                        ["train_token_ind"] = Array.IndexOf(acts, acts.Max()),
                        ["is_repeated_datapoint"] = false,
                    });
                }
                features.Add(new JsonObject
                {
                    ["transcoder_id"] = $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(transcoderFolder))}/layer_{layer}",
                    ["index"] = index,
                    ["examples_quantiles"] = new JsonArray(new JsonObject { ["quantile_name"] = "Top activations", ["examples"] = examples }),
                    ["top_logits"] = new JsonArray([.. raised[layer][index].Select(t => JsonValue.Create(t))]),
                    ["bottom_logits"] = new JsonArray([.. lowered[layer][index].Select(t => JsonValue.Create(t))]),
                    ["act_min"] = 0,
                    ["act_max"] = MathF.Round(most, 4),
                    ["activation_frequency"] = Math.Round((double)firedAt[layer, index] / positions, 6),
                });
            }
            dashboards.Add(features);
        }
        FeatureDashboards.Write(Path.Combine(transcoderFolder, FeatureDashboards.FolderName), dashboards);
    }

    /// <summary>
    /// One pass over the corpus sentences: each wanted (sentence, feature)'s activation at every
    /// token, every sentence's tokens, and at how many positions (BOS excluded) each feature fires.
    /// </summary>
    private static (Dictionary<(string, int, long), float[]> Activations, Dictionary<string, string[]> Tokens, long[,] FiredAt, long Positions)
        Scan(LoadedModel model, ILookup<string, (int Layer, long Index)> wantedIn)
    {
        var replacement = model.Replacement;
        var transcoders = replacement.Transcoders;
        int width = (int)transcoders.DTranscoder;
        var activations = new Dictionary<(string, int, long), float[]>();
        var tokens = new Dictionary<string, string[]>();
        var firedAt = new long[transcoders.NLayers, width];
        long positions = 0;
        using var noGrad = no_grad();
        foreach (var text in DemoCorpus.All().Select(e => e.Example.Text).Distinct())
        {
            using var scope = NewDisposeScope();
            var ids = model.Tokenize(text);
            tokens[text] = [.. ids.Select(id => model.Tokenizer.DecodeToken(id))];
            positions += ids.Length - 1;
            using var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
            var (recording, logits) = CleanRecording.Record(replacement.Model, transcoders.ReadAt, transcoders.WriteAt, input);
            using (recording)
            using (logits)
            {
                for (int l = 0; l < transcoders.NLayers; l++)
                {
                    var codes = transcoders.Encode(l, recording.Reads[l][0]).to(ScalarType.Float32).data<float>().ToArray();
                    for (int p = 1; p < ids.Length; p++)
                        for (int f = 0; f < width; f++)
                            if (codes[p * width + f] != 0) firedAt[l, f]++;
                    foreach (var (layer, index) in wantedIn[text].Where(k => k.Layer == l))
                        activations[(text, layer, index)] = [.. Enumerable.Range(0, ids.Length).Select(p => p == 0 ? 0f : codes[p * width + (int)index])];
                }
            }
        }
        return (activations, tokens, firedAt, positions);
    }

    /// <summary>
    /// Per feature, the tokens whose logits its decoder raises and lowers most: the sum of its decoder
    /// vectors over the layers it writes, times the unembedding (norms left out, as Neuronpedia's logit lists).
    /// </summary>
    private static (string[][][] Raised, string[][][] Lowered) LogitEffects(LoadedModel model)
    {
        var transcoders = model.Replacement.Transcoders;
        var raised = new string[transcoders.NLayers][][];
        var lowered = new string[transcoders.NLayers][][];
        using var noGrad = no_grad();
        for (int layer = 0; layer < transcoders.NLayers; layer++)
        {
            using var scope = NewDisposeScope();
            var all = Enumerable.Range(0, (int)transcoders.DTranscoder).Select(i => (long)i).ToList();
            var direction = transcoders.DecoderRows(layer, all).sum(1).to(ScalarType.Float32);
            var effects = direction.matmul(model.Replacement.Model.Unembedding.to(ScalarType.Float32).t());
            string[][] Tokens(Tensor ids) => [.. Enumerable.Range(0, all.Count).Select(f =>
                ids[f].data<long>().ToArray().Select(id => model.Tokenizer.DecodeToken((int)id)).ToArray())];
            raised[layer] = Tokens(effects.topk(LogitTokens, dim: 1).indexes);
            lowered[layer] = Tokens(effects.topk(LogitTokens, dim: 1, largest: false).indexes);
        }
        return (raised, lowered);
    }
}
