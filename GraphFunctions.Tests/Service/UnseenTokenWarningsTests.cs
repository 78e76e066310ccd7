namespace GraphFunctions.Tests.Service;

using System.Net;
using System.Text.Json;
using Attribution.Loading;
using Attribution.Tests.Support;
using GraphFunctions.Tests.Support;
using GraphFunctions.Workers;
using Microsoft.Extensions.DependencyInjection;

/// <summary>
/// The default model (the bundled demo, trained on toy tasks, with its training_tokens.json) tells
/// the user when a prompt holds tokens it never saw: /forward-pass, /generate-graph (the graph's
/// metadata) and /steer carry "warnings" for such a prompt and nothing extra for a tour prompt
/// (docs/api.md, "Warnings").
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class UnseenTokenWarningsTests(UnseenTokenWarningsTests.Fixture fixture) : IClassFixture<UnseenTokenWarningsTests.Fixture>
{
    public sealed class Fixture : LocalServiceFixture
    {
        protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["MODEL_ID"] = "" };   // the default
    }

    private const string OutOfCorpus = "The cat sat on the";

    private readonly LocalService service = fixture.Service;

    private static string TourPrompt => BundledModel.TourPrompts[0];

    private async Task<JsonElement> PostAsync(string route, object body)
    {
        using var response = await service.Http.PostAsync(route, LocalService.Json(JsonSerializer.Serialize(body)));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{route}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static string[] Warnings(JsonElement holder) => [.. holder.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!)];

    [Fact]
    public async Task The_default_model_is_the_demo_with_its_training_tokens()
    {
        var model = await service.Services.GetRequiredService<ModelHost>().GetAsync();
        Assert.Equal(BundledModel.Id, model.ModelId);
        Assert.True(model.Training is not null, $"demo/model/{TrainingVocabulary.FileName} is missing from the build output");
    }

    [Fact]
    public async Task Forward_pass_names_the_unseen_tokens_of_an_out_of_corpus_prompt()
    {
        var answer = await PostAsync("/forward-pass", new { prompt = OutOfCorpus });
        var tokens = answer.GetProperty("input_tokens").EnumerateArray().Select(t => t.GetString()!).ToList();
        var positions = answer.GetProperty("unseen_positions").EnumerateArray().Select(p => p.GetInt32()).ToList();
        var warnings = Warnings(answer);

        Assert.NotEmpty(positions);
        Assert.DoesNotContain(0, positions);   // the BOS begins every training sentence
        Assert.All(positions, p => Assert.InRange(p, 1, tokens.Count - 1));
        // One warning per stretch of adjacent unseen tokens, its text whole (the prompt is ASCII, so tokens concatenate to it).
        var stretches = new List<List<int>>();
        foreach (int p in positions)
        {
            if (stretches.Count > 0 && stretches[^1][^1] == p - 1) stretches[^1].Add(p);
            else stretches.Add([p]);
        }
        Assert.Equal(stretches.Count, warnings.Length);
        for (int i = 0; i < stretches.Count; i++)
        {
            var s = stretches[i];
            string where = s.Count == 1 ? $"position {s[0]}" : $"positions {s[0]}–{s[^1]}";
            Assert.StartsWith($"'{string.Concat(s.Select(p => tokens[p]))}' ({where}) never occurred in {BundledModel.Id}'s training text: ", warnings[i], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task No_tour_prompt_warns_and_its_answer_keeps_the_reference_shape()
    {
        foreach (string prompt in BundledModel.TourPrompts)
        {
            var answer = await PostAsync("/forward-pass", new { prompt });
            Assert.Equal(["prompt", "input_tokens", "salient_logits", "total_salient_tokens", "cumulative_probability"], answer.EnumerateObject().Select(p => p.Name));
        }
    }

    [Fact]
    public async Task A_graph_of_an_out_of_corpus_prompt_carries_the_warnings_in_its_metadata()
    {
        var expected = Warnings(await PostAsync("/forward-pass", new { prompt = OutOfCorpus }));
        foreach (var (prompt, slug) in new[] { (OutOfCorpus, "unseen-cat"), (TourPrompt, "unseen-none") })
        {
            var graph = await PostAsync("/generate-graph", new { prompt, model_id = BundledModel.Id, slug_identifier = slug, max_feature_nodes = 200 });
            using (var document = JsonDocument.Parse(graph.GetRawText())) GraphSchema.AssertValid(document);
            var metadata = graph.GetProperty("metadata");
            if (prompt == OutOfCorpus) Assert.Equal(expected, Warnings(metadata));
            else Assert.False(metadata.TryGetProperty("warnings", out _), "a tour prompt's graph has no warnings");
        }
    }

    [Fact]
    public async Task Steering_an_out_of_corpus_prompt_warns_and_a_tour_prompt_does_not()
    {
        var expected = Warnings(await PostAsync("/forward-pass", new { prompt = OutOfCorpus }));
        var unseen = await PostAsync("/steer", new { model_id = BundledModel.Id, prompt = OutOfCorpus, features = Array.Empty<object>(), n_tokens = 1 });
        Assert.Equal(expected, Warnings(unseen));

        var tour = await PostAsync("/steer", new { model_id = BundledModel.Id, prompt = TourPrompt, features = Array.Empty<object>(), n_tokens = 1 });
        Assert.Equal(["DEFAULT_GENERATION", "STEERED_GENERATION", "DEFAULT_LOGITS_BY_TOKEN", "STEERED_LOGITS_BY_TOKEN"], tour.EnumerateObject().Select(p => p.Name));
    }
}
