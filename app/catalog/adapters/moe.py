"""Adapters for mixture-of-experts families: Mixtral, Qwen2-MoE, Qwen3-MoE, DeepSeek-V2/V3, gpt-oss."""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import (
    Adapted,
    all_layers_window,
    decoder,
    dtype,
    every_nth_full,
    no_window,
    qwen_window,
    window,
)
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import MLA, MoE


def _experts(c: Cfg, experts_key: str, ffn_key: str) -> dict[str, Any]:
    return dict(
        experts=c.int("moe", experts_key, low=2, high=LIMITS["experts"]),
        experts_per_token=c.int("moe", "num_experts_per_tok", high=LIMITS["experts"]),
        expert_ffn=c.int("moe", ffn_key),
    )


def _every_layer_sparse(c: Cfg) -> None:
    """Qwen-MoE's decoder_sparse_step / mlp_only_layers: only 'every layer sparse' is modelled."""
    step = c.data.get("decoder_sparse_step", 1)
    if step != 1:
        raise InvalidConfigValue(c.prefix + "decoder_sparse_step", step, "1 (every layer a MoE layer)")
    dense = c.data.get("mlp_only_layers") or []
    if dense:
        raise InvalidConfigValue(c.prefix + "mlp_only_layers", dense, "[] (no dense-only layers)")


def _moe(c: Cfg, **kw: Any) -> MoE:
    c.note("moe", c.sources.get("moe", "config.json"))
    return MoE(**kw)


def _finish(c: Cfg, lm: dict[str, Any], types: list[str]) -> Adapted:
    window(c, lm, types)
    lm["dtype"] = dtype(c)
    return Adapted(lm, c.sources)


def mixtral(c: Cfg) -> Adapted:
    """MixtralForCausalLM: every layer's MLP is num_local_experts SwiGLU experts behind a bias-free router."""
    lm = decoder(c, tied_default=False)
    lm["moe"] = _moe(c, **_experts(c, "num_local_experts", "intermediate_size"))
    return _finish(c, lm, all_layers_window(c, lm["layers"]))


def qwen2_moe(c: Cfg) -> Adapted:
    """Qwen2MoeForCausalLM: routed experts plus one shared expert of its own size, with a sigmoid gate."""
    lm = decoder(c, tied_default=False)
    _every_layer_sparse(c)
    lm["qkv_bias"] = True
    c.note("qkv_bias", "transformers Qwen2MoeAttention (q/k/v bias=True, o_proj bias=False)")
    shared = c.int("moe", "shared_expert_intermediate_size", default=0, low=0)
    lm["moe"] = _moe(c, **_experts(c, "num_experts", "moe_intermediate_size"), shared_experts=int(shared > 0),
                     shared_expert_ffn=shared or None, shared_expert_gate=shared > 0)
    return _finish(c, lm, qwen_window(c, lm["layers"]))


def qwen3_moe(c: Cfg) -> Adapted:
    """Qwen3MoeForCausalLM: Qwen3's attention (q/k norms) with routed experts only."""
    lm = decoder(c, tied_default=False)
    _every_layer_sparse(c)
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["qk_norm"] = True
    c.note("qk_norm", "transformers Qwen3MoeAttention (q_norm, k_norm: RMSNorm(head_dim))")
    lm["moe"] = _moe(c, **_experts(c, "num_experts", "moe_intermediate_size"))
    return _finish(c, lm, qwen_window(c, lm["layers"]))


# transformers DeepseekV2Config / DeepseekV3Config defaults for keys a config leaves out
_DEEPSEEK_DEFAULTS = {
    "deepseek_v2": {"q_lora_rank": 1536, "n_routed_experts": 64, "n_shared_experts": 2, "first_k_dense_replace": 0},
    "deepseek_v3": {"q_lora_rank": 1536, "n_routed_experts": 256, "n_shared_experts": 1, "first_k_dense_replace": 3,
                    "num_experts_per_tok": 8},
}


def _absent_or(c: Cfg, field: str, key: str, low: int = 0, high: int = LIMITS["width"]) -> int | None:
    """A DeepSeek key: explicit null means none (0), absent means the transformers default."""
    if key in c.data and c.data[key] is None:
        c.note(field, f"config.json {c.prefix}{key} null")
        return None
    return _int(c, field, key, low=low, high=high)


