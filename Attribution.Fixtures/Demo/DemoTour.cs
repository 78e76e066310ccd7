namespace Attribution.Demo;

using System.Text.Json;
using Attribution.Loading;
using Attribution.Steering;

/// <summary>One steering example of the tour: the prompt, the features, and the first token before and after.</summary>
public sealed record TourSteer(string What, string Prompt, IReadOnlyList<FeatureSteer> Features, IReadOnlyList<string> Labels, string DefaultToken, string SteeredToken);

/// <summary>
/// Finds the tour's steering examples in a trained demo (docs/demo.md): a single feature whose
/// ablation changes a capital, and a French-language feature whose boost makes an English prompt
/// answer in French. The search is written down so that a retrained demo finds its own.
/// </summary>
public static class DemoTour
{
    public const string FileName = "tour.json";

    /// <summary>The most features one tour example may steer (a README command stays readable).</summary>
    public const int MaxTourFeatures = 16;

    /// <summary>Where an ablation is looked for, in order: the copied name, the sum, the capital (facts have the widest margins).</summary>
    public static readonly string[] AblationPrompts = ["Mary and John went out . John gave it to", "3 + 4 =", "The capital of France is"];
    public const string LanguagePrompt = "The capital of England is";
    public const string SwapPrompt = "The capital of France is";

    private static readonly JsonSerializerOptions Readable = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly GenerationOptions FirstToken = new() { NTokens = 1, TopK = 5, Temperature = 0 };

    public static IReadOnlyList<TourSteer> Find(LoadedModel model, Dictionary<(int Layer, long Index), List<FeatureFiring>> firings, Action<string> log)
    {
        var tour = new List<TourSteer>();
        if (FindAblation(model, firings) is { } ablation) tour.Add(ablation);
        else log($"tour: no ablation of up to {MaxTourFeatures} features changes an answer");
        if (FindCapitalSwap(model, firings) is { } swap) tour.Add(swap);
        else log($"tour: no other capital's feature, boosted, changes the answer to \"{SwapPrompt}\"");
        if (FindLanguageSwitch(model, firings) is { } language) tour.Add(language);
        else log("tour: no French feature's boost switches an English capital question to French");
        foreach (var t in tour) log($"tour: {t.What}: {string.Join(", ", t.Labels)}: \"{t.DefaultToken}\" → \"{t.SteeredToken}\"");
        return tour;
    }

