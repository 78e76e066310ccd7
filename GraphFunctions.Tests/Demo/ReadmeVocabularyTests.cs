namespace GraphFunctions.Tests.Demo;

using Attribution.Demo;

/// <summary>The README's "What it knows" lists the demo corpus's words as DemoCorpus holds them: every country, opposite pair and name.</summary>
public sealed class ReadmeVocabularyTests
{
    private static string Section()
    {
        string readme = File.ReadAllText(Infra.RepositoryFiles.PathOf("README.md")).ReplaceLineEndings("\n");
        int start = readme.IndexOf("### What it knows", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README has no 'What it knows' section");
        int end = readme.IndexOf("\n#", start + 1, StringComparison.Ordinal);
        return readme[start..end].Replace("\n  ", " ", StringComparison.Ordinal);   // list items wrap onto indented lines
    }

    [Fact]
    public void The_readme_lists_every_country_opposite_and_name_of_the_corpus()
    {
        string section = Section();
        Assert.Contains($"the {DemoCorpus.Countries.Length} countries", section, StringComparison.Ordinal);
        Assert.Contains($"the {DemoCorpus.Opposites.Length} pairs", section, StringComparison.Ordinal);
        Assert.Contains($"the {DemoCorpus.Names.Length} below", section, StringComparison.Ordinal);
        Assert.Contains("Countries: " + string.Join(", ", DemoCorpus.Countries.Select(c => c.English)) + ".", section, StringComparison.Ordinal);
        Assert.Contains("Opposites: " + string.Join(", ", DemoCorpus.Opposites.Select(o => $"{o.A}/{o.B}"))
            + "; in French " + string.Join(", ", DemoCorpus.Opposites.Select(o => $"{o.FrenchA}/{o.FrenchB}")) + ".", section, StringComparison.Ordinal);
        Assert.Contains("Names: " + string.Join(", ", DemoCorpus.Names) + ".", section, StringComparison.Ordinal);
    }
}
