namespace Attribution.Hub;

using System.Net;

/// <summary>
/// Turns a failed hub response into a <see cref="HubException"/> that says what to do.
/// The hub explains itself in X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound,
/// GatedRepo) and X-Error-Message; a plain mirror may send only the status.
/// </summary>
internal static class HubErrors
{
    public static HubException FromResponse(
        HttpResponseMessage response, string repoId, string revision, string pathInRepo, bool fromHub, bool tokenSent)
    {
        var status = (int)response.StatusCode;
        var code = Header(response, "X-Error-Code");
        var said = Header(response, "X-Error-Message") is { } message ? $" The hub says: {message}" : "";
        var url = response.RequestMessage?.RequestUri;

        // A CDN or storage host is not the hub: its 403 is an expired link, not a gated repo.
        if (!fromHub)
        {
            return new HubException(
                HubErrorKind.Other,
                $"The download server {url?.Host} answered HTTP {status} {response.ReasonPhrase} for '{pathInRepo}' of '{repoId}' "
                + $"at revision '{revision}'; retry the download (its signed link may have expired).",
                response.StatusCode);
        }

        // Unauthenticated, the hub answers 401 for private, gated and missing repos alike.
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden || code == "GatedRepo")
        {
            var what = status == 401 ? "gated or private (or does not exist)" : "gated or private";
            var advice = tokenSent
                ? "HF_TOKEN was sent but is wrong or has no access to this repo: check the token, and for a gated repo "
                  + "accept its terms on the repo's page with the token's account."
                : "No HF_TOKEN is set: set HF_TOKEN to a token with read access (for a gated repo, first accept its "
                  + "terms on the repo's page).";
            return new HubException(
                HubErrorKind.AccessDenied,
                $"Access to repository '{repoId}' was refused (HTTP {status}): the repo is {what}. {advice}{said}",
                response.StatusCode);
        }

        return code switch
        {
            "RepoNotFound" => new HubException(
                HubErrorKind.RepositoryNotFound,
                $"Repository '{repoId}' was not found on {url?.Host} (HTTP {status}): check the repo id.{said}",
                response.StatusCode),
            "RevisionNotFound" => new HubException(
                HubErrorKind.RevisionNotFound,
                $"Revision '{revision}' was not found in repository '{repoId}' (HTTP {status}): check the branch, tag or commit.{said}",
                response.StatusCode),
            "EntryNotFound" => new HubException(
                HubErrorKind.EntryNotFound,
                $"File '{pathInRepo}' was not found in repository '{repoId}' at revision '{revision}' (HTTP {status}).{said}",
                response.StatusCode),
            _ when response.StatusCode == HttpStatusCode.NotFound => new HubException(
                HubErrorKind.EntryNotFound,
                $"Not found (HTTP 404): file '{pathInRepo}' in repository '{repoId}' at revision '{revision}' "
                + $"(the repository, the revision or the file does not exist; {url}).{said}",
                response.StatusCode),
            _ => new HubException(
                HubErrorKind.Other,
                $"The hub answered HTTP {status} {response.ReasonPhrase} for file '{pathInRepo}' in repository '{repoId}' "
                + $"at revision '{revision}' ({url}).{said}",
                response.StatusCode),
        };
    }

    public static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? values.FirstOrDefault()
            : null;
}
