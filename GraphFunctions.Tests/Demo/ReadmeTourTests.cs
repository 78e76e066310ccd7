namespace GraphFunctions.Tests.Demo;

using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Attribution.Tests.Support;
using GraphFunctions.Tests.Support;
using Xunit.Abstractions;

/// <summary>
/// The README's tour, run as written. Every step of its "A tour of the demo model" section is a
/// bash block of one curl command, which saves the answer to a file, and one jq line reading that
/// file, whose output must be exactly the "# expect:" after it. Both run with bash in a fresh
/// folder against the local host serving the bundled default with the example settings' secret
/// (only the address differs from run.sh's). The expectation is also checked against the answer
/// read here (a graph's target logit, a steer's first default and steered tokens), so a jq line
/// cannot pass by reading the wrong thing.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed partial class ReadmeTourTests(ReadmeTourTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<ReadmeTourTests.Fixture>, IDisposable
{
    /// <summary>The address the README's commands name: run.sh's.</summary>
    public const string ReadmeAddress = "http://127.0.0.1:5004";

    private readonly TempFolder folder = new("gf-tour");

    public sealed class Fixture : LocalServiceFixture
    {
        protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
        {
            ["MODEL_ID"] = "",   // the default
            ["SECRET"] = ExampleSecret(),   // what run.sh serves without a local.settings.json
        };
    }

    /// <summary>One tour step: its curl command (route, body, the file it writes) and its jq line with what it must print.</summary>
    public sealed record TourStep(string Curl, string Route, string Body, string File, string Jq, string Expectation);

    [GeneratedRegex(@"```bash\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex BashBlock();

    [GeneratedRegex(@"^curl .*?http://127\.0\.0\.1:5004(?<route>/[\w-]+) .*?-d '(?<body>\{.*?\})' > (?<file>tour-[\w-]+\.json)$", RegexOptions.Singleline)]
    private static partial Regex CurlCommand();

    [GeneratedRegex(@"^(?<jq>jq .* (?<file>tour-[\w-]+\.json))   # expect: (?<expect>.+)$")]
    private static partial Regex JqLine();

    /// <summary>The tour section of the README, up to the next second-level heading.</summary>
    public static string TourSection()
    {
        string readme = File.ReadAllText(Infra.RepositoryFiles.PathOf("README.md")).ReplaceLineEndings("\n");
        int start = readme.IndexOf("## A tour of the demo model", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README has no tour section");
        int end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return readme[start..(end < 0 ? readme.Length : end)];
    }

    /// <summary>Every bash block of the tour as a step; a block that is not one curl command and its jq check fails.</summary>
    public static IReadOnlyList<TourStep> Steps()
    {
        var steps = new List<TourStep>();
        foreach (Match block in BashBlock().Matches(TourSection()))
        {
            string code = block.Groups["code"].Value.TrimEnd('\n');
            int lastLine = code.LastIndexOf('\n');
            string curl = lastLine < 0 ? code : code[..lastLine], jq = code[(lastLine + 1)..];
            var check = JqLine().Match(jq);
            Assert.True(check.Success, $"a tour step must end with its check: a jq line reading the step's file, then '   # expect: ' and what it prints:\n{code}");
            var command = CurlCommand().Match(curl);
            Assert.True(command.Success, $"a tour step must be one curl command to {ReadmeAddress} saving its answer to a tour-*.json file, then its jq line:\n{code}");
            Assert.True(command.Groups["file"].Value == check.Groups["file"].Value, $"the jq line must read the file the curl command wrote:\n{code}");
            steps.Add(new TourStep(curl, command.Groups["route"].Value, command.Groups["body"].Value, command.Groups["file"].Value, check.Groups["jq"].Value, check.Groups["expect"].Value));
        }
        return steps;
    }

    public void Dispose() => folder.Dispose();

    [Fact]
    public void The_tour_shows_graphs_boosts_and_an_ablation()
    {
        var steps = Steps();
        Assert.True(steps.Count(s => s.Route == "/generate-graph") >= 3, "the tour shows at least three graphs");
        Assert.True(steps.Count(s => s.Route == "/steer") >= 3, "the tour shows at least three steering examples");
        Assert.Contains(steps, s => s.Route == "/steer" && s.Body.Contains("\"ablate\": true", StringComparison.Ordinal) && !s.Body.Contains("delta", StringComparison.Ordinal));
        Assert.Equal(steps.Count, steps.Select(s => s.File).Distinct().Count());
    }

    [Fact]
    public async Task Every_tour_step_answers_as_the_readme_says()
    {
        string address = fixture.Service.Address.ToString().TrimEnd('/');
        foreach (var step in Steps())
        {
            var curl = await RunAsync(step.Curl.Replace(ReadmeAddress, address, StringComparison.Ordinal));
            Assert.True(curl.ExitCode == 0, $"{step.Route} {step.Body}: curl exited {curl.ExitCode}: {curl.Error}");
            string answer = File.ReadAllText(folder[step.File]);
            var jq = await RunAsync(step.Jq);
            output.WriteLine($"{step.Jq}   # prints: {jq.Output.TrimEnd('\n')}");
            Assert.True(jq.ExitCode == 0, $"{step.Jq}: jq exited {jq.ExitCode}: {jq.Error}\n{step.File}: {answer[..Math.Min(answer.Length, 2000)]}");
            Assert.True(jq.Output == step.Expectation + "\n", $"{step.Jq} printed\n{jq.Output}where the README expects\n{step.Expectation}\n{step.File}: {answer[..Math.Min(answer.Length, 2000)]}");

            using var json = JsonDocument.Parse(answer);
            if (step.Route == "/generate-graph")
            {
                string target = json.RootElement.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("is_target_logit").GetBoolean()).GetProperty("clerp").GetString()!;
                Assert.Equal(target, step.Expectation);
            }
            else
            {
                string First(string list) => json.RootElement.GetProperty(list).EnumerateArray().Last().GetProperty("token").GetString()!;
                Assert.Equal([First("DEFAULT_LOGITS_BY_TOKEN"), First("STEERED_LOGITS_BY_TOKEN")], JsonSerializer.Deserialize<string[]>(step.Expectation)!);
            }
        }
    }

    /// <summary>The secret of local.settings.example.json, which the README's commands send.</summary>
    private static string ExampleSecret()
    {
        using var settings = JsonDocument.Parse(File.ReadAllText(Infra.RepositoryFiles.PathOf("local.settings.example.json")));
        return settings.RootElement.GetProperty("Values").GetProperty("SECRET").GetString()!;
    }

    private sealed record Run(int ExitCode, string Output, string Error);

    /// <summary>A command line run by bash in the test's folder, as a reader pastes it into a terminal.</summary>
    private async Task<Run> RunAsync(string commandLine)
    {
        var start = new ProcessStartInfo("bash") { WorkingDirectory = folder.Path, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(commandLine);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"still running after 5 minutes: {commandLine}");
        }
        string error = await stderr;
        if (process.ExitCode == 127) error += "\n(curl and jq must be on PATH: scripts/install-debian-tools.sh curl jq installs them, and scripts/test.sh runs it)";
        return new Run(process.ExitCode, await stdout, error);
    }
}
