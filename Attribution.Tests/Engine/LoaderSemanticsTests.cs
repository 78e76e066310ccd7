namespace Attribution.Tests.Engine;

using Attribution.Loading;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>Transcoder sets load with circuit-tracer's loader semantics, not our own guesses.</summary>
public class LoaderSemanticsTests
{
    private static string WriteSet(TempFolder folder, TinyTranscoderSpec spec)
    {
        if (!Directory.Exists(folder["model"])) TinyCheckpoints.WriteModel(folder["model"], new TinyModelSpec { Seed = 5 });
        return TinyCheckpoints.WriteTranscoders(folder[$"tc-{spec.Format}-{spec.Kind}-{spec.Skip}"], folder["model"], spec);
    }

    private static TranscoderSet LoadWithActivation(string configPath, ActivationSpec declared)
    {
        var config = TranscoderSetConfig.Load(configPath) with { Activation = declared };
        File.WriteAllText(configPath, config.ToYaml());
        return TranscoderLoader.LoadLocal(configPath, new TranscoderLoadOptions());
    }

    [Fact]
    public void A_declared_relu_or_topk_wins_over_thresholds_stored_in_the_files()
    {
        using var folder = new TempFolder();
        string config = WriteSet(folder, new TinyTranscoderSpec { Activation = "jump_relu", TargetL0 = 12 });
        manual_seed(3);
        using var reads = randn(6, 64) * 4;

        using (var declaredTopK = LoadWithActivation(config, new ActivationSpec("topk", 3)))
        {
            Assert.IsType<ActivationFunction.TopK>(declaredTopK.Activation(0));
            using var active = declaredTopK.Encode(0, reads).ne(0).sum(1);
            Assert.True(active.le(3).all().item<bool>(), "top-3 keeps at most three features per position");
        }
        using (var declaredRelu = LoadWithActivation(config, ActivationSpec.Relu))
        {
            Assert.IsType<ActivationFunction.Relu>(declaredRelu.Activation(0));
            using var pre = declaredRelu.PreActivations(0, reads);
            using var expected = pre.relu();
            using var actual = declaredRelu.Encode(0, reads);
            Assert.True(actual.allclose(expected, rtol: 0, atol: 0), "ReLU, not the stored thresholds");
        }
        using var declaredJumpRelu = LoadWithActivation(config, new ActivationSpec("jump_relu"));
        Assert.IsType<ActivationFunction.JumpRelu>(declaredJumpRelu.Activation(0));
    }

    [Fact]
    public void GemmaScope_files_are_JumpReLU_whatever_the_config_declares()
    {
        using var folder = new TempFolder();
        string config = WriteSet(folder, new TinyTranscoderSpec { Format = TinyTranscoderFormat.GemmaScope2 });
        using var set = LoadWithActivation(config, ActivationSpec.Relu);
        Assert.IsType<ActivationFunction.JumpRelu>(set.Activation(0));
    }

    [Fact]
    public void A_cross_layer_set_in_circuit_tracers_layout_does_not_apply_a_stored_W_skip()
    {
        using var folder = new TempFolder();
        string withSkip = WriteSet(folder, new TinyTranscoderSpec { Kind = TranscoderKind.CrossLayer, Skip = true, Seed = 8 });
        Assert.Contains("W_skip_0", Attribution.Checkpoints.SafetensorsFormat.ReadHeader(Path.Combine(Path.GetDirectoryName(withSkip)!, "W_enc_0.safetensors")).Keys);
        using var set = TranscoderLoader.LoadLocal(withSkip, new TranscoderLoadOptions());
        Assert.False(set.HasSkip);
        using var reads = randn(2, 64);
        Assert.Null(set.Skip(0, reads));
    }

