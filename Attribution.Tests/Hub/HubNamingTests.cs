namespace Attribution.Tests.Hub;

using Attribution.Hub;

/// <summary>hf:// URIs, ETag normalisation and the settings read from the environment.</summary>
public class HubNamingTests
{
    [Theory]
    [InlineData("hf://mwhanna/qwen3-4b-transcoders/layer_0.safetensors", "mwhanna/qwen3-4b-transcoders", "layer_0.safetensors", null)]
    [InlineData("hf://mntss/clt-gemma-2-2b-2.5M/W_dec_3.safetensors?revision=main", "mntss/clt-gemma-2-2b-2.5M", "W_dec_3.safetensors", "main")]
    [InlineData("hf://google/gemma-scope-2b-pt-transcoders/layer_5/width_16k/params.npz?revision=refs%2Fpr%2F1", "google/gemma-scope-2b-pt-transcoders", "layer_5/width_16k/params.npz", "refs/pr/1")]
    public void Hf_uri_splits_into_repo_path_and_revision(string uri, string repoId, string path, string? revision)
    {
        var parsed = HubUri.Parse(uri);

        Assert.Equal(new HubUri(repoId, path, revision), parsed);
        Assert.Equal(parsed, HubUri.Parse(parsed.ToString()));
    }

    [Theory]
    [InlineData("https://huggingface.co/org/repo/file")]
    [InlineData("hf://org/repo")]
    [InlineData("hf://org/repo/../secret")]
    [InlineData("hf://org/repo/file?revision=")]
    public void Malformed_hf_uris_are_rejected(string uri) =>
        Assert.False(HubUri.TryParse(uri, out _));

    [Theory]
    [InlineData("\"a1b2\"", "a1b2")]
    [InlineData("W/\"a1b2\"", "a1b2")]
    [InlineData("a1b2", "a1b2")]
    public void Etag_loses_its_quotes_and_weak_prefix(string header, string expected) =>
        Assert.Equal(expected, HubCache.NormalizeEtag(header));

    [Fact]
    public void Settings_come_from_the_variables_huggingface_hub_reads()
    {
        var variables = new Dictionary<string, string>
        {
            ["HF_ENDPOINT"] = "http://mirror.local:8080/hf",
            ["HF_TOKEN"] = "hf_abc",
            ["HF_HOME"] = "/data/hf",
            ["HF_HUB_OFFLINE"] = "1",
        };

        var options = HubOptions.FromEnvironment(name => variables.GetValueOrDefault(name));

        Assert.Equal(new Uri("http://mirror.local:8080/hf"), options.Endpoint);
        Assert.Equal("hf_abc", options.Token);
        Assert.Equal("/data/hf/hub", options.CacheDirectory);
        Assert.True(options.Offline);

        variables["HF_HUB_CACHE"] = "/fast/cache";
        Assert.Equal("/fast/cache", HubOptions.FromEnvironment(name => variables.GetValueOrDefault(name)).CacheDirectory);
    }

    [Fact]
    public void Token_is_not_printed_by_the_options()
    {
        var options = new HubOptions { Token = "hf_secret" };

        Assert.DoesNotContain("hf_secret", options.ToString(), StringComparison.Ordinal);
    }
}
