namespace Attribution.Tests.Engine;

using Attribution.Checkpoints;
using Attribution.Graphs;
using Attribution.Models;
using Attribution.Synthetic;
using Attribution.Tests.Support;
using Attribution.Tracing;
using Attribution.Transcoders;
using static TorchSharp.torch;

/// <summary>
/// QK attributions find induction where it was built (docs/algorithm.md §11). A two-layer Llama is
/// written by hand: layer 0's head 0 attends to the previous token (a constant direction rotated
/// so its score peaks one position back) and copies its token into a "moved" subspace; layer 0's
/// MLP turns that into a "previous token is t" subspace, which one transcoder feature per token
/// reads and writes; layer 1's head 0 matches the current token (query) against "previous token"
/// (key) on rotary pairs that barely turn. On a random sequence repeated, that head attends from a
/// token's second occurrence to the position after its first, and the score's largest pair must
/// be the current token's embedding (query side) with the previous-token feature for that same
/// token at the key's position (key side).
/// </summary>
public class InductionQkTests
{
    private const int Vocab = 12, DModel = 64, HeadDim = 32, Bos = 2, Const = 63;
    private const int Moved = 16, Previous = 32;                       // subspaces: tokens 0..11, moved 16..27, previous 32..43
    private const double PreviousTokenGain = 35, MatchGain = 60, Gate = 10, DownScale = 0.01;
    private static readonly int[] MatchDims = [12, 13, 14, 15, 28, 29, 30, 31];   // rotary pairs 12–15: they turn < 1e-4 rad per position

    [Fact]
    public void The_induction_heads_top_pair_is_the_current_token_with_the_previous_token_feature_for_it()
    {
        using var folder = new TempFolder();
        var spec = new TinyModelSpec { Architecture = ModelArchitecture.Llama, VocabSize = Vocab, DModel = DModel, DMlp = 16, NLayers = 2, NHeads = 2, NKvHeads = 2, HeadDim = HeadDim, BosTokenId = Bos };
        TinyCheckpoints.WriteModel(folder["model"], spec);   // the config; the weights are replaced below
        var config = ModelConfig.Load(folder["model"]);
        SafetensorsFormat.Write(Path.Combine(folder["model"], CheckpointIndex.SingleFile), Weights(config), new Dictionary<string, string> { ["format"] = "pt" });
        string transcoders = TinyCheckpoints.SaveTranscoders(folder["transcoders"], config, TranscoderKind.PerLayer, TinyTranscoderFormat.Safetensors, null,
            ReadHook.ResidMid, WriteHook.MlpHookOut, Transcoders(), ScalarType.Float32);
        using var replacement = new ReplacementModel(DecoderModel.Load(folder["model"], TinyReplacement.Device, ScalarType.Float64),
            TranscoderLoader.LoadLocal(transcoders, new TranscoderLoadOptions { DType = ScalarType.Float64, Device = TinyReplacement.Device }));

        var random = new Random(5);
        int[] half = [.. Enumerable.Range(3, 8).OrderBy(_ => random.Next()).Take(6)];
        int[] tokens = [Bos, .. half, .. half];
        using var prompt = PreparedPrompt.Prepare(replacement, tokens);
        var layout = new NodeLayout(prompt.Active.Count, replacement.NLayers, prompt.NPos, LogitCount: 0);
        int[] everyNode = [.. Enumerable.Range(0, layout.TokenStart + prompt.NPos)];

        for (int i = 1; i < half.Length; i++)
        {
            int query = 1 + half.Length + i - 1, key = i + 1;   // second occurrence of half[i - 1]; the position after its first
            Assert.Equal(tokens[query], tokens[key - 1]);
            // The head provably does induction here: nearly all its attention goes to that key.
            double attention = prompt.Clean.Patterns[1][0, 0, query, key].to(ScalarType.Float64).item<double>();
            Assert.True(attention > 0.9, $"head 1.0 at position {query} gives the key {key} only {attention:F3}");

            using var d = QkAttributions.Compute(replacement, prompt, everyNode, [new QkScore(1, 0, query, key)])[0];
            var (q, k, term) = d.TopPairs(1)[0];
            Assert.Equal(layout.TokenStart + query, d.Sources[q]);   // the current token's embedding
            var keyNode = layout.Locate(d.Sources[k]);
            Assert.Equal(NodeKind.Feature, keyNode.Kind);
            int feature = d.Sources[k];
            Assert.Equal((0L, (long)key, (long)tokens[query]), (prompt.Active.Layers[feature], prompt.Active.Positions[feature], prompt.Active.Indices[feature]));
            Assert.True(term > 0.5 * d.Score, $"the top pair carries {term:F2} of a score of {d.Score:F2}");
        }
    }