    [Theory]
    [InlineData(TranscoderKind.PerLayer, true)]
    [InlineData(TranscoderKind.CrossLayer, false)]
    [InlineData(TranscoderKind.CrossLayer, true)]
    public void GemmaScope2_layouts_load_to_the_same_transcoders_as_circuit_tracers_own(TranscoderKind kind, bool skip)
    {
        using var folder = new TempFolder();
        var spec = new TinyTranscoderSpec { Kind = kind, Skip = skip, Seed = 21 };
        using var native = TranscoderLoader.LoadLocal(WriteSet(folder, spec), new TranscoderLoadOptions { LazyDecoders = false });
        using var google = TranscoderLoader.LoadLocal(WriteSet(folder, spec with { Format = TinyTranscoderFormat.GemmaScope2 }), new TranscoderLoadOptions());
        Assert.Equal(native.IsCrossLayer, google.IsCrossLayer);
        manual_seed(4);
        using var reads = randn(5, 64);
        long[] features = [0, 7, google.DTranscoder - 1];
        for (int l = 0; l < native.NLayers; l++)
        {
            using var scope = NewDisposeScope();
            Assert.True(native.Encode(l, reads).allclose(google.Encode(l, reads), rtol: 1e-5, atol: 1e-6), $"activations of layer {l}");
            Assert.True(native.DecoderRows(l, features).allclose(google.DecoderRows(l, features), rtol: 0, atol: 0), $"decoder rows of layer {l}");
            Assert.True(native.DecoderBias(l).allclose(google.DecoderBias(l), rtol: 0, atol: 0));
        }
        // Google's affine skip is applied (x·A), also for a CLT — unlike a W_skip_i in circuit-tracer's CLT files.
        Assert.Equal(skip, google.HasSkip);
        if (skip && kind == TranscoderKind.PerLayer)
            Assert.True(native.Skip(1, reads)!.allclose(google.Skip(1, reads)!, rtol: 1e-5, atol: 1e-6));
    }

    [Theory]
    [InlineData(TranscoderKind.PerLayer)]
    [InlineData(TranscoderKind.CrossLayer)]
    public void The_config_yaml_we_write_carries_what_circuit_tracers_hub_loader_reads(TranscoderKind kind)
    {
        using var folder = new TempFolder();
        string path = WriteSet(folder, new TinyTranscoderSpec { Kind = kind });
        string yaml = File.ReadAllText(path);
        // load_transcoders reads config["scan"], and for a CLT config["repo_id"].
        foreach (var key in new[] { "model_name:", "model_kind:", "feature_input_hook:", "feature_output_hook:", "scan:", "repo_id:" })
            Assert.Contains("\n" + key, "\n" + yaml);
        var config = TranscoderSetConfig.Load(path);
        Assert.Equal(kind == TranscoderKind.CrossLayer ? "tiny/gemma2-clt" : "tiny/gemma2-plt", config.Scan);
        Assert.Equal(config.Scan, config.RepoId);
    }

    [Fact]
    public void A_local_model_is_named_by_the_id_it_was_saved_from_not_its_folder()
    {
        using var folder = new TempFolder();
        TinyCheckpoints.WriteModel(folder["model"], new TinyModelSpec { Architecture = ModelArchitecture.Llama });
        Assert.Equal("tiny/llama", LocalModelName.Of(folder["model"]));
        Assert.Equal("llama", NeuronpediaIds.ScanFor(LocalModelName.Of(folder["model"])));

        // Without _name_or_path: the model_name of a local transcoder config, then the folder.
        string bare = folder["bare"];
        Directory.CreateDirectory(bare);
        File.WriteAllText(Path.Combine(bare, "config.json"), "{\"model_type\": \"llama\"}");
        string set = folder["set/config.yaml"];
        Directory.CreateDirectory(folder["set"]);
        File.WriteAllText(set, "model_name: google/gemma-2-2b\nmodel_kind: transcoder_set\nfeature_input_hook: hook_resid_mid\nfeature_output_hook: hook_mlp_out\n");
        Assert.Equal("google/gemma-2-2b", LocalModelName.Of(bare, set));
        Assert.Equal("bare", LocalModelName.Of(bare));
    }
}
