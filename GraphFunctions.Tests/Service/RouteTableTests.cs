namespace GraphFunctions.Tests.Service;

using System.Reflection;
using System.Text.Json;
using GraphFunctions.Api;
using Microsoft.Azure.Functions.Worker;

/// <summary>
/// One route table (<see cref="Routes"/>): the Functions app's triggers and openapi.json hold the
/// same routes (EndToEndTests holds the local host's to openapi.json), and those routes keep the
/// real Functions host's rules, under which an empty route never reaches its function and a
/// parameter route shadows a literal one.
/// </summary>
public sealed class RouteTableTests
{
    /// <summary>(method, template) in lower case, the template without a leading slash.</summary>
    private sealed record Route(string Method, string Template);

    /// <summary>Every [HttpTrigger] of the Functions app, read by reflection as the Functions host reads its metadata.</summary>
    private static List<Route> FunctionsTriggers() =>
    [
        .. typeof(HttpFunctions).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static))
            .Where(m => m.GetCustomAttribute<FunctionAttribute>() is not null)
            .SelectMany(m => m.GetParameters())
            .Select(p => p.GetCustomAttribute<HttpTriggerAttribute>())
            .OfType<HttpTriggerAttribute>()
            .SelectMany(t => (t.Methods ?? []).Select(method => new Route(method.ToLowerInvariant(), t.Route ?? ""))),
    ];

    /// <summary>
    /// What the real host does wrong with a route table, in words: an empty route (mapped to the
    /// function's name, while "/" is the host's own page), and two routes of one method that match
    /// the same paths (the host's order, not the more literal one, then decides).
    /// </summary>
    private static List<string> HostRuleBreaches(IReadOnlyList<Route> routes)
    {
        var breaches = routes.Where(r => string.IsNullOrEmpty(r.Template)).Select(r => $"{r.Method} has an empty route").ToList();
        static string[] Segments(string template) => template.Split('/');
        static bool IsParameter(string segment) => segment.StartsWith('{');
        static bool Overlap(string a, string b)
        {
            string[] x = Segments(a), y = Segments(b);
            return x.Length == y.Length && x.Zip(y).All(s => IsParameter(s.First) || IsParameter(s.Second) || s.First == s.Second);
        }
        for (int i = 0; i < routes.Count; i++)
            for (int j = i + 1; j < routes.Count; j++)
                if (routes[i].Method == routes[j].Method && Overlap(routes[i].Template, routes[j].Template))
                    breaches.Add($"{routes[i].Method} {routes[i].Template} and {routes[j].Template} match the same paths");
        return breaches;
    }

    [Fact]
    public void The_functions_triggers_keep_the_real_hosts_routing_rules()
    {
        var triggers = FunctionsTriggers();

        Assert.True(triggers.Count >= 17, $"only {triggers.Count} HTTP triggers found");
        Assert.Empty(HostRuleBreaches(triggers));
    }

    [Fact]
    public void The_rules_catch_what_the_real_host_did_to_the_previous_viewer_routes()
    {
        // Before: the jobs page at Route = "" and the viewer's files at viewer/{file}, beside viewer/settings.
        var breaches = HostRuleBreaches([new("get", ""), new("get", "viewer/settings"), new("get", "viewer/{file}"), new("get", "graphs/{slug}")]);

        Assert.Equal(["get has an empty route", "get viewer/settings and viewer/{file} match the same paths"], breaches);
    }

    [Fact]
    public void The_viewer_pages_are_at_documented_paths_that_both_hosts_serve()
    {
        var triggers = FunctionsTriggers();

        Assert.All(new[] { "viewer", "graphs/{slug}", "viewer/settings", "viewer/assets/{file}" },
            template => Assert.Contains(new Route("get", template), triggers));
    }

    [Fact]
    public void The_openapi_document_lists_exactly_the_functions_routes()
    {
        using var openApi = JsonDocument.Parse(File.ReadAllText(Infra.RepositoryFiles.PathOf("GraphFunctions.Service/Api/openapi.json")));
        var documented = openApi.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject().Select(method => new Route(method.Name, path.Name.TrimStart('/'))));

        Assert.Equal(FunctionsTriggers().OrderBy(r => r.Template).ThenBy(r => r.Method), documented.OrderBy(r => r.Template).ThenBy(r => r.Method));
    }
}
