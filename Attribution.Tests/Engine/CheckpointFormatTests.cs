namespace Attribution.Tests.Engine;

using System.IO.Compression;
using Attribution.Checkpoints;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>Transcoder checkpoints written in each real layout load back to the same numbers (issue #4).</summary>
public class CheckpointFormatTests
{
    private static (TranscoderSet Set, TempFolder Folder) Write(TinyTranscoderSpec spec, TranscoderLoadOptions options, TempFolder? shared = null)
    {
        var folder = shared ?? new TempFolder();
        if (!Directory.Exists(folder["model"])) TinyCheckpoints.WriteModel(folder["model"], new TinyModelSpec { Architecture = ModelArchitecture.Gemma2, Seed = 2 });
        string config = TinyCheckpoints.WriteTranscoders(folder[$"tc-{spec.Format}-{spec.Kind}-{spec.StoreDType}"], folder["model"], spec);
        return (TranscoderLoader.LoadLocal(config, options), folder);
    }

    private static void AssertSameTranscoders(TranscoderSet a, TranscoderSet b, double tolerance = 1e-6)
    {
        Assert.Equal(a.NLayers, b.NLayers);
        Assert.Equal(a.DTranscoder, b.DTranscoder);
        manual_seed(1);
        using var x = randn(5, a.DModel);
        long[] features = [0, 3, 17, a.DTranscoder - 1];
        for (int l = 0; l < a.NLayers; l++)
        {
            using var scope = NewDisposeScope();
            Assert.True(a.Encode(l, x).allclose(b.Encode(l, x), rtol: tolerance, atol: tolerance), $"activations of layer {l} differ");
            Assert.True(a.DecoderRows(l, features).allclose(b.DecoderRows(l, features), rtol: tolerance, atol: tolerance), $"decoders of layer {l} differ");
            Assert.True(a.EncoderRows(l, features).allclose(b.EncoderRows(l, features), rtol: tolerance, atol: tolerance), $"encoder rows of layer {l} differ");
            Assert.True(a.DecoderBias(l).allclose(b.DecoderBias(l)));
        }
    }

    [Fact]
    public void GemmaScope_npz_with_a_transposed_encoder_equals_the_safetensors_layout()
    {
        var spec = new TinyTranscoderSpec { Seed = 12 };
        var (fromSafetensors, folder) = Write(spec, new TranscoderLoadOptions());
        using (folder)
        using (fromSafetensors)
        {
            var (fromNpz, _) = Write(spec with { Format = TinyTranscoderFormat.GemmaScopeNpz }, new TranscoderLoadOptions(), folder);
            using (fromNpz)
            {
                Assert.True(File.Exists(folder[$"tc-GemmaScopeNpz-PerLayer-Float32/layer_0/params.npz"]));
                AssertSameTranscoders(fromSafetensors, fromNpz);
            }
        }
    }

    [Theory]
    [InlineData(TinyTranscoderFormat.Safetensors, TranscoderKind.PerLayer)]
    [InlineData(TinyTranscoderFormat.GemmaScopeNpz, TranscoderKind.PerLayer)]
    [InlineData(TinyTranscoderFormat.Safetensors, TranscoderKind.CrossLayer)]
    public void Lazy_encoders_and_decoders_read_the_same_numbers_as_loaded_ones(TinyTranscoderFormat format, TranscoderKind kind)
    {
        var spec = new TinyTranscoderSpec { Seed = 3, Format = format, Kind = kind, Skip = true };
        var (eager, folder) = Write(spec, new TranscoderLoadOptions { LazyDecoders = false });
        using (folder)
        using (eager)
        {
            string config = Directory.GetFiles(folder.Path, "config.yaml", SearchOption.AllDirectories).Single();
            using var lazy = TranscoderLoader.LoadLocal(config, new TranscoderLoadOptions { LazyDecoders = true, LazyEncoders = true });
            AssertSameTranscoders(eager, lazy);
            Assert.Equal(kind == TranscoderKind.CrossLayer, lazy.IsCrossLayer);
            Assert.Equal(kind == TranscoderKind.PerLayer, lazy.HasSkip);   // a CLT's W_skip_i is not read (circuit-tracer's load_clt)
        }
    }

    [Fact]
    public void Bfloat16_transcoders_load_as_rounded_float32()
    {
        var spec = new TinyTranscoderSpec { Seed = 4, Kind = TranscoderKind.CrossLayer };
        var (full, folder) = Write(spec, new TranscoderLoadOptions());
        using (folder)
        using (full)
        {
            var (rounded, _) = Write(spec with { StoreDType = ScalarType.BFloat16 }, new TranscoderLoadOptions(), folder);
            using (rounded)
            {
                using var rows = rounded.DecoderRows(0, [1, 2]);
                Assert.Equal(ScalarType.Float32, rows.dtype);
                using var expected = full.DecoderRows(0, [1, 2]);
                Assert.True(rows.allclose(expected, rtol: 1e-2, atol: 1e-3), "bf16 keeps ~3 significant digits");
                Assert.False(rows.allclose(expected, rtol: 0, atol: 0));
            }
        }
    }

    [Fact]
    public void Npz_members_stored_compressed_are_read_whole()
    {
        using var folder = new TempFolder();
        manual_seed(5);
        using var matrix = randn(7, 3);
        string path = folder["compressed.npz"];
        NpzFormat.Write(folder["stored.npz"], new Dictionary<string, Tensor> { ["m"] = matrix });
        // Re-pack the .npy member with deflate, as numpy.savez_compressed does.
        using (var source = ZipFile.OpenRead(folder["stored.npz"]))
        using (var target = ZipFile.Open(path, ZipArchiveMode.Create))
        using (var input = source.Entries[0].Open())
        using (var output = target.CreateEntry("m.npy", CompressionLevel.Optimal).Open())
            input.CopyTo(output);

        var tensors = NpzFormat.ReadHeader(path);
        Assert.Equal(new long[] { 7, 3 }, tensors["m"].Shape);
        using var whole = tensors["m"].Load();
        using var rows = tensors["m"].LoadRows([5, 1]);
        Assert.True(whole.allclose(matrix, rtol: 0, atol: 0));
        Assert.True(rows.allclose(matrix.index_select(0, tensor(new long[] { 5, 1 })), rtol: 0, atol: 0));
    }

    [Fact]
    public void Safetensors_rows_are_read_in_any_order_with_repeats()
    {
        using var folder = new TempFolder();
        using var matrix = arange(0, 40, ScalarType.Float32).view(10, 4);
        SafetensorsFormat.Write(folder["m.safetensors"], new Dictionary<string, Tensor> { ["m"] = matrix });
        var stored = SafetensorsFormat.ReadHeader(folder["m.safetensors"])["m"];
        using var rows = stored.LoadRows([9, 2, 3, 4, 2]);
        using var expected = matrix.index_select(0, tensor(new long[] { 9, 2, 3, 4, 2 }));
        Assert.True(rows.allclose(expected, rtol: 0, atol: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => stored.LoadRows([10]));
    }

    [Fact]
    public void Transcoder_config_yaml_reads_both_circuit_tracer_layouts()
    {
        var plain = TranscoderSetConfig.Parse("""
            model_kind: transcoder_set
            feature_input_hook: "mlp.hook_in"
            feature_output_hook: "mlp.hook_out"
            activation: topk
            k: 64
            transcoders:
              - "hf://mwhanna/qwen3-4b-transcoders/layer_0.safetensors"
              - "layer_1.safetensors"
            """, "/base");
        Assert.Equal(ReadHook.MlpIn, plain.InputHook);
        Assert.Equal(WriteHook.MlpHookOut, plain.OutputHook);
        Assert.Equal(64, plain.Activation!.K);
        Assert.Equal(2, plain.Transcoders.Count);

        var legacy = TranscoderSetConfig.Parse("""
            model_name: "google/gemma-2-2b"
            feature_input_hook: "ln2.hook_normalized"
            feature_output_hook: 'hook_mlp_out'
            transcoders:
              - id: "b"
                layer: 1
                filepath: "second.npz"
              - id: "a"
                layer: 0
                filepath: "first.npz"
            """, "/base");
        Assert.Equal(["first.npz", "second.npz"], legacy.Transcoders);
        Assert.Equal(TranscoderKind.PerLayer, legacy.Kind);

        var clt = TranscoderSetConfig.Parse("model_kind: cross_layer_transcoder\nfeature_input_hook: hook_resid_mid\nfeature_output_hook: hook_mlp_out\n", "/base");
        Assert.Equal(TranscoderKind.CrossLayer, clt.Kind);
        var error = Assert.Throws<InvalidDataException>(() => TranscoderSetConfig.Parse("feature_input_hook: blocks.0.hook_x\nfeature_output_hook: hook_mlp_out\n", "/base"));
        Assert.Contains("blocks.0.hook_x", error.Message, StringComparison.Ordinal);
    }
}
