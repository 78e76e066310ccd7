namespace Attribution.Tests.Hub;

using Attribution.Hub;
using Attribution.Loading;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// The production loading path against the fake hub: a model by its id and transcoder sets by
/// repo name or hf:// URIs, downloaded into the Hugging Face cache and attributed.
/// </summary>
public sealed class HubModelLoadingTests : IDisposable
{
    private readonly FakeHub hub = new();
    private readonly TempFolder folder = new("gf-hub-model");
    private readonly HttpClient http = HubClient.CreateHttpClient();

    public void Dispose()
    {
        http.Dispose();
        hub.Dispose();
        folder.Dispose();
    }

    private HubClient Client() => new(http, new HubOptions { Endpoint = hub.Endpoint, CacheDirectory = folder["cache"], ResumeDelay = TimeSpan.Zero });

    /// <summary>Publishes every file under <paramref name="local"/> to a new repo (safetensors as LFS, like the hub).</summary>
    private void Publish(string repo, string local)
    {
        hub.AddRepo(repo);
        foreach (var file in Directory.GetFiles(local, "*", SearchOption.AllDirectories))
        {
            string path = Path.GetRelativePath(local, file).Replace('\\', '/');
            hub.AddFile(repo, path, File.ReadAllBytes(file), lfs: path.EndsWith(".safetensors", StringComparison.Ordinal));
        }
    }

    private string WriteModel()
    {
        string model = folder["local/model"];
        TinyCheckpoints.WriteModel(model, new TinyModelSpec
        {
            Architecture = ModelArchitecture.Llama, VocabSize = TinyTokenizerFactory.VocabSize, Seed = 5, Sharded = true,
            BosTokenId = TinyTokenizerFactory.BosId, EosTokenId = TinyTokenizerFactory.EosId,
        });
        TinyTokenizerFactory.Write(Path.Combine(model, "tokenizer.json"));
        Publish("org/tiny-llama", model);
        return model;
    }

    [Fact]
    public async Task A_model_id_and_a_cross_layer_transcoder_repo_load_from_the_hub()
    {
        string model = WriteModel();
        TinyCheckpoints.WriteTranscoders(folder["local/clt"], model, new TinyTranscoderSpec { Kind = TranscoderKind.CrossLayer, Seed = 3 });
        Publish("org/tiny-clt", folder["local/clt"]);

        using var loaded = await LoadedModel.LoadAsync(new ModelSettings { ModelId = "org/tiny-llama", TranscoderSet = "org/tiny-clt" }, Client());
        Assert.Equal("tiny-llama", loaded.Scan);
        Assert.Equal(["https://huggingface.co/org/tiny-clt"], loaded.SourceUrls);
        Assert.True(loaded.Replacement.Transcoders.IsCrossLayer);
        Assert.True(Directory.Exists(Path.Combine(folder["cache"], "models--org--tiny-llama", "snapshots")));

        // The downloaded model computes what the local files compute.
        using var local = DecoderModel.Load(model, CPU, ScalarType.Float32);
        using var ids = tensor(loaded.Tokenize("Hello world").Select(t => (long)t).ToArray()).unsqueeze(0);
        using (no_grad())
        {
            using var fromHub = loaded.Replacement.Model.ForwardLogits(ids);
            using var fromDisk = local.ForwardLogits(ids);
            Assert.True(fromHub.allclose(fromDisk, rtol: 0, atol: 0));
        }

        using var graph = Attributor.Attribute(loaded.Replacement, loaded.Tokenize("Hello world"), new AttributionSettings { BatchSize = 16, MaxFeatureNodes = 30 });
        Assert.Equal(30, graph.Graph.FeatureCount);
    }

    [Fact]
    public async Task A_transcoder_config_listing_hf_uris_fetches_each_layer_file()
    {
        string model = WriteModel();
        TinyCheckpoints.WriteTranscoders(folder["local/plt"], model, new TinyTranscoderSpec { Seed = 4, Skip = true });
        Publish("org/tiny-plt-files", folder["local/plt"]);
        var config = TranscoderSetConfig.Load(Path.Combine(folder["local/plt"], "config.yaml"));
        var published = config with { Transcoders = config.Transcoders.Select(path => $"hf://org/tiny-plt-files/{path}").ToList() };
        Directory.CreateDirectory(folder["local/plt-config"]);
        File.WriteAllText(folder["local/plt-config/config.yaml"], published.ToYaml());
        Publish("org/tiny-plt", folder["local/plt-config"]);

        using var loaded = await LoadedModel.LoadAsync(new ModelSettings { ModelId = "org/tiny-llama", TranscoderSet = "org/tiny-plt" }, Client());
        Assert.False(loaded.Replacement.Transcoders.IsCrossLayer);
        Assert.True(loaded.Replacement.Transcoders.HasSkip);
        Assert.Contains(hub.Seen("hub", "HEAD"), r => r.Path.Contains("tiny-plt-files/resolve/main/layer_0.safetensors", StringComparison.Ordinal));
    }

    [Fact]
    public void The_seed_transcoder_set_names_resolve_to_their_repositories()
    {
        var gemma = TranscoderSetCatalog.Describe("gemma");
        Assert.Equal(["https://neuronpedia.org/gemma-2-2b/gemmascope-transcoder-16k", "https://huggingface.co/google/gemma-scope-2b-pt-transcoders"], gemma.SourceUrls);
        Assert.Equal(26, gemma.BuiltIn!.Transcoders.Count);
        Assert.Equal("hf://google/gemma-scope-2b-pt-transcoders/layer_0/width_16k/average_l0_76/params.npz", gemma.BuiltIn.Transcoders[0]);
        Assert.Equal(ReadHook.Ln2Normalized, gemma.BuiltIn.InputHook);
        Assert.Equal(WriteHook.MlpOut, gemma.BuiltIn.OutputHook);

        var qwen = TranscoderSetCatalog.Describe("mwhanna/qwen3-4b-transcoders");
        Assert.Equal("mwhanna/qwen3-4b-transcoders", qwen.HubRepo);
        Assert.Equal(["https://neuronpedia.org/qwen3-4b/transcoder-hp", "https://huggingface.co/mwhanna/qwen3-4b-transcoders"], qwen.SourceUrls);
        var clt = TranscoderSetCatalog.Describe("mntss/clt-gemma-2-2b-2.5M");
        Assert.Equal(["https://neuronpedia.org/gemma-2-2b/clt-hp", "https://huggingface.co/mntss/clt-gemma-2-2b-2.5M"], clt.SourceUrls);

        Assert.Equal("gemma-2-2b", NeuronpediaIds.ScanFor("google/gemma-2-2b"));
        Assert.Equal("qwen3-4b", NeuronpediaIds.ScanFor("Qwen/Qwen3-4B"));
        Assert.Equal("gemma-3-4b-it", NeuronpediaIds.ScanFor("google/gemma-3-4b-it"));
        Assert.Throws<ArgumentException>(() => TranscoderSetCatalog.Describe("not a set"));
    }
}
