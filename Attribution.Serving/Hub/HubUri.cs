namespace Attribution.Hub;

/// <summary>
/// A file on the hub as circuit-tracer's config.yaml names it:
/// hf://{org}/{repo}/{path/in/repo}[?revision={revision}]. The first two segments are the repo.
/// </summary>
public sealed record HubUri(string RepoId, string PathInRepo, string? Revision = null)
{
    public const string Scheme = "hf://";

    public static bool IsHubUri(string value) =>
        value is not null && value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase);

    public static HubUri Parse(string value)
    {
        if (!IsHubUri(value))
        {
            throw new FormatException($"'{value}' is not an hf:// URI.");
        }

        // 1. Split off the query; only "revision" means something to us.
        var rest = value[Scheme.Length..];
        string? revision = null;
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        if (query >= 0)
        {
            revision = RevisionFromQuery(rest[(query + 1)..], value);
            rest = rest[..query];
        }

        // 2. org/repo, then the path inside the repo.
        var segments = rest.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        if (segments.Length < 3)
        {
            throw new FormatException($"'{value}' names no file: expected hf://org/repo/path/in/repo[?revision=r].");
        }
        var repoId = $"{segments[0]}/{segments[1]}";
        var path = string.Join('/', segments[2..]);
        try
        {
            HubNames.CheckRepoId(repoId);
            HubNames.CheckPath(path, "path in repo");
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"'{value}' is not a valid hf:// URI: {e.Message}", e);
        }
        return new HubUri(repoId, path, revision);
    }

    public static bool TryParse(string value, out HubUri? uri)
    {
        try
        {
            uri = Parse(value);
            return true;
        }
        catch (FormatException)
        {
            uri = null;
            return false;
        }
    }

    public override string ToString() =>
        Scheme + RepoId + "/" + PathInRepo + (Revision is null ? "" : "?revision=" + Uri.EscapeDataString(Revision));

    private static string? RevisionFromQuery(string query, string value)
    {
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var key = equals < 0 ? pair : pair[..equals];
            if (key == "revision")
            {
                var revision = equals < 0 ? "" : Uri.UnescapeDataString(pair[(equals + 1)..]);
                return revision.Length > 0 ? revision : throw new FormatException($"'{value}' has an empty revision.");
            }
        }
        return null;
    }
}
