"""Reference fixtures from Hugging Face transformers, for the parity tests (HuggingFaceParityTests).

Needs PyTorch and transformers (4.4x-5.x); the CPU is enough. scripts/gpu-check.sh runs it
where both are installed:

    python3 tools/hf-parity/make_fixtures.py OUT_DIR

For each architecture it writes OUT_DIR/<name>/: the random model exactly as transformers saves
it (config.json + model.safetensors) and reference.json with the input ids, the logits of the
last two positions (final soft cap included) and, per layer, the tensors at every point a
transcoder may read or write, for the same two positions:

    resid_mid       hook_resid_mid: residual after attention, before the pre-MLP norm
    ln2_normalized  ln2.hook_normalized: that residual divided by its RMS, before the norm weight
    mlp_in          mlp.hook_in: the MLP's input
    mlp_out_raw     mlp.hook_out: the down projection's output
    mlp_out         hook_mlp_out: what the MLP sublayer adds (after Gemma's post-MLP norm)

The test loads each folder with the project's own loader and compares every tensor.
"""
import json
import os
import sys

import torch
import transformers as hf

INPUT_IDS = [2, 17, 101, 5, 66, 9, 200, 31, 8, 140, 77, 3]

COMMON = dict(vocab_size=256, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
              bos_token_id=2, eos_token_id=1, tie_word_embeddings=True)

# name -> (model class, config class, settings, name of the norm in front of the MLP, post-MLP norm or None)
ARCHITECTURES = {
    "gemma2": ("Gemma2ForCausalLM", "Gemma2Config", dict(
        COMMON, intermediate_size=128, num_hidden_layers=4, head_dim=16, query_pre_attn_scalar=16,
        sliding_window=4, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, rope_theta=10000.0,
        max_position_embeddings=128, pad_token_id=0),
        "pre_feedforward_layernorm", "post_feedforward_layernorm"),
    # Every other layer global (sliding_window_pattern for older transformers, layer_types for newer).
    "gemma3": ("Gemma3ForCausalLM", "Gemma3TextConfig", dict(
        COMMON, intermediate_size=128, num_hidden_layers=4, head_dim=16, query_pre_attn_scalar=16,
        sliding_window=4, sliding_window_pattern=2,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        rope_theta=1000000.0, rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 8.0},
        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, max_position_embeddings=128, pad_token_id=0),
        "pre_feedforward_layernorm", "post_feedforward_layernorm"),
    "llama3": ("LlamaForCausalLM", "LlamaConfig", dict(
        COMMON, intermediate_size=160, num_hidden_layers=3, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        max_position_embeddings=131072),
        "post_attention_layernorm", None),
    "qwen3": ("Qwen3ForCausalLM", "Qwen3Config", dict(
        COMMON, intermediate_size=160, num_hidden_layers=3, head_dim=16, rms_norm_eps=1e-6,
        rope_theta=1000000.0, max_position_embeddings=128),
        "post_attention_layernorm", None),
}


def build(model_class, config_class, settings):
    config = getattr(hf, config_class)(**settings)
    cls = getattr(hf, model_class)
    try:
        model = cls._from_config(config, attn_implementation="eager")
    except TypeError:  # older transformers
        config._attn_implementation = "eager"
        model = cls(config)
    model.eval()
    with torch.no_grad():  # weights large enough that a wrong equation shows
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def record_points(model, mlp_norm_name, post_norm_name):
    """Forward hooks that keep each layer's transcoder read and write points."""
    points, handles = {}, []
    for i, layer in enumerate(model.model.layers):
        def before_mlp_norm(module, args, i=i):
            x = args[0]
            eps = getattr(module, "eps", getattr(module, "variance_epsilon", None))
            xf = x.float()
            points[f"{i}.resid_mid"] = x
            points[f"{i}.ln2_normalized"] = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
        handles.append(getattr(layer, mlp_norm_name).register_forward_pre_hook(before_mlp_norm))

        def around_mlp(module, args, out, i=i):
            points[f"{i}.mlp_in"] = args[0]
            points[f"{i}.mlp_out_raw"] = out
            if post_norm_name is None:
                points[f"{i}.mlp_out"] = out
        handles.append(layer.mlp.register_forward_hook(around_mlp))

        if post_norm_name is not None:
            def after_post_norm(module, args, out, i=i):
                points[f"{i}.mlp_out"] = out
            handles.append(getattr(layer, post_norm_name).register_forward_hook(after_post_norm))
    return points, handles


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "hf-fixtures"
    only = set(sys.argv[2:])
    torch.manual_seed(0)
    for name, (model_class, config_class, settings, mlp_norm, post_norm) in ARCHITECTURES.items():
        if only and name not in only:
            continue
        model = build(model_class, config_class, settings)
        folder = os.path.join(out, name)
        model.save_pretrained(folder, safe_serialization=True)
        points, handles = record_points(model, mlp_norm, post_norm)
        with torch.no_grad():
            logits = model(torch.tensor([INPUT_IDS])).logits[0]
        for h in handles:
            h.remove()
        reference = {
            "transformers": hf.__version__,
            "torch": torch.__version__,
            "input_ids": INPUT_IDS,
            "logits_last2": logits[-2:].float().tolist(),
            "points_last2": {k: v[0, -2:].float().tolist() for k, v in sorted(points.items())},
        }
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump(reference, f)
        print(f"{name}: {len(points)} points, logits[-1][:3] = {[round(x, 5) for x in logits[-1][:3].tolist()]}")


if __name__ == "__main__":
    main()
