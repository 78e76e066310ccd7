namespace GraphFunctions.Tests.Infra;

/// <summary>Files at the repository root, found from the test output folder.</summary>
internal static class RepositoryFiles
{
    private static readonly Lazy<string> RootFolder = new(FindRoot);

    public static string PathOf(string relativePath) => Path.Combine(RootFolder.Value, relativePath);

    private static string FindRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "GraphFunctions.slnx"))) return folder.FullName;
        }
        throw new InvalidOperationException($"no GraphFunctions.slnx above {AppContext.BaseDirectory}");
    }
}
