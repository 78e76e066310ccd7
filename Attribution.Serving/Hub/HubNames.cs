namespace Attribution.Hub;

/// <summary>
/// Checks on repo ids, paths and hub-supplied names before they become URLs or file paths:
/// a repo id, a path from an index file, an ETag or a commit from a response header must never
/// escape the cache folder.
/// </summary>
internal static class HubNames
{
    /// <summary>"org/name" or a legacy top-level "name"; each part a plain segment.</summary>
    public static string CheckRepoId(string repoId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(repoId);
        var parts = repoId.Split('/');
        if (parts.Length > 2 || !parts.All(IsPlainSegment))
        {
            throw new ArgumentException($"'{repoId}' is not a hub repo id (expected 'org/name').", nameof(repoId));
        }
        return repoId;
    }

    /// <summary>A relative '/'-separated path with no empty, '.' or '..' segment.</summary>
    public static string CheckPath(string path, string what)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!path.Split('/').All(IsPlainSegment))
        {
            throw new ArgumentException($"'{path}' is not a valid {what} (a relative path with '/' separators).", nameof(path));
        }
        return path;
    }

    /// <summary>One path segment from the hub (ETag, commit); a hostile value is a bad response.</summary>
    public static string CheckSegment(string segment, string what)
    {
        if (!IsPlainSegment(segment))
        {
            throw new HubException(HubErrorKind.InvalidResponse, $"The hub sent an unusable {what}: '{segment}'.");
        }
        return segment;
    }

    /// <summary>A repo path or ref name as a local relative path (huggingface_hub splits on '/' too).</summary>
    public static string ToLocalPath(string path) => Path.Combine(CheckPath(path, "path").Split('/'));

    /// <summary>{endpoint}/{repo}/resolve/{revision}/{path}; the revision is one segment (refs/pr/1 → refs%2Fpr%2F1).</summary>
    public static Uri ResolveUrl(Uri endpoint, string repoId, string revision, string pathInRepo)
    {
        var repo = string.Join('/', CheckRepoId(repoId).Split('/').Select(Uri.EscapeDataString));
        var path = string.Join('/', CheckPath(pathInRepo, "path in repo").Split('/').Select(Uri.EscapeDataString));
        var baseUrl = endpoint.AbsoluteUri.TrimEnd('/');
        return new Uri($"{baseUrl}/{repo}/resolve/{Uri.EscapeDataString(revision)}/{path}");
    }

    private static bool IsPlainSegment(string segment) =>
        segment.Length > 0
        && segment != "."
        && segment != ".."
        && !segment.Contains('/', StringComparison.Ordinal)
        && !segment.Contains('\\', StringComparison.Ordinal)
        && !segment.Any(char.IsControl);
}
