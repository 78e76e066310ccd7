namespace GraphFunctions.Storage;

using System.Diagnostics.CodeAnalysis;

/// <summary>
/// Which presigned URLs the service will PUT a graph to (setting SIGNED_URL_ALLOWED_HOSTS).
/// Without it, a caller could make the service send data to any host it can reach.
/// </summary>
/// <remarks>
/// The setting is a comma-separated list of host names ("my-bucket.s3.amazonaws.com") and
/// suffix patterns ("*.amazonaws.com": any host ending in ".amazonaws.com", not the bare
/// suffix). Ports do not matter. URLs must use https; plain http is accepted only for a
/// loopback host (127.0.0.1, localhost) that the list names exactly, which is for tests.
/// An empty list allows nothing.
/// </remarks>
public sealed class SignedUrlPolicy
{
    private readonly HashSet<string> hosts;
    private readonly string[] suffixes;

    private SignedUrlPolicy(HashSet<string> hosts, string[] suffixes)
    {
        this.hosts = hosts;
        this.suffixes = suffixes;
    }

    /// <summary>Reads the allowlist; throws <see cref="FormatException"/> for an entry that is neither a host nor "*.suffix".</summary>
    public static SignedUrlPolicy FromSetting(string? allowedHosts)
    {
        var entries = (allowedHosts ?? "")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(entry => entry.ToLowerInvariant())
            .ToList();
        var hosts = new HashSet<string>(StringComparer.Ordinal);
        var suffixes = new List<string>();
        foreach (var entry in entries)
        {
            if (entry.StartsWith("*.", StringComparison.Ordinal) && IsHostName(entry[2..]))
                suffixes.Add(entry[1..]); // keep the dot: "*.b.com" matches "a.b.com", never "evilb.com"
            else if (IsHostName(entry))
                hosts.Add(entry);
            else
                throw new FormatException($"SIGNED_URL_ALLOWED_HOSTS entry '{entry}' is not a host name or a '*.suffix' pattern.");
        }
        return new SignedUrlPolicy(hosts, [.. suffixes]);
    }

    /// <summary>
    /// Checks a request's signed_url before a job starts. On success <paramref name="url"/> is the
    /// parsed URL; otherwise <paramref name="error"/> is a message for the 400 response.
    /// </summary>
    public bool TryValidate(string? signedUrl, [NotNullWhen(true)] out Uri? url, [NotNullWhen(false)] out string? error)
    {
        url = null;
        error = Check(signedUrl, out var parsed);
        if (error is not null)
            return false;
        url = parsed!;
        return true;
    }

    private string? Check(string? signedUrl, out Uri? url)
    {
        // "://" also rejects what .NET on Unix would read as a file path ("/tmp/x" → file:///tmp/x).
        if (string.IsNullOrWhiteSpace(signedUrl) || !signedUrl.Contains("://", StringComparison.Ordinal)
            || !Uri.TryCreate(signedUrl, UriKind.Absolute, out url))
        {
            url = null;
            return "signed_url is not a valid absolute URL";
        }
        // Uri trims what surrounds the text; the upload must go to exactly the URL that was signed.
        if (signedUrl.Trim() != signedUrl)
            return "signed_url has spaces or line breaks around it";

        var https = url.Scheme == Uri.UriSchemeHttps;
        if (!https && url.Scheme != Uri.UriSchemeHttp)
            return "signed_url must use https";

        var host = url.IdnHost;
        if (!hosts.Contains(host) && !suffixes.Any(suffix => host.EndsWith(suffix, StringComparison.Ordinal)))
            return $"signed_url host '{host}' is not allowed";

        // Plain http only to this machine, and only where the operator named it (tests).
        if (!https && !(url.IsLoopback && hosts.Contains(host)))
            return "signed_url must use https";

        return null;
    }

    private static bool IsHostName(string value) =>
        Uri.CheckHostName(value) is UriHostNameType.Dns or UriHostNameType.IPv4 or UriHostNameType.IPv6;
}
