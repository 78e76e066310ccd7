namespace GraphFunctions.Tests.Viewer;

using System.Net;
using System.Text.Json;
using Attribution.Loading;
using GraphFunctions.Tests.Support;

/// <summary>
/// The jobs page on the default model, the bundled demo (docs/viewer.md): its preview marks the
/// prompt tokens the demo never saw in training and lists the warnings, and the tour's prompts are
/// offered as chips that fill the form.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed class ViewerDemoTests(ViewerDemoTests.Fixture fixture) : IClassFixture<ViewerDemoTests.Fixture>
{
    public sealed class Fixture : IAsyncLifetime
    {
        public LocalService Service { get; private set; } = null!;

        public Browser Browser { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Service = await LocalService.StartAsync(settings: new Dictionary<string, string?> { ["MODEL_ID"] = "" });   // the default
            Browser = await Browser.LaunchAsync();
        }

        public async Task DisposeAsync()
        {
            await Browser.DisposeAsync();
            await Service.DisposeAsync();
        }
    }

    private readonly LocalService service = fixture.Service;

    /// <summary>GF.token of api.js, which shows tokens and the warnings quoting them: line breaks, tabs and spaces at either end made visible.</summary>
    private static string Shown(string token)
    {
        string text = token.Replace("\r", "↵", StringComparison.Ordinal).Replace("\n", "⏎", StringComparison.Ordinal).Replace("\t", "⇥", StringComparison.Ordinal);
        int start = text.Length - text.TrimStart(' ').Length, end = text.Length - text.TrimEnd(' ').Length;
        return start == text.Length ? new string('␣', start) : new string('␣', start) + text[start..^end] + new string('␣', end);
    }

    [Fact]
    public async Task The_settings_offer_the_tours_prompts()
    {
        using var settings = await LocalService.JsonOf(await service.Anonymous().GetAsync("/viewer/settings"));
        Assert.Equal(BundledModel.Id, settings.RootElement.GetProperty("model_id").GetString());
        Assert.Equal(BundledModel.TourPrompts, settings.RootElement.GetProperty("example_prompts").EnumerateArray().Select(p => p.GetString()));
    }

    [Fact]
    public async Task The_preview_marks_the_tokens_the_demo_never_saw_and_an_example_chip_fills_the_prompt()
    {
        var (page, errors) = await JobsPage.OpenAsync(fixture.Browser, service);
        await using var opened = page;

        const string prompt = "The cat sat on the\n";
        await JobsPage.TypePromptEndingInALineBreakAsync(page, prompt.TrimEnd('\n'));
        var (tokens, unseen) = await JobsPage.PreviewOfAsync(page, prompt);

        using var response = await service.Http.PostAsync("/forward-pass", LocalService.Json(JsonSerializer.Serialize(new { prompt })));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var answer = await LocalService.JsonOf(response);
        var expectedUnseen = answer.RootElement.GetProperty("unseen_positions").EnumerateArray().Select(p => p.GetInt32()).ToArray();
        var expectedWarnings = answer.RootElement.GetProperty("warnings").EnumerateArray().Select(w => Shown(w.GetString()!)).ToArray();
        Assert.Equal(answer.RootElement.GetProperty("input_tokens").EnumerateArray().Select(t => Shown(t.GetString()!)), tokens);
        Assert.NotEmpty(expectedUnseen);
        Assert.Equal(expectedUnseen, unseen);
        // The trailing line break is a token of its own, shown, and never seen in training (no corpus sentence has one).
        Assert.Equal("⏎", tokens[^1]);
        Assert.Contains(tokens.Length - 1, unseen);
        Assert.Equal(expectedWarnings, await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#preview-warnings li')].map(li => li.textContent)"));
        await page.ScreenshotAsync(Browser.ArtifactPath("viewer-jobs-unseen.png"));

        // The chips are the tour's prompts; one fills the prompt, and its preview warns of nothing.
        Assert.Equal(BundledModel.TourPrompts, await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#examples button.example')].map(b => b.textContent)"));
        await page.ClickAsync("#examples button.example:nth-of-type(2)");
        string chosen = BundledModel.TourPrompts[1];
        Assert.Equal(chosen, await page.EvaluateExpressionAsync<string>("document.querySelector('#prompt').value"));
        var (chosenTokens, chosenUnseen) = await JobsPage.PreviewOfAsync(page, chosen);
        Assert.True(chosenTokens.Length > 1);
        Assert.Empty(chosenUnseen);
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#preview-warnings li').length"));
        Assert.Empty(errors);
    }
}
