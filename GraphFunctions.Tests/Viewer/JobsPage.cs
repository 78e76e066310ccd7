namespace GraphFunctions.Tests.Viewer;

using GraphFunctions.Tests.Support;
using PuppeteerSharp;

/// <summary>What the browser tests do on the jobs page: open it, type a prompt, read its preview.</summary>
public static class JobsPage
{
    /// <summary>The jobs page with the secret already in the tab, once its form has the schema's defaults.</summary>
    public static async Task<(IPage Page, List<string> Errors)> OpenAsync(Browser browser, LocalService service)
    {
        var (page, errors) = await browser.NewPageAsync();
        await page.EvaluateExpressionOnNewDocumentAsync($"localStorage.setItem('graphfunctions-secret', '{LocalService.Secret}')");
        await page.GoToAsync(new Uri(service.Address, "/viewer").ToString());
        await page.WaitForSelectorAsync("#graph-form[data-ready=true]");
        return (page, errors);
    }

    /// <summary>Replaces the prompt by typing <paramref name="text"/>, then Shift+Enter: a line break at its end.</summary>
    public static async Task TypePromptEndingInALineBreakAsync(IPage page, string text)
    {
        await page.EvaluateExpressionAsync("document.querySelector('#prompt').value = ''");
        await page.TypeAsync("#prompt", text);
        await page.Keyboard.DownAsync("Shift");
        await page.Keyboard.PressAsync("Enter");
        await page.Keyboard.UpAsync("Shift");
    }

    /// <summary>Waits until the preview shows <paramref name="prompt"/>'s tokens; returns the tokens as shown and the positions marked unseen.</summary>
    public static async Task<(string[] Tokens, int[] Unseen)> PreviewOfAsync(IPage page, string prompt)
    {
        await page.WaitForFunctionAsync("p => { const s = document.querySelector('#preview'); return s.dataset.state === 'ready' && s.dataset.prompt === p; }",
            new WaitForFunctionOptions { Timeout = 30_000 }, prompt);
        var tokens = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#preview-tokens .token')].map(t => t.textContent)");
        var unseen = await page.EvaluateExpressionAsync<int[]>("[...document.querySelectorAll('#preview-tokens .token.unseen')].map(t => Number(t.dataset.position))");
        return (tokens, unseen);
    }
}
