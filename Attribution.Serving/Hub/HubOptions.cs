namespace Attribution.Hub;

/// <summary>
/// Where the hub is, who we are, and where the cache lives. The environment variables are the
/// ones huggingface_hub reads, so a machine set up for Python works unchanged.
/// A class, not a record: a record's generated ToString would print the token into logs.
/// </summary>
public sealed class HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Base address of the hub (HF_ENDPOINT); files live at {Endpoint}/{repo}/resolve/{revision}/{path}.</summary>
    public Uri Endpoint { get; init; } = new(DefaultEndpoint);

    /// <summary>Bearer token for gated and private repos (HF_TOKEN); sent to the hub's own origin only.</summary>
    public string? Token { get; init; }

    /// <summary>Root of the Hugging Face cache layout (HF_HUB_CACHE).</summary>
    public string CacheDirectory { get; init; } = DefaultCacheDirectory(Environment.GetEnvironmentVariable);

    /// <summary>No network at all: revisions resolve through refs/ in the cache (HF_HUB_OFFLINE).</summary>
    public bool Offline { get; init; }

    /// <summary>Limit for the metadata (HEAD) request; huggingface_hub uses 10 s.</summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest wait for the next bytes of a body before the transfer counts as broken.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often a broken transfer is resumed within one call before the call gives up.</summary>
    public int MaxResumeAttempts { get; init; } = 5;

    /// <summary>Wait before the first resume; doubles on each further one.</summary>
    public TimeSpan ResumeDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Progress lines in the log come at most this often (callbacks get every 5 %).</summary>
    public TimeSpan ProgressLogInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Reads HF_ENDPOINT, HF_TOKEN (or the token file of huggingface-cli login), HF_HUB_CACHE and HF_HUB_OFFLINE.</summary>
    public static HubOptions FromEnvironment(Func<string, string?>? variables = null)
    {
        variables ??= Environment.GetEnvironmentVariable;
        var endpoint = NonEmpty(variables("HF_ENDPOINT")) ?? DefaultEndpoint;
        return new HubOptions
        {
            Endpoint = new Uri(endpoint, UriKind.Absolute),
            Token = ReadToken(variables),
            CacheDirectory = DefaultCacheDirectory(variables),
            Offline = IsTrue(variables("HF_HUB_OFFLINE")),
        };
    }

    /// <summary>HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE (legacy), else {HF_HOME}/hub.</summary>
    public static string DefaultCacheDirectory(Func<string, string?> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return NonEmpty(variables("HF_HUB_CACHE"))
            ?? NonEmpty(variables("HUGGINGFACE_HUB_CACHE"))
            ?? Path.Combine(HomeDirectory(variables), "hub");
    }

    /// <summary>HF_HOME, else {XDG_CACHE_HOME or ~/.cache}/huggingface, as huggingface_hub resolves it.</summary>
    private static string HomeDirectory(Func<string, string?> variables)
    {
        if (NonEmpty(variables("HF_HOME")) is { } home)
        {
            return ExpandHome(home);
        }
        var xdgCache = NonEmpty(variables("XDG_CACHE_HOME"))
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(ExpandHome(xdgCache), "huggingface");
    }

    /// <summary>HF_TOKEN, else the legacy HUGGING_FACE_HUB_TOKEN, else the file `huggingface-cli login` writes.</summary>
    private static string? ReadToken(Func<string, string?> variables)
    {
        if ((NonEmpty(variables("HF_TOKEN")) ?? NonEmpty(variables("HUGGING_FACE_HUB_TOKEN"))) is { } token)
        {
            return token.Trim();
        }
        var tokenFile = NonEmpty(variables("HF_TOKEN_PATH")) is { } path
            ? ExpandHome(path)
            : Path.Combine(HomeDirectory(variables), "token");
        return File.Exists(tokenFile) ? NonEmpty(File.ReadAllText(tokenFile).Trim()) : null;
    }

    private static bool IsTrue(string? value) =>
        value?.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static string ExpandHome(string path) =>
        path.StartsWith('~')
            ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..]
            : path;
}
