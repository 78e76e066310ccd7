namespace Attribution.Hub;

using System.Net;

/// <summary>What went wrong with a hub download, so callers can react without parsing messages.</summary>
public enum HubErrorKind
{
    /// <summary>Anything not listed below (an unexpected HTTP status, for instance).</summary>
    Other,

    /// <summary>401/403: the repo is gated or private (or absent), and the token is missing or has no access.</summary>
    AccessDenied,

    /// <summary>404: the repository does not exist.</summary>
    RepositoryNotFound,

    /// <summary>404: the repository exists but the revision (branch, tag, commit) does not.</summary>
    RevisionNotFound,

    /// <summary>404: the repository and revision exist but the file does not.</summary>
    EntryNotFound,

    /// <summary>The hub could not be reached and the cache cannot answer.</summary>
    Unreachable,

    /// <summary>Offline mode is on and the file is not in the cache.</summary>
    NotCached,

    /// <summary>The transfer broke off; the partial blob is kept and the next call resumes it.</summary>
    Interrupted,

    /// <summary>The hub's answer lacks what the cache layout needs, or the bytes do not match it.</summary>
    InvalidResponse,
}

/// <summary>A hub download failed; the message names the repo, revision and file and says what to do.</summary>
public sealed class HubException : Exception
{
    public HubException()
    {
    }

    public HubException(string message)
        : base(message)
    {
    }

    public HubException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public HubException(HubErrorKind kind, string message, HttpStatusCode? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        StatusCode = statusCode;
    }

    public HubErrorKind Kind { get; }

    /// <summary>The HTTP status that caused the error, when there was one.</summary>
    public HttpStatusCode? StatusCode { get; }
}
