namespace GraphFunctions.Api;

using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

/// <summary>The x-secret-key header check of every route but check-busy and the docs (docs/api.md).</summary>
public sealed class SecretCheck(string? secret)
{
    public const string Header = "x-secret-key";

    /// <summary>Null when the request may pass; otherwise the 400 (missing) or 403 (wrong) answer.</summary>
    public IResult? Refusal(HttpRequest request)
    {
        if (string.IsNullOrEmpty(secret)) return null;   // no secret configured: open, as the Neuronpedia graph server without SECRET
        if (!request.Headers.TryGetValue(Header, out var values) || values.Count == 0 || string.IsNullOrEmpty(values[0]))
            return ApiResults.Error(StatusCodes.Status400BadRequest, $"{Header} header missing");
        return Matches(values[0]!) ? null : ApiResults.Error(StatusCodes.Status403Forbidden, $"{Header} header is wrong");
    }

    /// <summary>Compares hashes in constant time, so neither content nor length leaks through timing.</summary>
    private bool Matches(string offered) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(offered)), SHA256.HashData(Encoding.UTF8.GetBytes(secret!)));
}
