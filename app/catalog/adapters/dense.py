"""Adapters for dense decoder families: Llama, Mistral, Qwen2/3, Gemma 1/2/3 (text), Phi-3.

Each reads the keys its transformers class reads (models/<type>/modeling_<type>.py) and states the
layout that class builds (which projections carry biases, fused tensors, extra norms).
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import (
    Adapted,
    all_layers_window,
    decoder,
    dtype,
    every_nth_full,
    qwen_window,
    window,
)
from app.catalog.config import Cfg


def _finish(c: Cfg, lm: dict[str, Any], types: list[str], root: Cfg | None = None) -> Adapted:
    window(c, lm, types)
    lm["dtype"] = dtype(c, root)
    return Adapted(lm, c.sources)


def _rope_freqs(c: Cfg, lm: dict[str, Any]) -> None:
    """llama.cpp's convert_hf_to_gguf writes an F32 rope_freqs tensor (head_dim / 2) for llama3 rope."""
    scaling = c.data.get("rope_scaling") or c.data.get("rope_parameters")
    if isinstance(scaling, dict) and scaling.get("rope_type", scaling.get("type")) == "llama3":
        lm["gguf_rope_freqs"] = lm["head_dim"] // 2
        c.note("gguf_rope_freqs", "config.json rope_scaling.rope_type llama3 (llama.cpp convert_hf_to_gguf "
                                  "LlamaModel writes rope_freqs, head_dim / 2 values)")


def llama(c: Cfg) -> Adapted:
    """LlamaForCausalLM: q/k/v/o biased by attention_bias, gate/up/down by mlp_bias."""
    lm = decoder(c, tied_default=False)
    attn_bias = c.bool("qkv_bias", "attention_bias", False)
    lm["qkv_bias"] = attn_bias
    lm["linear_bias"] = c.bool("linear_bias", "mlp_bias", False)
    if attn_bias != lm["linear_bias"]:
        lm["output_bias"] = attn_bias
        c.note("output_bias", "config.json attention_bias")
    _rope_freqs(c, lm)
    return _finish(c, lm, all_layers_window(c, lm["layers"]) if c.has("sliding_window") else ["full"] * lm["layers"])


def mistral(c: Cfg) -> Adapted:
    """MistralForCausalLM: Llama's layout without biases; `sliding_window` (if set) on every layer."""
    lm = decoder(c, tied_default=False)
    return _finish(c, lm, all_layers_window(c, lm["layers"]))


def qwen2(c: Cfg) -> Adapted:
    """Qwen2ForCausalLM: q/k/v carry biases, o and the MLP do not."""
    lm = decoder(c, tied_default=False)
    lm["qkv_bias"] = True
    c.note("qkv_bias", "transformers Qwen2Attention (q_proj/k_proj/v_proj bias=True, o_proj bias=False)")
    return _finish(c, lm, qwen_window(c, lm["layers"]))


def qwen3(c: Cfg) -> Adapted:
    """Qwen3ForCausalLM: no biases (attention_bias), per-head q_norm/k_norm, explicit head_dim."""
    c.with_class_defaults("Qwen3Config", {"head_dim": 128})
    lm = decoder(c, tied_default=False)
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["qk_norm"] = True
    c.note("qk_norm", "transformers Qwen3Attention (q_norm, k_norm: RMSNorm(head_dim))")
    return _finish(c, lm, qwen_window(c, lm["layers"]))


def _gemma_common(c: Cfg, norms: int) -> dict[str, Any]:
    if not c.class_defaults:
        c.with_class_defaults("GemmaConfig / Gemma2Config", {"head_dim": 256})
    lm = decoder(c, tied_default=True)
    lm["ffn_kind"] = "geglu"
    c.note("ffn_kind", "transformers GemmaMLP (gate_proj, up_proj, down_proj; gelu_pytorch_tanh)")
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["norms_per_layer"] = norms
    if norms == 4:
        c.note("norms_per_layer", "transformers Gemma2DecoderLayer (input, post_attention, pre_feedforward, "
                                  "post_feedforward layernorms)")
    return lm


def gemma(c: Cfg) -> Adapted:
    """GemmaForCausalLM: GeGLU MLP, tied embeddings, embeddings scaled by sqrt(hidden) (no parameter)."""
    lm = _gemma_common(c, 2)
    return _finish(c, lm, ["full"] * lm["layers"])


def gemma2(c: Cfg) -> Adapted:
    """Gemma2ForCausalLM: four norms per layer; sliding and full attention alternate (even layers slide)."""
    lm = _gemma_common(c, 4)
    types = every_nth_full(c, lm["layers"], 2, "transformers Gemma2Config: layer i slides when (i + 1) % 2")
    return _finish(c, lm, types)


# transformers models/gemma3/configuration_gemma3.py Gemma3TextConfig defaults: released Gemma 3 configs
# (the multimodal ones' text_config) leave most of these keys out and rely on them
GEMMA3_TEXT_DEFAULTS = {"vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216,
                        "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                        "head_dim": 256, "max_position_embeddings": 131_072, "sliding_window": 4096}


def gemma3_text(c: Cfg, root: Cfg | None = None) -> Adapted:
    """Gemma3ForCausalLM: Gemma 2's layout plus q/k norms; five sliding layers per full one."""
    c.with_class_defaults("Gemma3TextConfig", GEMMA3_TEXT_DEFAULTS)
    lm = _gemma_common(c, 4)
    lm["qk_norm"] = True
    c.note("qk_norm", "transformers Gemma3Attention (q_norm, k_norm: Gemma3RMSNorm(head_dim))")
    n = c.int("layer_types", "sliding_window_pattern", default=6, high=1024)
    types = every_nth_full(c, lm["layers"], n, f"transformers Gemma3TextConfig: layer i slides when (i + 1) % {n}")
    return _finish(c, lm, types, root)


def phi3(c: Cfg) -> Adapted:
    """Phi3ForCausalLM: fused qkv_proj and gate_up_proj, no biases; sliding_window on every layer."""
    lm = decoder(c, tied_default=False)
    lm["fused_qkv"] = lm["fused_gate_up"] = True
    c.note("fused_qkv", "transformers Phi3Attention (qkv_proj, one fused linear)")
    c.note("fused_gate_up", "transformers Phi3MLP (gate_up_proj, one [2 x intermediate_size] linear)")
    return _finish(c, lm, all_layers_window(c, lm["layers"]))


def olmo3(c: Cfg) -> Adapted:
    """Olmo3ForCausalLM: post-norms only (post_attention, post_feedforward) and q_norm/k_norm over all heads.

    transformers models/olmo3/modeling_olmo3.py: Olmo3Attention q_norm = RMSNorm(heads x head_dim), k_norm =
    RMSNorm(kv_heads x head_dim); the decoder layer has no input norm, so two norms per layer as Llama's.
    """
    lm = decoder(c, tied_default=False)
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["qk_norm"] = lm["qk_norm_full"] = True
    c.note("qk_norm", "transformers Olmo3Attention (q_norm, k_norm over all heads)")
    c.note("norms_per_layer", "transformers Olmo3DecoderLayer (post_attention_layernorm, post_feedforward_layernorm)")
    types = every_nth_full(c, lm["layers"], 4, "transformers Olmo3Config: layer i slides when (i + 1) % 4")
    return _finish(c, lm, types)
