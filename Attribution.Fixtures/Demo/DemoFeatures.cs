namespace Attribution.Demo;

using System.Globalization;
using Attribution.Loading;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>Where one feature fired in the corpus: the sentence, the position, the activation.</summary>
public sealed record FeatureFiring(DemoExample Example, int Position, string Piece, string Next, bool LastPromptPosition, float Activation);

/// <summary>
/// The demo features read from their top activations over the corpus sentences, as a person
/// labels features on Neuronpedia: the token they fire on, the task, and the token they precede
/// (shared by most firings, or by the two strongest at the end of a prompt). E.g. <c>" France" · capital</c>, <c>" est" · French</c>,
/// <c>" is" · capital → Paris</c>.
/// </summary>
public static class DemoFeatures
{
    private const int Top = 20;
    private const double Dominant = 0.6;

    /// <summary>Every feature's strongest firings over the corpus (sentences with their answers), BOS excluded.</summary>
    public static Dictionary<(int Layer, long Index), List<FeatureFiring>> TopFirings(LoadedModel model)
    {
        var replacement = model.Replacement;
        var transcoders = replacement.Transcoders;
        var firings = new Dictionary<(int, long), List<FeatureFiring>>();
        using var noGrad = no_grad();
        foreach (var example in DemoCorpus.All().Select(e => e.Example))
        {
            using var scope = NewDisposeScope();
            var ids = model.Tokenize(example.Text);
            int promptLength = model.Tokenize(example.Prompt).Length;
            using var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Length]);
            var (recording, logits) = CleanRecording.Record(replacement.Model, transcoders.ReadAt, transcoders.WriteAt, input);
            using (recording)
            using (logits)
            {
                for (int l = 0; l < transcoders.NLayers; l++)
                {
                    var codes = transcoders.Encode(l, recording.Reads[l][0]).to(ScalarType.Float32);
                    var nonzero = codes.nonzero();
                    var rows = nonzero.data<long>().ToArray();
                    var values = codes.data<float>().ToArray();
                    for (int r = 0; r < rows.Length; r += 2)
                    {
                        int position = (int)rows[r];
                        long feature = rows[r + 1];
                        if (position == 0) continue;
                        if (!firings.TryGetValue((l, feature), out var list)) firings[(l, feature)] = list = [];
                        string next = position + 1 < ids.Length ? model.Tokenizer.DecodeToken(ids[position + 1]).Trim() : "";
                        list.Add(new FeatureFiring(example, position, model.Tokenizer.DecodeToken(ids[position]), next, position == promptLength - 1, values[position * transcoders.DTranscoder + feature]));
                    }
                }
            }
        }
        foreach (var key in firings.Keys.ToList())
            firings[key] = [.. firings[key].OrderByDescending(f => f.Activation).Take(Top)];
        return firings;
    }

    /// <summary>A short label from a feature's top firings; empty when nothing about them dominates.</summary>
    public static string Label(IReadOnlyList<FeatureFiring> top)
    {
        if (top.Count == 0) return "";
        var parts = new List<string>();
        if (Share(top, f => f.Piece) is { } piece) parts.Add($"\"{piece}\"");
        string? topic = Share(top, f => Topic(f.Example.Task));
        string? language = Share(top, f => Language(f.Example.Task));
        if (topic is not null || language is not null) parts.Add(string.Join(' ', new[] { topic, language }.Where(p => p is { Length: > 0 })));
        // What comes next: shared by most firings (" 6" in counting and "=" in "3 + 4 =" both before 7),
        // or, as an answer is specific to one or two sentences, by the two strongest firings at a prompt's end.
        if (Share(top, f => f.Next) is { Length: > 0 } next) parts.Add("→ " + next);
        else if (top.Count >= 2 && top[0].LastPromptPosition && top[1].LastPromptPosition && top[0].Example.Answer == top[1].Example.Answer) parts.Add("→ " + top[0].Example.Answer);
        return string.Join(" · ", parts.Where(p => p.Length > 0)).Replace(" · →", " →", StringComparison.Ordinal);
    }

    /// <summary>The value most of the firings share, or null.</summary>
    private static string? Share(IReadOnlyList<FeatureFiring> top, Func<FeatureFiring, string> value)
    {
        var best = top.GroupBy(value).MaxBy(g => g.Count())!;
        return best.Count() >= Dominant * top.Count ? best.Key : null;
    }

    private static string Topic(DemoTask task) => task switch
    {
        DemoTask.CapitalEnglish or DemoTask.CapitalFrench => "capital",
        DemoTask.OppositeEnglish or DemoTask.OppositeFrench => "opposite",
        DemoTask.Counting => "counting",
        DemoTask.Addition => "sum",
        _ => "names",
    };

    private static string Language(DemoTask task) => task switch
    {
        DemoTask.CapitalFrench or DemoTask.OppositeFrench => "French",
        DemoTask.CapitalEnglish or DemoTask.OppositeEnglish => "English",
        _ => "",
    };

    /// <summary>Labels every feature that fired and writes them beside the set's config.yaml.</summary>
    public static int WriteLabels(string transcoderFolder, Dictionary<(int Layer, long Index), List<FeatureFiring>> firings)
    {
        var labels = firings.Select(kv => (kv.Key.Layer, kv.Key.Index, Label: Label(kv.Value))).OrderBy(l => l.Layer).ThenBy(l => l.Index).ToList();
        FeatureLabels.Write(transcoderFolder, labels);
        return labels.Count(l => l.Label.Length > 0);
    }

    /// <summary>How strongly a feature is specific to French sentences: its mean activation on them minus on English ones.</summary>
    public static double Frenchness(IReadOnlyList<FeatureFiring> top) =>
        top.Where(f => Language(f.Example.Task) == "French").Sum(f => (double)f.Activation) / Top
        - top.Where(f => Language(f.Example.Task) == "English").Sum(f => (double)f.Activation) / Top;

    public static string Describe(int layer, long index, string label) =>
        string.Create(CultureInfo.InvariantCulture, $"L{layer} #{index} {label}");
}
