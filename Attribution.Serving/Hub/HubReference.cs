namespace Attribution.Hub;

/// <summary>
/// A transcoder set on the hub as circuit-tracer names one: <c>org/repo[/sub/folder][@revision]</c>
/// (its <c>HfUri.from_str</c>), the repo's config.yaml being at the root or in the subfolder. The
/// one parser of that form; <see cref="HubUri"/> is the other form, a single file.
/// </summary>
public sealed record HubReference(string RepoId, string? Subfolder = null, string? Revision = null)
{
    /// <summary>Whether <paramref name="name"/> has the form (at least org/repo, no local-path or URL prefix).</summary>
    public static bool Looks(string name) =>
        !string.IsNullOrWhiteSpace(name) && !name.StartsWith('/') && !name.StartsWith('.') && !name.Contains('\\', StringComparison.Ordinal)
        && !name.Contains("://", StringComparison.Ordinal) && name.Split('@', 2)[0].Contains('/', StringComparison.Ordinal);

    /// <summary>The reference in <paramref name="name"/>; a name not of the form is named in the exception.</summary>
    public static HubReference Parse(string name)
    {
        if (!Looks(name)) throw new FormatException($"'{name}' is not a hub reference: expected org/repo[/subfolder][@revision]");
        var (path, revision) = name.Split('@', 2) is [var p, var r] ? (p, r) : (name, null);
        var segments = path.Split('/');
        try
        {
            string repoId = HubNames.CheckRepoId($"{segments[0]}/{segments[1]}");
            string? subfolder = segments.Length > 2 ? HubNames.CheckPath(string.Join('/', segments[2..]), "subfolder") : null;
            if (revision is not null) HubNames.CheckPath(revision, "revision");
            return new HubReference(repoId, subfolder, revision);
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"'{name}' is not a hub reference (org/repo[/subfolder][@revision]): {e.Message}", e);
        }
    }

    /// <summary>A file of the set: <paramref name="path"/> inside the subfolder.</summary>
    public string PathOf(string path) => Subfolder is null ? path : $"{Subfolder}/{path}";

    /// <summary>Where a reader finds the set on the hub's website.</summary>
    public string WebUrl => Subfolder is null && Revision is null
        ? $"https://huggingface.co/{RepoId}"
        : $"https://huggingface.co/{RepoId}/tree/{Revision ?? HubClient.DefaultRevision}{(Subfolder is null ? "" : "/" + Subfolder)}";

    /// <summary>The reference written back: org/repo[/subfolder][@revision].</summary>
    public override string ToString() => $"{RepoId}{(Subfolder is null ? "" : "/" + Subfolder)}{(Revision is null ? "" : "@" + Revision)}";
}
