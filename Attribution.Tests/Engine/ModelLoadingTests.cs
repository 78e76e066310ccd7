namespace Attribution.Tests.Engine;

using System.Text.Json;
using System.Text.Json.Nodes;
using Attribution.Checkpoints;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using static TorchSharp.torch;

/// <summary>Models load from the real Hugging Face layouts: single file, shards, float32 and bfloat16.</summary>
public class ModelLoadingTests
{
    private static readonly long[] Prompt = [2, 17, 101, 5, 66, 9, 200, 31];

    private static Tensor Logits(string folder, ScalarType dtype = ScalarType.Float32)
    {
        using var model = DecoderModel.Load(folder, CPU, dtype);
        using var ids = tensor(Prompt).unsqueeze(0);
        using var noGrad = no_grad();
        return model.ForwardLogits(ids).to(ScalarType.Float32);
    }

    [Theory]
    [InlineData(ModelArchitecture.Gemma2)]
    [InlineData(ModelArchitecture.Llama)]
    [InlineData(ModelArchitecture.Qwen3)]
    public void Bfloat16_checkpoint_gives_the_float32_logits_within_bfloat16_tolerance(ModelArchitecture architecture)
    {
        using var folder = new TempFolder();
        var spec = new TinyModelSpec { Architecture = architecture, Seed = 42 };
        TinyCheckpoints.WriteModel(folder["f32"], spec);
        TinyCheckpoints.WriteModel(folder["bf16"], spec with { StoreDType = ScalarType.BFloat16 });

        using var full = Logits(folder["f32"]);
        using var rounded = Logits(folder["bf16"]);
        // Rounding the weights to 8 mantissa bits moves logits by about 1% of their spread.
        double spread = full.std().item<float>();
        double difference = (full - rounded).abs().max().item<float>();
        Assert.True(difference < 0.1 * spread, $"bf16 logits differ by {difference} (logit std {spread})");
        Assert.True(difference > 0, "bf16 weights should round differently from f32");
        var agreeingTopTokens = full[0].argmax(-1).eq(rounded[0].argmax(-1)).sum().item<long>();
        Assert.True(agreeingTopTokens >= Prompt.Length - 1, "the most likely next token should rarely change");
    }

    [Fact]
    public void Sharded_checkpoint_equals_the_single_file()
    {
        using var folder = new TempFolder();
        var spec = new TinyModelSpec { Architecture = ModelArchitecture.Llama, Seed = 4 };
        TinyCheckpoints.WriteModel(folder["single"], spec);
        TinyCheckpoints.WriteModel(folder["sharded"], spec with { Sharded = true });
        Assert.False(File.Exists(folder["sharded/model.safetensors"]));
        Assert.True(File.Exists(folder["sharded/model.safetensors.index.json"]));

        using var single = Logits(folder["single"]);
        using var sharded = Logits(folder["sharded"]);
        Assert.True(single.allclose(sharded, rtol: 0, atol: 0), "shards must load the same weights");
    }

    [Fact]
    public void Config_parsing_reads_rope_parameters_and_gemma_conventions()
    {
        var llama = ModelConfig.Parse(JsonDocument.Parse("""
            {"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
             "num_attention_heads": 2, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
             "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "eos_token_id": [1, 9]}
            """).RootElement, "test");
        Assert.Equal(500000.0, llama.RopeTheta);
        Assert.Equal(8.0, llama.RopeScaling!.Factor);
        Assert.Equal(4, llama.HeadDim);
        Assert.Equal(2, llama.NKvHeads);
        Assert.Equal([1, 9], llama.EosTokenIds);

        var gemma = ModelConfig.Parse(JsonDocument.Parse("""
            {"model_type": "gemma2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
             "num_attention_heads": 2, "head_dim": 4, "query_pre_attn_scalar": 256, "sliding_window": 4096,
             "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0}
            """).RootElement, "test");
        Assert.Equal(4096, gemma.WindowOfLayer(0));
        Assert.Null(gemma.WindowOfLayer(1));
        Assert.Equal(1 / 16.0, gemma.AttentionScale, 10);
        Assert.True(gemma.NormWeightIsOffset && gemma.ScalesEmbeddings && gemma.HasSublayerOutputNorms);
    }