def _int(c: Cfg, field: str, key: str, low: int = 1, high: int = LIMITS["width"]) -> int:
    """c.int with the transformers class default for an absent DeepSeek key (if it has one)."""
    defaults = _DEEPSEEK_DEFAULTS[c.model_type]
    if key in defaults:
        return c.int(field, key, default=defaults[key], low=low, high=high)
    return c.int(field, key, low=low, high=high)


def _deepseek(c: Cfg) -> dict[str, Any]:
    lm = decoder(c, tied_default=False)
    lm["kv_heads"] = lm["heads"]
    c.note("kv_heads", "MLA: every query head has its own K/V, expanded from the cached latent")
    q_lora = _absent_or(c, "mla", "q_lora_rank") or 0
    mla = MLA(q_lora_rank=q_lora, kv_lora_rank=c.int("mla", "kv_lora_rank"),
              qk_nope_head_dim=c.int("mla", "qk_nope_head_dim"), qk_rope_head_dim=c.int("mla", "qk_rope_head_dim"),
              v_head_dim=c.int("mla", "v_head_dim"))
    lm["mla"] = mla
    lm["head_dim"] = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    c.note("head_dim", "config.json qk_nope_head_dim + qk_rope_head_dim")
    c.note("mla", "config.json q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim")
    freq = c.data.get("moe_layer_freq", 1)
    if freq != 1:
        raise InvalidConfigValue(c.prefix + "moe_layer_freq", freq, "1 (every layer after the dense ones)")
    experts = _absent_or(c, "moe", "n_routed_experts", low=2, high=LIMITS["experts"])
    if experts is None:
        lm["moe"] = None  # routed experts null: a dense model
        return lm
    top_k = _int(c, "moe", "num_experts_per_tok", high=experts)
    lm["moe"] = MoE(experts=experts, experts_per_token=top_k, expert_ffn=c.int("moe", "moe_intermediate_size"),
                    shared_experts=_absent_or(c, "moe", "n_shared_experts") or 0,
                    first_dense_layers=_absent_or(c, "moe", "first_k_dense_replace", high=lm["layers"]) or 0)
    c.note("moe", "config.json n_routed_experts, num_experts_per_tok, moe_intermediate_size, n_shared_experts, "
                  "first_k_dense_replace (absent keys: transformers DeepseekV2Config/DeepseekV3Config defaults)")
    return lm


def deepseek_v2(c: Cfg) -> Adapted:
    """DeepseekV2ForCausalLM: MLA attention, shared + routed experts after the first dense layers."""
    lm = _deepseek(c)
    return _finish(c, lm, no_window(c, lm["layers"]))


def deepseek_v3(c: Cfg) -> Adapted:
    """DeepseekV3ForCausalLM: V2's layout; the router's e_score_correction_bias is a buffer, not a parameter.

    The multi-token-prediction layer (num_nextn_predict_layers) is not built by transformers and not
    counted here: it is loaded only for speculative decoding.
    """
    lm = _deepseek(c)
    return _finish(c, lm, no_window(c, lm["layers"]))


def gpt_oss(c: Cfg) -> Adapted:
    """GptOssForCausalLM: biased attention with sinks, biased router and experts; sliding/full alternate."""
    c.with_class_defaults("GptOssConfig", {"head_dim": 64})
    lm = decoder(c, tied_default=False)
    lm["qkv_bias"] = lm["linear_bias"] = c.bool("qkv_bias", "attention_bias", True)
    c.note("linear_bias", c.sources["qkv_bias"] + " (o_proj too; gpt-oss has no dense MLP)")
    lm["attention_sinks"] = True
    c.note("attention_sinks", "transformers GptOssAttention (sinks: one parameter per attention head)")
    lm["moe"] = _moe(c, **_experts(c, "num_local_experts", "intermediate_size"), router_bias=True, expert_bias=True)
    c.note("moe", "config.json num_local_experts, num_experts_per_tok, intermediate_size; transformers "
                  "GptOssTopKRouter (bias) and GptOssExperts (gate_up_proj_bias, down_proj_bias)")
    types = every_nth_full(c, lm["layers"], 2, "transformers GptOssConfig: layer i slides when (i + 1) % 2")
    return _finish(c, lm, types)
