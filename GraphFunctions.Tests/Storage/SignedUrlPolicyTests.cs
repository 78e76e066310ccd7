namespace GraphFunctions.Tests.Storage;

using GraphFunctions.Storage;

/// <summary>Which signed_url values the service accepts, and the exact message for each refusal.</summary>
public sealed class SignedUrlPolicyTests
{
    private const string AllowList = "graphs.s3.amazonaws.com, *.r2.cloudflarestorage.com, 127.0.0.1, localhost";

    [Theory]
    // allowed: named hosts (any case, any port, any query), suffix patterns at any depth, loopback over http when named
    [InlineData(AllowList, "https://graphs.s3.amazonaws.com/u/graph.json?X-Amz-Signature=abc", null)]
    [InlineData(AllowList, "https://GRAPHS.S3.AMAZONAWS.COM:443/u/graph.json", null)]
    [InlineData(AllowList, "https://account.r2.cloudflarestorage.com/bucket/key", null)]
    [InlineData(AllowList, "https://a.b.r2.cloudflarestorage.com/key", null)]
    [InlineData(AllowList, "http://127.0.0.1:4568/graphs/a.json", null)]
    [InlineData(AllowList, "http://localhost:4568/graphs/a.json", null)]
    [InlineData(AllowList, "https://127.0.0.1/graphs/a.json", null)]
    // denied hosts
    [InlineData(AllowList, "https://evil.com/graph.json", "signed_url host 'evil.com' is not allowed")]
    [InlineData(AllowList, "https://r2.cloudflarestorage.com/key", "signed_url host 'r2.cloudflarestorage.com' is not allowed")]
    [InlineData(AllowList, "https://evilr2.cloudflarestorage.com/key", "signed_url host 'evilr2.cloudflarestorage.com' is not allowed")]
    [InlineData(AllowList, "https://graphs.s3.amazonaws.com.evil.com/x", "signed_url host 'graphs.s3.amazonaws.com.evil.com' is not allowed")]
    [InlineData(AllowList, "https://graphs.s3.amazonaws.com@evil.com/x", "signed_url host 'evil.com' is not allowed")]
    [InlineData(AllowList, "https://s3.amazonaws.com/graphs/x", "signed_url host 's3.amazonaws.com' is not allowed")]
    [InlineData("", "https://graphs.s3.amazonaws.com/x", "signed_url host 'graphs.s3.amazonaws.com' is not allowed")]
    [InlineData("*.amazonaws.com", "http://127.0.0.1:4568/graphs/a.json", "signed_url host '127.0.0.1' is not allowed")]
    // denied schemes: https only, http only for a named loopback host
    [InlineData(AllowList, "http://graphs.s3.amazonaws.com/graph.json", "signed_url must use https")]
    [InlineData(AllowList, "http://account.r2.cloudflarestorage.com/key", "signed_url must use https")]
    [InlineData(AllowList, "ftp://graphs.s3.amazonaws.com/graph.json", "signed_url must use https")]
    [InlineData(AllowList, "file:///etc/passwd", "signed_url must use https")]
    [InlineData(AllowList, " https://graphs.s3.amazonaws.com/graph.json", "signed_url has spaces or line breaks around it")]
    [InlineData(AllowList, "https://graphs.s3.amazonaws.com/graph.json\n", "signed_url has spaces or line breaks around it")]
    // not URLs
    [InlineData(AllowList, "", "signed_url is not a valid absolute URL")]
    [InlineData(AllowList, "   ", "signed_url is not a valid absolute URL")]
    [InlineData(AllowList, "not a url", "signed_url is not a valid absolute URL")]
    [InlineData(AllowList, "/graphs/a.json", "signed_url is not a valid absolute URL")]
    [InlineData(AllowList, "graphs.s3.amazonaws.com/graph.json", "signed_url is not a valid absolute URL")]
    [InlineData(AllowList, "https://", "signed_url is not a valid absolute URL")]
    [InlineData(AllowList, "https://exa mple.com/x", "signed_url is not a valid absolute URL")]
    public void A_signed_url_is_allowed_or_refused_with_a_message_naming_the_problem(string allowList, string signedUrl, string? expectedError)
    {
        var policy = SignedUrlPolicy.FromSetting(allowList);

        var allowed = policy.TryValidate(signedUrl, out var url, out var error);

        Assert.Equal(expectedError, error);
        Assert.Equal(expectedError is null, allowed);
        Assert.Equal(expectedError is null, url is not null);
    }

    [Fact]
    public void A_missing_signed_url_is_not_a_valid_url()
    {
        Assert.False(SignedUrlPolicy.FromSetting(AllowList).TryValidate(null, out _, out var error));
        Assert.Equal("signed_url is not a valid absolute URL", error);
    }

    [Theory]
    [InlineData("*")]
    [InlineData("*.")]
    [InlineData("evil.com/path")]
    [InlineData("https://graphs.s3.amazonaws.com")]
    [InlineData("graphs.s3.amazonaws.com:443")]
    [InlineData("a*.example.com")]
    public void An_allowlist_entry_that_is_not_a_host_or_suffix_pattern_is_a_configuration_error(string entry)
    {
        var e = Assert.Throws<FormatException>(() => SignedUrlPolicy.FromSetting($"ok.example.com,{entry}"));
        Assert.Contains($"'{entry}'", e.Message, StringComparison.Ordinal);
    }
}
