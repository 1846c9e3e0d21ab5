"""Adapters for the GLM family: transformers' `glm` and `glm4`, and the remote-code `chatglm` configs."""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, decoder, dtype, no_window, window
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue


def _glm_layout(c: Cfg, lm: dict[str, Any], norms: int) -> Adapted:
    lm["qkv_bias"] = c.bool("qkv_bias", "attention_bias", True)
    lm["fused_gate_up"] = True
    c.note("fused_gate_up", "transformers GlmMLP/Glm4MLP (gate_up_proj, one [2 x intermediate_size] linear)")
    lm["norms_per_layer"] = norms
    if norms == 4:
        c.note("norms_per_layer", "transformers Glm4DecoderLayer (input, post_self_attn, post_attention, "
                                  "post_mlp layernorms)")
    window(c, lm, no_window(c, lm["layers"]))
    lm["dtype"] = dtype(c)
    return Adapted(lm, c.sources)


def glm(c: Cfg) -> Adapted:
    """GlmForCausalLM (GLM-4-9B as converted for transformers): q/k/v biases, fused gate_up, 2 norms."""
    c.with_class_defaults("GlmConfig", {"head_dim": 128})
    return _glm_layout(c, decoder(c, tied_default=False), 2)


def glm4(c: Cfg) -> Adapted:
    """Glm4ForCausalLM (GLM-4-0414, GLM-Z1): GLM's layout with post-attention and post-MLP norms."""
    c.with_class_defaults("Glm4Config", {"head_dim": 128})
    return _glm_layout(c, decoder(c, tied_default=False), 4)


def chatglm(c: Cfg) -> Adapted:
    """THUDM's remote-code ChatGLMForConditionalGeneration (modeling_chatglm.py), text part.

    One fused query_key_value linear, dense_h_to_4h = [2 x ffn_hidden_size] (SwiGLU), output_layer untied.
    """
    if c.has("vision_config"):  # GLM-4V-9B's EVA2-CLIP tower: not modelled from config (the catalog has it)
        raise InvalidConfigValue("vision_config", "{...}", "absent: the remote-code GLM-4V vision tower is not "
                                 "importable; use the catalog's glm-4v-9b (THUDM/glm-4v-9b)")
    layers = c.int("layers", "num_layers", high=LIMITS["layers"])
    hidden = c.int("hidden", "hidden_size")
    heads = c.int("heads", "num_attention_heads", high=hidden)
    mqa = c.bool("kv_heads", "multi_query_attention", False)
    kv_heads = c.int("kv_heads", "multi_query_group_num", high=heads) if mqa else heads
    lm: dict[str, Any] = dict(
        layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
        head_dim=c.int("head_dim", "kv_channels"),
        ffn=c.int("ffn", "ffn_hidden_size"),
        vocab=c.int("vocab", "padded_vocab_size", high=LIMITS["vocab"]),
        max_context=c.int("max_context", "seq_length", high=LIMITS["context"]),
        qkv_bias=c.bool("qkv_bias", "add_qkv_bias", False),
        linear_bias=c.bool("linear_bias", "add_bias_linear", False),
        norm="rmsnorm" if c.bool("norm", "rmsnorm", True) else "layernorm",
        tied_embeddings=False, fused_qkv=True, fused_gate_up=True, ffn_kind="swiglu",
    )
    c.note("tied_embeddings", "modeling_chatglm.py (output_layer is its own linear)")
    c.note("fused_qkv", "modeling_chatglm.py (query_key_value, one fused linear)")
    c.note("fused_gate_up", "modeling_chatglm.py (dense_h_to_4h is hidden -> 2 x ffn_hidden_size)")
    c.note("ffn_kind", "modeling_chatglm.py (MLP: dense_h_to_4h -> swiglu -> dense_4h_to_h)")
    window(c, lm, no_window(c, layers))
    lm["dtype"] = dtype(c)
    return Adapted(lm, c.sources)
