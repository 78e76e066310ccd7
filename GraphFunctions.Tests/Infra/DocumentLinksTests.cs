namespace GraphFunctions.Tests.Infra;

using System.Text.RegularExpressions;

/// <summary>
/// Every relative link of the README and docs/*.md leads to a file or folder of the repository,
/// and a link to a heading (#anchor, in the same or another Markdown file) to a heading there,
/// spelled as GitHub spells anchors.
/// </summary>
public sealed partial class DocumentLinksTests
{
    [GeneratedRegex(@"```.*?```", RegexOptions.Singleline)]
    private static partial Regex CodeBlock();

    [GeneratedRegex(@"`[^`\n]*`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"^#{1,6} (?<title>.+)$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [GeneratedRegex(@"[^\p{L}\p{N} _-]")]
    private static partial Regex NotInAnchor();

    public static TheoryData<string> Documents()
    {
        var documents = new TheoryData<string> { "README.md" };
        foreach (string path in Directory.GetFiles(RepositoryFiles.PathOf("docs"), "*.md").Order(StringComparer.Ordinal))
            documents.Add("docs/" + Path.GetFileName(path));
        return documents;
    }

    [Theory]
    [MemberData(nameof(Documents))]
    public void Every_relative_link_resolves(string document)
    {
        string path = RepositoryFiles.PathOf(document);
        string text = CodeSpan().Replace(CodeBlock().Replace(File.ReadAllText(path), ""), "");
        var broken = new List<string>();
        foreach (Match link in Link().Matches(text))
        {
            string target = link.Groups["target"].Value;
            if (target.StartsWith("http://", StringComparison.Ordinal) || target.StartsWith("https://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal)) continue;
            int hash = target.IndexOf('#', StringComparison.Ordinal);
            string file = hash < 0 ? target : target[..hash];
            string resolved = file.Length == 0 ? path : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, file));
            if (!File.Exists(resolved) && !Directory.Exists(resolved))
                broken.Add($"{target}: no {file}");
            else if (hash >= 0 && !Anchors(resolved).Contains(target[(hash + 1)..]))
                broken.Add($"{target}: no heading with that anchor in {Path.GetFileName(resolved)}");
        }
        Assert.True(broken.Count == 0, $"{document} links to what is not there:\n{string.Join('\n', broken)}");
    }

    /// <summary>The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens.</summary>
    private static HashSet<string> Anchors(string markdown) =>
        [.. Heading().Matches(CodeBlock().Replace(File.ReadAllText(markdown), ""))
            .Select(h => NotInAnchor().Replace(h.Groups["title"].Value.Trim().Replace("`", "", StringComparison.Ordinal).ToLowerInvariant(), "").Replace(' ', '-'))];
}
