namespace GraphFunctions.Storage;

/// <summary>
/// Where a graph job keeps its artifacts (row blocks of the attribution matrix, the finished
/// graph JSON) so that activities exchange keys instead of megabytes. Keys are relative,
/// '/'-separated paths such as <c>jobs/{slug}/rows/0003.bin</c>.
/// </summary>
/// <remarks>
/// Contract shared by every implementation:
/// <list type="bullet">
/// <item>Writes are atomic: an object appears whole once <c>WriteAsync</c> returns, and never
/// if the producer throws; a rewrite replaces the old object whole.</item>
/// <item><c>OpenReadAsync</c> returns a stream whose <see cref="Stream.Length"/> is known, and
/// throws <see cref="FileNotFoundException"/> for a missing key.</item>
/// <item>Prefixes are plain string prefixes of keys ("jobs/a" matches "jobs/a/x" and "jobs/ab").</item>
/// </list>
/// </remarks>
public interface IWorkspaceStore
{
    /// <summary>Stores what <paramref name="writeContent"/> writes into the given stream under <paramref name="key"/>.</summary>
    Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default);

    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default);

    Task<bool> ExistsAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>The keys that start with <paramref name="prefix"/>, in ordinal order.</summary>
    Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Deletes every object whose key starts with <paramref name="prefix"/>.</summary>
    Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken = default);
}

public static class WorkspaceStoreExtensions
{
    /// <summary>Stores a copy of <paramref name="content"/> (read from its current position).</summary>
    public static Task WriteAsync(this IWorkspaceStore store, string key, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(content);
        return store.WriteAsync(key, (target, ct) => content.CopyToAsync(target, ct), cancellationToken);
    }
}

/// <summary>The one rule for keys and prefixes, so that both stores accept exactly the same names.</summary>
public static class WorkspaceKey
{
    /// <summary>
    /// A key is one or more '/'-separated segments, none empty and none starting with '.'
    /// (which rules out "." and ".." and leaves dot-names free for a store's own staging files).
    /// </summary>
    public static bool IsValid(string? key) =>
        !string.IsNullOrEmpty(key)
        && !key.Contains('\\', StringComparison.Ordinal)
        && key.Split('/').All(segment => segment.Length > 0 && segment[0] != '.' && !segment.Any(char.IsControl));

    public static string Validate(string? key) =>
        IsValid(key) ? key! : throw new ArgumentException($"'{key}' is not a workspace key (relative '/'-separated path, no empty or dot-leading segments).", nameof(key));

    /// <summary>A prefix is empty, a key, or a key followed by '/'.</summary>
    public static string ValidatePrefix(string? prefix) =>
        prefix is not null && (prefix.Length == 0 || IsValid(prefix.TrimEnd('/')) && !prefix.EndsWith("//", StringComparison.Ordinal))
            ? prefix
            : throw new ArgumentException($"'{prefix}' is not a workspace key prefix.", nameof(prefix));
}
