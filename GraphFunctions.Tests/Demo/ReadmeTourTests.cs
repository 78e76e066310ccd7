namespace GraphFunctions.Tests.Demo;

using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using GraphFunctions.Tests.Support;
using Xunit.Abstractions;

/// <summary>
/// The README's tour, run as written: every curl command of its "A tour of the demo model"
/// section is sent (its path and its JSON body) to the local host serving the bundled default,
/// and its result is compared with the "# expect:" line under it: a graph's top logit, or a
/// steer's first default and steered tokens.
/// </summary>
[Collection(UsesLocalService.Name)]
public sealed partial class ReadmeTourTests(ReadmeTourTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<ReadmeTourTests.Fixture>
{
    public sealed class Fixture : LocalServiceFixture
    {
        protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?> { ["MODEL_ID"] = "" };   // the default
    }

    /// <summary>One tour command: the route, the body, and what the README says comes back.</summary>
    public sealed record TourCommand(string Route, string Body, string Expectation);

    [GeneratedRegex(@"curl[^\n]*?(/generate-graph|/steer)\b.*?-d '(?<body>\{.*?\})'.*?\n# expect: (?<expect>[^\n]+)", RegexOptions.Singleline)]
    private static partial Regex CommandPattern();

    [GeneratedRegex("\"(?<token>[^\"]*)\"")]
    private static partial Regex QuotedToken();

    public static IReadOnlyList<TourCommand> Commands()
    {
        string readme = File.ReadAllText(Infra.RepositoryFiles.PathOf("README.md"));
        int start = readme.IndexOf("## A tour of the demo model", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README has no tour section");
        int end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        string tour = readme[start..(end < 0 ? readme.Length : end)];
        return [.. CommandPattern().Matches(tour).Select(m => new TourCommand(m.Groups[1].Value, m.Groups["body"].Value, m.Groups["expect"].Value))];
    }

    [Fact]
    public async Task Every_tour_command_answers_as_the_readme_says()
    {
        var commands = Commands();
        Assert.True(commands.Count(c => c.Route == "/generate-graph") >= 3, "the tour shows at least three graphs");
        Assert.True(commands.Count(c => c.Route == "/steer") >= 3, "the tour shows at least three steering examples");
        Assert.Contains(commands, c => c.Route == "/steer" && c.Body.Contains("\"ablate\": true", StringComparison.Ordinal) && !c.Body.Contains("delta", StringComparison.Ordinal));
        foreach (var command in commands)
        {
            using var response = await fixture.Service.Http.PostAsync(command.Route, LocalService.Json(command.Body));
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{command.Route} {command.Body}: {(int)response.StatusCode} {body}");
            using var json = JsonDocument.Parse(body);
            var expected = QuotedToken().Matches(command.Expectation).Select(m => m.Groups["token"].Value).ToList();
            if (command.Route == "/generate-graph")
            {
                string target = json.RootElement.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("is_target_logit").GetBoolean()).GetProperty("clerp").GetString()!;
                output.WriteLine($"graph {command.Body[..Math.Min(60, command.Body.Length)]}: {target}");
                Assert.StartsWith($"Output \"{expected.Single()}\"", target, StringComparison.Ordinal);
            }
            else
            {
                string First(string list) => json.RootElement.GetProperty(list).EnumerateArray().Last().GetProperty("token").GetString()!;
                output.WriteLine($"steer: default \"{First("DEFAULT_LOGITS_BY_TOKEN")}\", steered \"{First("STEERED_LOGITS_BY_TOKEN")}\"");
                Assert.Equal(expected, [First("DEFAULT_LOGITS_BY_TOKEN"), First("STEERED_LOGITS_BY_TOKEN")]);
            }
        }
    }
}
