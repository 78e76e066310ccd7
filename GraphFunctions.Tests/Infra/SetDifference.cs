namespace GraphFunctions.Tests.Infra;

/// <summary>Exact set comparison of setting names, with a message that lists both differences.</summary>
internal static class SetDifference
{
    public static void AssertSameNames(IEnumerable<string> expected, IEnumerable<string> actual, string actualSource)
    {
        var expectedSet = expected.ToHashSet(StringComparer.Ordinal);
        var actualSet = actual.ToHashSet(StringComparer.Ordinal);
        var missing = expectedSet.Except(actualSet).Order(StringComparer.Ordinal).ToList();
        var extra = actualSet.Except(expectedSet).Order(StringComparer.Ordinal).ToList();
        Assert.True(
            missing.Count == 0 && extra.Count == 0,
            $"{actualSource} and SettingNames.All differ. Missing from {actualSource}: [{string.Join(", ", missing)}]. " +
            $"In {actualSource} but not in SettingNames.All: [{string.Join(", ", extra)}].");
    }
}
