namespace GraphFunctions.Tests.Viewer;

using GraphFunctions.Tests.Infra;
using PuppeteerSharp;

/// <summary>
/// Debian's chromium, headless, driven by PuppeteerSharp (scripts/install-debian-tools.sh installs it
/// where missing; browser downloads do not work here). One browser per test class.
/// </summary>
public sealed class Browser : IAsyncDisposable
{
    private Browser(IBrowser browser) => Chromium = browser;

    public IBrowser Chromium { get; }

    /// <summary>Where a test saves what a person may want to look at (git-ignored).</summary>
    public static string ArtifactPath(string name)
    {
        string folder = RepositoryFiles.PathOf(Path.Combine(".data", "test-artifacts"));
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, name);
    }

    public static async Task<Browser> LaunchAsync()
    {
        string executable = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(dir => Path.Combine(dir, "chromium")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("chromium is not on PATH: run scripts/install-debian-tools.sh chromium (scripts/test.sh does)");
        var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = executable,
            Headless = true,
            // Root in a container has no user namespace for the sandbox; /dev/shm may be small.
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
        return new Browser(browser);
    }

    /// <summary>
    /// A page of 1400 × 900 that records every console error and uncaught exception, in a browser
    /// context of its own (so its storage, where a remembered secret lives, starts empty) unless given one.
    /// </summary>
    public async Task<(IPage Page, List<string> Errors)> NewPageAsync(IBrowserContext? context = null)
    {
        context ??= await Chromium.CreateBrowserContextAsync();
        var page = await context.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = 1400, Height = 900 });
        var errors = new List<string>();
        page.Console += (_, e) =>
        {
            if (e.Message.Type == ConsoleType.Error) lock (errors) errors.Add($"console: {e.Message.Text}");
        };
        page.PageError += (_, e) => { lock (errors) errors.Add($"page error: {e.Message}"); };
        return (page, errors);
    }

    public async ValueTask DisposeAsync()
    {
        await Chromium.CloseAsync();
        await Chromium.DisposeAsync();
    }
}