    private static Dictionary<string, Tensor> Weights(ModelConfig config)
    {
        var w = TinyCheckpoints.WeightShapes(new TinyModelSpec { Architecture = ModelArchitecture.Llama, VocabSize = Vocab, DModel = DModel, DMlp = 16, NLayers = 2, NHeads = 2, NKvHeads = 2, HeadDim = HeadDim })
            .ToDictionary(x => x.Name, x => zeros(x.Shape, ScalarType.Float32));
        foreach (var norm in w.Keys.Where(n => n.EndsWith("norm.weight", StringComparison.Ordinal))) w[norm].fill_(1);
        var embed = w["model.embed_tokens.weight"];
        for (int t = 0; t < Vocab; t++)
        {
            embed[t, t] = 1;
            embed[t, Const] = 1;
        }

        // Layer 0, head 0: the constant direction on rotary pair 1, the query turned back by one position's angle.
        double omega = Math.Pow(config.RopeTheta, -2.0 / HeadDim);
        string l0 = "model.layers.0.";
        w[l0 + "self_attn.q_proj.weight"][1, Const] = PreviousTokenGain * Math.Cos(-omega);
        w[l0 + "self_attn.q_proj.weight"][1 + HeadDim / 2, Const] = PreviousTokenGain * Math.Sin(-omega);
        w[l0 + "self_attn.k_proj.weight"][1, Const] = 1;
        for (int t = 0; t < Vocab; t++)
        {
            w[l0 + "self_attn.v_proj.weight"][t, t] = 1;            // values: the token
            w[l0 + "self_attn.o_proj.weight"][Moved + t, t] = 1;    // written to the moved subspace
            w[l0 + "mlp.gate_proj.weight"][t, Const] = (float)Gate; // an open gate: silu(≈14) ≈ 14
            w[l0 + "mlp.up_proj.weight"][t, Moved + t] = 1;
            w[l0 + "mlp.down_proj.weight"][Previous + t, t] = (float)DownScale;
        }

        // Layer 1, head 0: the current token (query) against "previous token is" (key), one slowly turning dimension per token.
        string l1 = "model.layers.1.";
        for (int t = 3; t < 3 + MatchDims.Length; t++)
        {
            w[l1 + "self_attn.q_proj.weight"][MatchDims[t - 3], t] = (float)MatchGain;
            w[l1 + "self_attn.k_proj.weight"][MatchDims[t - 3], Previous + t] = 1;
        }
        return w;
    }

    /// <summary>
    /// Layer 0: feature t reads the moved token t at resid_mid and writes what the MLP writes for it
    /// (its decoder is the MLP's output per unit of that read: the residual's norm is the same at
    /// every position, so one vector serves all). Layer 1 has no MLP and no firing features.
    /// </summary>
    private static List<LayerTranscoder> Transcoders()
    {
        const int Width = 16;
        double moved = Math.Sqrt(DModel / 2.0);                         // x̂ of a one-hot token plus the constant, as layer 0's value reads it
        double rms = Math.Sqrt((1 + 1 + (moved * moved)) / DModel);      // resid_mid: token, constant, moved token
        double gate = Gate / rms;
        double decoder = gate / (1 + Math.Exp(-gate)) * DownScale / rms;
        var encoder = zeros(Width, DModel);
        var decoderWeights = zeros(Width, DModel);
        var thresholds = full(Width, 1e6f);
        for (int t = 0; t < Vocab; t++)
        {
            encoder[t, Moved + t] = 1;
            decoderWeights[t, Previous + t] = (float)decoder;
            thresholds[t] = 1;
        }
        return
        [
            new LayerTranscoder(encoder, zeros(Width), decoderWeights, zeros(DModel), thresholds, null),
            new LayerTranscoder(zeros(Width, DModel), zeros(Width), zeros(Width, DModel), zeros(DModel), full(Width, 1e6f), null),
        ];
    }
}
