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
        Assert.Equal(new HubReference("mwhanna/qwen3-4b-transcoders"), qwen.Hub);
        Assert.Equal(["https://neuronpedia.org/qwen3-4b/transcoder-hp", "https://huggingface.co/mwhanna/qwen3-4b-transcoders"], qwen.SourceUrls);
        var clt = TranscoderSetCatalog.Describe("mntss/clt-gemma-2-2b-2.5M");
        Assert.Equal(["https://neuronpedia.org/gemma-2-2b/clt-hp", "https://huggingface.co/mntss/clt-gemma-2-2b-2.5M"], clt.SourceUrls);

        Assert.Equal("gemma-2-2b", NeuronpediaIds.ScanFor("google/gemma-2-2b"));
        Assert.Equal("qwen3-4b", NeuronpediaIds.ScanFor("Qwen/Qwen3-4B"));
        Assert.Equal("gemma-3-4b-it", NeuronpediaIds.ScanFor("google/gemma-3-4b-it"));
        Assert.Throws<ArgumentException>(() => TranscoderSetCatalog.Describe("not a set"));

        // Neuronpedia's Gemma-3-4b-it set: a subfolder of a hub repo, with the server's three source URLs.
        var gemma3 = TranscoderSetCatalog.Describe(TranscoderSetCatalog.Gemma3Transcoders);
        Assert.Equal(new HubReference("mwhanna/gemma-scope-2-4b-it", "transcoder_all/width_262k_l0_small_affine"), gemma3.Hub);
        Assert.Equal(["https://neuronpedia.org/gemma-3-4b-it/gemmascope-transcoder-262k",
            "https://huggingface.co/mwhanna/gemma-scope-2-4b-it/transcoder_all/width_262k_l0_small_affine",
            "https://huggingface.co/google/gemma-scope-2-4b-it/transcoder_all"], gemma3.SourceUrls);
        // circuit-tracer's llama shortcut.
        var llama = TranscoderSetCatalog.Describe(TranscoderSetCatalog.Llama);
        Assert.Equal(new HubReference("mntss/transcoder-Llama-3.2-1B"), llama.Hub);
        Assert.Equal(["https://huggingface.co/mntss/transcoder-Llama-3.2-1B"], llama.SourceUrls);
    }

    [Theory]
    [InlineData("org/repo", "org/repo", null, null, "https://huggingface.co/org/repo")]
    [InlineData("org/repo@v2", "org/repo", null, "v2", "https://huggingface.co/org/repo/tree/v2")]
    [InlineData("org/repo/a/b", "org/repo", "a/b", null, "https://huggingface.co/org/repo/tree/main/a/b")]
    [InlineData("org/repo/a/b@refs/pr/3", "org/repo", "a/b", "refs/pr/3", "https://huggingface.co/org/repo/tree/refs/pr/3/a/b")]
    public void A_hub_reference_is_read_as_circuit_tracer_reads_it(string name, string repo, string? subfolder, string? revision, string url)
    {
        var entry = TranscoderSetCatalog.Describe(name);
        Assert.Equal(new HubReference(repo, subfolder, revision), entry.Hub);
        Assert.Equal(name, entry.Hub!.ToString());
        Assert.Equal([url], entry.SourceUrls);
    }

    [Theory]
    [InlineData("org/repo/../secrets", "'..'")]
    [InlineData("org/repo/", "subfolder")]
    [InlineData("org/repo@", "revision")]
    [InlineData("org//repo", "hub repo id")]
    [InlineData("https://huggingface.co/org/repo", "neither a known name")]
    [InlineData("plain", "neither a known name")]
    public void A_malformed_reference_is_refused_naming_it(string name, string fragment)
    {
        var refused = Assert.Throws<ArgumentException>(() => TranscoderSetCatalog.Describe(name));
        Assert.Contains($"'{name}'", refused.Message, StringComparison.Ordinal);
        Assert.Contains(fragment.Trim('\''), refused.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Neuronpedia's Gemma-3-4b-it layout in small: GemmaScope-2 per-layer transcoders with an
    /// affine skip in Google's repo, and a config.yaml listing them as hf:// URIs in a subfolder of
    /// another repo, read at a revision (main has moved on to a config that does not parse).
    /// </summary>
    [Fact]
    public async Task A_gemma_scope_2_set_in_a_subfolder_at_a_revision_loads_as_its_local_files_do()
    {
        string model = folder["local/gemma3"];
        TinyCheckpoints.WriteModel(model, new TinyModelSpec { Architecture = ModelArchitecture.Gemma3, VocabSize = TinyTokenizerFactory.VocabSize, Seed = 8 });
        TinyCheckpoints.WriteTranscoders(folder["local/gs2"], model, new TinyTranscoderSpec { Format = TinyTranscoderFormat.GemmaScope2, Skip = true, Seed = 9 });
        var local = TranscoderSetConfig.Load(Path.Combine(folder["local/gs2"], "config.yaml"));

        // Google's repo: the parameter files, in its transcoder_all/layer_{l}_... folders.
        hub.AddRepo("google-tiny/gemma-scope-2-tiny-it");
        var uris = new List<string>();
        for (int l = 0; l < local.Transcoders.Count; l++)
        {
            string path = $"transcoder_all/layer_{l}_width_96_l0_small_affine/params.safetensors";
            hub.AddFile("google-tiny/gemma-scope-2-tiny-it", path, File.ReadAllBytes(Path.Combine(folder["local/gs2"], local.Transcoders[l])), lfs: true);
            uris.Add($"hf://google-tiny/gemma-scope-2-tiny-it/{path}");
        }
        // The set's repo: its config.yaml in a subfolder; then main moves on to a config that does not parse.
        const string Subfolder = "transcoder_all/width_96_l0_small_affine";
        string pinned = hub.AddRepo("mwhanna-tiny/gemma-scope-2-tiny-it");
        hub.AddFile("mwhanna-tiny/gemma-scope-2-tiny-it", $"{Subfolder}/config.yaml", System.Text.Encoding.UTF8.GetBytes((local with { Transcoders = uris }).ToYaml()), lfs: false);
        hub.MoveMain("mwhanna-tiny/gemma-scope-2-tiny-it");
        hub.AddFile("mwhanna-tiny/gemma-scope-2-tiny-it", $"{Subfolder}/config.yaml", "model_kind: [not, a, kind"u8.ToArray(), lfs: false);

        var options = new TranscoderLoadOptions { Device = CPU, DType = ScalarType.Float32 };
        using var fromHub = await TranscoderSetCatalog.LoadAsync($"mwhanna-tiny/gemma-scope-2-tiny-it/{Subfolder}@{pinned}", local.Transcoders.Count, Client(), options);
        using var fromDisk = TranscoderLoader.LoadLocal(Path.Combine(folder["local/gs2"], "config.yaml"), options);
        Assert.True(fromHub.HasSkip);
        using var read = randn([3, ModelConfig.Load(model).DModel], generator: new Generator(2));
        for (int l = 0; l < local.Transcoders.Count; l++)
        {
            using var a = fromHub.Encode(l, read);
            using var b = fromDisk.Encode(l, read);
            Assert.True(a.allclose(b, rtol: 0, atol: 0), $"layer {l}");
        }
        // Without the revision, main's config is read: the revision was what made the load work.
        var broken = await Assert.ThrowsAsync<InvalidDataException>(() => TranscoderSetCatalog.LoadAsync($"mwhanna-tiny/gemma-scope-2-tiny-it/{Subfolder}", local.Transcoders.Count, Client(), options));
        Assert.Contains("config.yaml is not valid YAML", broken.Message, StringComparison.Ordinal);
    }

    /// <summary>circuit-tracer's layer_i.safetensors beside a config.yaml that lists none, in a subfolder.</summary>
    [Fact]
    public async Task A_set_in_a_subfolder_without_a_transcoder_list_fetches_its_layer_files()
    {
        string model = WriteModel();
        TinyCheckpoints.WriteTranscoders(folder["local/plt"], model, new TinyTranscoderSpec { Seed = 6 });
        var local = TranscoderSetConfig.Load(Path.Combine(folder["local/plt"], "config.yaml"));
        Assert.Equal(Enumerable.Range(0, local.Transcoders.Count).Select(l => $"layer_{l}.safetensors"), local.Transcoders);
        hub.AddRepo("org/sets");
        hub.AddFile("org/sets", "plt/config.yaml", System.Text.Encoding.UTF8.GetBytes((local with { Transcoders = [] }).ToYaml()), lfs: false);
        foreach (string file in local.Transcoders)
            hub.AddFile("org/sets", $"plt/{file}", File.ReadAllBytes(Path.Combine(folder["local/plt"], file)), lfs: true);

        var options = new TranscoderLoadOptions { Device = CPU, DType = ScalarType.Float32 };
        using var fromHub = await TranscoderSetCatalog.LoadAsync("org/sets/plt", local.Transcoders.Count, Client(), options);
        using var fromDisk = TranscoderLoader.LoadLocal(Path.Combine(folder["local/plt"], "config.yaml"), options);
        using var read = randn([2, ModelConfig.Load(model).DModel], generator: new Generator(3));
        using var a = fromHub.Encode(0, read);
        using var b = fromDisk.Encode(0, read);
        Assert.True(a.allclose(b, rtol: 0, atol: 0));
        Assert.Contains(hub.Seen("hub", "HEAD"), r => r.Path.Contains("org/sets/resolve/", StringComparison.Ordinal) && r.Path.EndsWith("plt/layer_0.safetensors", StringComparison.Ordinal));
    }
}
