namespace GraphFunctions.Tests.Infra;

using System.Text.RegularExpressions;
using System.Xml.Linq;

/// <summary>
/// The floor plan holds: docs/architecture.md maps every project and folder that exists (and none
/// that does not), the product's namespaces form no cycle, and the engine reaches no network.
/// </summary>
public sealed partial class LayoutTests
{
    private static readonly string[] ProductProjects =
        ["Attribution", "Attribution.Serving", "Attribution.Fixtures", "GraphFunctions.Service", "GraphFunctions", "GraphFunctions.LocalHost", "GraphFunctions.Cli"];

    private static string Root => RepositoryFiles.PathOf("");

    private static List<string> Projects() =>
    [
        .. XDocument.Load(RepositoryFiles.PathOf("GraphFunctions.slnx")).Descendants("Project")
            .Select(p => p.Attribute("Path")!.Value.Split('/')[0]),
    ];

    /// <summary>The first code block of docs/architecture.md: "Name/" at the margin, "  Folder/" under it.</summary>
    private static List<(string Project, string? Folder)> MapEntries()
    {
        string text = File.ReadAllText(RepositoryFiles.PathOf("docs/architecture.md"));
        var block = text.Split("```")[1];
        var entries = new List<(string, string?)>();
        string? project = null;
        foreach (string line in block.Split('\n'))
        {
            if (TopLevel().Match(line) is { Success: true } top) entries.Add((project = top.Groups[1].Value.TrimEnd('/'), null));
            else if (Nested().Match(line) is { Success: true } nested && project is not null) entries.Add((project, nested.Groups[1].Value.TrimEnd('/')));
        }
        return entries;
    }

    [Fact]
    public void The_layout_map_names_every_project_and_folder_and_only_those()
    {
        var map = MapEntries();
        var missing = new List<string>();
        foreach (string project in Projects())
        {
            if (!map.Contains((project, null))) missing.Add(project + "/");
            foreach (var folder in Directory.GetDirectories(Path.Combine(Root, project)).Select(Path.GetFileName))
                if (folder is not ("bin" or "obj") && !map.Contains((project, folder))) missing.Add($"{project}/{folder}/");
        }
        var absent = map.Where(e => !Directory.Exists(Path.Combine(Root, e.Project, e.Folder ?? ""))).Select(e => $"{e.Project}/{e.Folder}").ToList();

        Assert.True(missing.Count == 0, "docs/architecture.md does not map: " + string.Join(", ", missing));
        Assert.True(absent.Count == 0, "docs/architecture.md maps folders that do not exist: " + string.Join(", ", absent));
    }

    [Fact]
    public void The_product_namespaces_form_no_cycle()
    {
        // namespace → the product namespaces its files import (a reference needs the import or its parent namespace)
        var imports = new Dictionary<string, HashSet<string>>();
        foreach (string project in ProductProjects)
        {
            foreach (string file in SourceFiles(project))
            {
                string text = File.ReadAllText(file);
                string own = NamespaceLine().Match(text).Groups[1].Value;
                var targets = imports.TryGetValue(own, out var set) ? set : imports[own] = [];
                foreach (Match import in UsingLine().Matches(text))
                    if (import.Groups[1].Value != own) targets.Add(import.Groups[1].Value);
            }
        }

        var cycles = imports.Keys.Where(ns => Reaches(imports, ns, ns)).Order().ToList();

        Assert.True(imports.Count > 20, $"only {imports.Count} namespaces found");   // the scan found the sources
        Assert.True(cycles.Count == 0, "namespaces on a cycle: " + string.Join(", ", cycles));
    }

    [Fact]
    public void The_engine_references_nothing_of_ours_and_reaches_no_network()
    {
        var project = XDocument.Load(Path.Combine(Root, "Attribution", "Attribution.csproj"));
        Assert.Empty(project.Descendants("ProjectReference"));
        var networked = SourceFiles("Attribution").Where(f => File.ReadAllText(f) is var t && (t.Contains("System.Net", StringComparison.Ordinal) || t.Contains("HttpClient", StringComparison.Ordinal)));
        Assert.Empty(networked);
    }

    private static IEnumerable<string> SourceFiles(string project) =>
        Directory.EnumerateFiles(Path.Combine(Root, project), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal));

    private static bool Reaches(Dictionary<string, HashSet<string>> imports, string from, string target)
    {
        var seen = new HashSet<string>();
        var pending = new Stack<string>(imports.GetValueOrDefault(from) ?? []);
        while (pending.Count > 0)
        {
            string next = pending.Pop();
            if (next == target) return true;
            if (seen.Add(next)) foreach (string n in imports.GetValueOrDefault(next) ?? []) pending.Push(n);
        }
        return false;
    }

    [GeneratedRegex(@"^([A-Za-z][\w.]*/(?:[\w.]+/)?)(?:\s|,|$)")]
    private static partial Regex TopLevel();

    [GeneratedRegex(@"^  ([A-Z][\w.]*/)\s")]
    private static partial Regex Nested();

    [GeneratedRegex(@"^namespace ([\w.]+);", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"^using ((?:Attribution|GraphFunctions)[\w.]*);", RegexOptions.Multiline)]
    private static partial Regex UsingLine();
}