    public static void Write(string folder, IReadOnlyList<TourSteer> tour) =>
        File.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(tour, Readable));

    /// <summary>The first token generated with and without the features steered.</summary>
    public static (string Default, string Steered) Run(LoadedModel model, string prompt, IReadOnlyList<FeatureSteer> features)
    {
        var result = Steerer.Steer(model.Replacement, model.Tokenize(prompt), features, FirstToken, new SteeringVocabulary(model.Tokenizer.BosId, model.Tokenizer.EosIds));
        return (model.Tokenizer.DecodeToken(result.Default.Tokens[result.Default.PromptLength]), model.Tokenizer.DecodeToken(result.Steered.Tokens[result.Steered.PromptLength]));
    }

    /// <summary>
    /// The fewest features whose ablation changes an answer: on <see cref="AblationPrompts"/>, the
    /// features ranked by how much they make the answer beat the runner-up, one alone, then the top
    /// n together, then whole layers at one position; then on every corpus prompt, one feature alone.
    /// </summary>
    private static TourSteer? FindAblation(LoadedModel model, Dictionary<(int Layer, long Index), List<FeatureFiring>> firings)
    {
        // The tour's prompts first, with sets of features; then every corpus prompt, one feature at a time.
        var singles = DemoCorpus.Training().OrderBy(e => e.Task == DemoTask.Addition ? 0 : e.Task == DemoTask.Counting ? 1 : 2).Select(e => (e.Prompt, Sets: false));
        foreach (var (prompt, withSets) in AblationPrompts.Select(p => (p, true)).Concat(singles))
        {
            var active = ActiveFeatures(model, prompt);
            int last = active.Max(a => a.Position);
            var direct = StrongestInputs(model, prompt, active);
            // Then every feature of one layer at one earlier position, strongest activation first: what a position tells the last one.
            var byPosition = active.Where(a => a.Position < last).GroupBy(a => (a.Position, a.Layer)).OrderByDescending(g => g.Sum(a => a.Activation)).Select(g => g.ToArray());
            int layers = model.Replacement.Transcoders.NLayers;
            var lastLayers = Enumerable.Range(1, layers).Select(n => active.Where(a => a.Position == last && a.Layer >= layers - n).ToArray());
            var sets = direct.Take(8).Select(a => new[] { a }).Concat(Enumerable.Range(2, Math.Min(7, direct.Count - 1)).Select(n => direct.Take(n).ToArray())).Concat(byPosition).Concat(lastLayers);
            foreach (var set in withSets ? sets.Where(s => s.Length <= MaxTourFeatures) : direct.Take(4).Select(a => new[] { a }))
            {
                var features = set.Select(a => new FeatureSteer(a.Layer, (int)a.Index, a.Position, SteerPosition: a.Position, Ablate: true)).ToList();
                var (before, after) = Run(model, prompt, features);
                if (before != after)
                    return new TourSteer("ablate", prompt, features, [.. set.Select(a => LabelOf(firings, a.Layer, a.Index))], before, after);
            }
        }
        return null;
    }

    /// <summary>
    /// A feature that carries another capital (its two strongest firings are at the end of English
    /// prompts with that answer, so its label reads "→ Rome"), boosted at the last position of
    /// <see cref="SwapPrompt"/> by a multiple of its top activation until that capital is the answer.
    /// </summary>
    private static TourSteer? FindCapitalSwap(LoadedModel model, Dictionary<(int Layer, long Index), List<FeatureFiring>> firings)
    {
        int last = model.Tokenize(SwapPrompt).Length - 1;
        var (answer, _) = Run(model, SwapPrompt, []);
        var carriers = firings.Where(kv => kv.Value.Count >= 2 && kv.Value[0].LastPromptPosition && kv.Value[0].Example.Task == DemoTask.CapitalEnglish
                && kv.Value[1].Example.Answer == kv.Value[0].Example.Answer && " " + kv.Value[0].Example.Answer != answer)
            .OrderByDescending(kv => kv.Key.Layer).ThenByDescending(kv => kv.Value[0].Activation).Take(24);
        foreach (double scale in new[] { 1.0, 2.0, 4.0 })
            foreach (var ((layer, index), top) in carriers)
            {
                var features = new[] { new FeatureSteer(layer, (int)index, last, SteerPosition: last, Delta: Math.Round(scale * top[0].Activation, 1)) };
                var (before, after) = Run(model, SwapPrompt, features);
                if (after == " " + top[0].Example.Answer)
                    return new TourSteer("boost another capital", SwapPrompt, features, [LabelOf(firings, layer, index)], before, after);
            }
        return null;
    }

    /// <summary>
    /// The French features that switch the English prompt's answer to the capital's French name:
    /// at the last position, the n most French-specific features active on the French sentence
    /// are set to their French activations and the n most English-specific ones of the English
    /// prompt are ablated, in the first layers only, so that the later layers still recall the
    /// capital; the smallest n and layer range that work. <see cref="LanguagePrompt"/>'s country first,
    /// then every other country whose capital has a French name of its own.
    /// </summary>
    private static TourSteer? FindLanguageSwitch(LoadedModel model, Dictionary<(int Layer, long Index), List<FeatureFiring>> firings) =>
        DemoCorpus.Countries.Where(c => c.Capital != c.Capitale)
            .OrderBy(c => LanguagePrompt.Contains(c.English, StringComparison.Ordinal) ? 0 : 1)
            .Select(c => SwitchLanguage(model, firings, c)).FirstOrDefault(found => found is not null);

    private static TourSteer? SwitchLanguage(LoadedModel model, Dictionary<(int Layer, long Index), List<FeatureFiring>> firings, (string English, string French, string Capital, string Capitale) country)
    {
        string englishPrompt = $"The capital of {country.English} is";
        string frenchPrompt = $"La capitale {DemoCorpus.FrenchOf(country.French)} est", frenchAnswer = " " + country.Capitale;
        var english = ActiveFeatures(model, englishPrompt);
        int last = english.Max(a => a.Position);
        var french = ActiveFeatures(model, frenchPrompt).Where(a => a.Position == model.Tokenize(frenchPrompt).Length - 1).ToList();
        double Frenchness(int layer, long index) => firings.TryGetValue((layer, index), out var top) ? DemoFeatures.Frenchness(top) : 0;
        foreach (int n in new[] { 1, 2, 4, 8 })
        for (int layers = 1; layers <= model.Replacement.Transcoders.NLayers; layers++)
            foreach (double scale in new[] { 1.0, 2.0, 4.0 })
            {
                var boost = french.Where(a => a.Layer < layers).OrderByDescending(a => Frenchness(a.Layer, a.Index)).Take(n).ToList();
                var ablate = english.Where(a => a.Position == last && a.Layer < layers).OrderBy(a => Frenchness(a.Layer, a.Index)).Take(n)
                    .Where(a => !boost.Any(b => b.Layer == a.Layer && b.Index == a.Index)).ToList();
                float Clean(int layer, long index) => english.FirstOrDefault(a => a.Position == last && a.Layer == layer && a.Index == index).Activation;
                var features = boost.Select(b => new FeatureSteer(b.Layer, (int)b.Index, last, SteerPosition: last, Delta: Math.Round(scale * b.Activation - Clean(b.Layer, b.Index), 2)))
                    .Concat(ablate.Select(a => new FeatureSteer(a.Layer, (int)a.Index, last, SteerPosition: last, Ablate: true))).ToList();
                var (before, after) = Run(model, englishPrompt, features);
                if (after == frenchAnswer)
                    return new TourSteer("switch to French", englishPrompt, features,
                        [.. boost.Concat(ablate).Select(a => LabelOf(firings, a.Layer, a.Index))], before, after);
            }
        return null;
    }

    /// <summary>
    /// The features that most make the answer beat the runner-up: in the prompt's graph with both
    /// logit nodes, the edge into the answer's minus the edge into the runner-up's, largest first.
    /// (Edges into one logit alone rank features that raise every capital at once.)
    /// </summary>
    private static List<(int Layer, long Index, int Position, float Activation)> StrongestInputs(LoadedModel model, string prompt, List<(int Layer, long Index, int Position, float Activation)> active)
    {
        using var json = new MemoryStream();
        Pipeline.GraphPipeline.Generate(model, new Pipeline.GraphRequest { Prompt = prompt, Slug = "tour-search", MaxNLogits = 2, DesiredLogitProb = 0.999999, NodeThreshold = 1, EdgeThreshold = 1 }, json);
        using var graph = JsonDocument.Parse(json.ToArray());
        var logits = graph.RootElement.GetProperty("nodes").EnumerateArray().Where(n => n.GetProperty("feature_type").GetString() == "logit")
            .OrderByDescending(n => n.GetProperty("token_prob").GetDouble()).Select(n => n.GetProperty("node_id").GetString()!).ToList();
        var byId = active.ToDictionary(a => $"{a.Layer}_{a.Index}_{a.Position}");
        var margin = new Dictionary<string, double>();
        foreach (var link in graph.RootElement.GetProperty("links").EnumerateArray())
        {
            string source = link.GetProperty("source").GetString()!, target = link.GetProperty("target").GetString()!;
            int sign = target == logits[0] ? 1 : logits.Count > 1 && target == logits[1] ? -1 : 0;
            if (sign != 0 && byId.ContainsKey(source)) margin[source] = margin.GetValueOrDefault(source) + sign * link.GetProperty("weight").GetDouble();
        }
        return [.. margin.OrderByDescending(m => m.Value).Select(m => byId[m.Key])];
    }

    /// <summary>(layer, feature, position, activation) of every feature active on the prompt, BOS excluded.</summary>
    public static List<(int Layer, long Index, int Position, float Activation)> ActiveFeatures(LoadedModel model, string prompt)
    {
        var ids = model.Tokenize(prompt);
        using var prepared = Tracing.PreparedPrompt.Prepare(model.Replacement, ids, silence: true);
        var a = prepared.Active;
        return [.. Enumerable.Range(0, a.Count).Select(i => ((int)a.Layers[i], a.Indices[i], (int)a.Positions[i], a.Values[i]))];
    }

    private static string LabelOf(Dictionary<(int Layer, long Index), List<FeatureFiring>> firings, int layer, long index) =>
        DemoFeatures.Describe(layer, index, firings.TryGetValue((layer, index), out var top) ? DemoFeatures.Label(top) : "");
}