    [Fact]
    public void Gemma3_configs_read_their_layer_pattern_two_rotary_bases_and_nested_text_config()
    {
        // The multimodal -it layout: settings under text_config, Gemma3TextConfig's defaults for what it leaves out.
        var it = ModelConfig.Parse(JsonDocument.Parse("""
            {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "eos_token_id": [1, 106],
             "text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34,
               "sliding_window": 1024, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}}
            """).RootElement, "test");
        Assert.Equal(ModelArchitecture.Gemma3, it.Architecture);
        Assert.Equal((262_208, 8, 4, 256), (it.VocabSize, it.NHeads, it.NKvHeads, it.HeadDim));
        Assert.Equal(1 / 16.0, it.AttentionScale, 10);
        Assert.Equal([1, 106], it.EosTokenIds);
        var global = Enumerable.Range(0, 34).Where(l => it.WindowOfLayer(l) is null).ToArray();
        Assert.Equal([5, 11, 17, 23, 29], global);
        Assert.Equal(1024, it.WindowOfLayer(0));
        Assert.Equal((1_000_000.0, true), it.RopeOfLayer(5));
        Assert.Equal((10_000.0, false), it.RopeOfLayer(0));
        Assert.Equal(8.0, it.RopeLinearFactor);
        Assert.Null(it.FinalLogitSoftcap);
        Assert.True(it.HasQkNorm && it.NormWeightIsOffset && it.ScalesEmbeddings && it.HasSublayerOutputNorms);

        // Newer transformers: layer_types and rope_parameters keyed by layer type.
        var text = ModelConfig.Parse(JsonDocument.Parse("""
            {"model_type": "gemma3_text", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 3,
             "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "sliding_window": 2,
             "layer_types": ["full_attention", "sliding_attention", "full_attention"],
             "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000.0},
                                 "sliding_attention": {"rope_type": "default", "rope_theta": 20000.0}}}
            """).RootElement, "test");
        Assert.Equal([null, 2, null], Enumerable.Range(0, 3).Select(text.WindowOfLayer));
        Assert.Equal((500000.0, true), text.RopeOfLayer(0));
        Assert.Equal((20000.0, false), text.RopeOfLayer(1));
        Assert.Equal(4.0, text.RopeLinearFactor);
    }

    [Fact]
    public void A_multimodal_Gemma3_checkpoint_loads_its_language_model_as_the_text_model()
    {
        using var folder = new TempFolder();
        TinyCheckpoints.WriteModel(folder["text"], new TinyModelSpec { Architecture = ModelArchitecture.Gemma3, Seed = 3 });

        // Rewrite it as Gemma3ForConditionalGeneration stores it: language_model.model.* and a nested text_config.
        Directory.CreateDirectory(folder["it"]);
        var weights = SafetensorsFormat.ReadHeader(Path.Combine(folder["text"], CheckpointIndex.SingleFile));
        using (var scope = NewDisposeScope())
        {
            var renamed = weights.ToDictionary(w => "language_model." + w.Key, w => w.Value.Load());
            renamed["vision_tower.vision_model.embeddings.patch_embedding.weight"] = zeros(4, 3);
            SafetensorsFormat.Write(Path.Combine(folder["it"], CheckpointIndex.SingleFile), renamed);
        }
        var textConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(folder["text"], "config.json")))!;
        var itConfig = new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma3ForConditionalGeneration"),
            ["model_type"] = "gemma3",
            ["text_config"] = textConfig,
        };
        File.WriteAllText(Path.Combine(folder["it"], "config.json"), itConfig.ToJsonString());

        using var text = Logits(folder["text"]);
        using var it = Logits(folder["it"]);
        Assert.True(text.allclose(it, rtol: 0, atol: 0), "the same language model");
    }

    [Fact]
    public void Unsupported_model_types_are_named_in_the_error()
    {
        var error = Assert.Throws<NotSupportedException>(() => ModelConfig.Parse(JsonDocument.Parse("""{"model_type": "gpt2"}""").RootElement, "cfg"));
        Assert.Contains("gpt2", error.Message, StringComparison.Ordinal);
    }
}
