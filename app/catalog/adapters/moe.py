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
from app.estimator.spec import MLA, Indexer, MoE, MtpDraft


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
    lm["qkv_bias"] = c.bool("qkv_bias", "qkv_bias", True)  # transformers 5 Qwen2MoeConfig.qkv_bias, default True
    c.note("qkv_bias", c.sources["qkv_bias"] + "; transformers Qwen2MoeAttention (q/k/v bias=qkv_bias, o_proj none)")
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
# Moonshot's Kimi K2 (remote code configuration_deepseek.DeepseekV3Config, architectures DeepseekV3ForCausalLM)
# reads with the same keys and defaults
_DEEPSEEK_DEFAULTS["kimi_k2"] = _DEEPSEEK_DEFAULTS["deepseek_v3"]
# transformers models/deepseek_v32/configuration_deepseek_v32.py: the same defaults as DeepseekV3Config
_DEEPSEEK_DEFAULTS["deepseek_v32"] = _DEEPSEEK_DEFAULTS["deepseek_v3"]
# transformers models/glm4_moe_lite and glm_moe_dsa configuration classes (5.25)
_DEEPSEEK_DEFAULTS["glm4_moe_lite"] = {"q_lora_rank": 768, "n_routed_experts": 64, "n_shared_experts": 1,
                                       "first_k_dense_replace": 1, "num_experts_per_tok": 4}
_DEEPSEEK_DEFAULTS["glm_moe_dsa"] = {"q_lora_rank": 2048, "n_routed_experts": 256, "n_shared_experts": 1,
                                     "first_k_dense_replace": 3, "num_experts_per_tok": 8}


def _absent_or(c: Cfg, field: str, key: str, low: int = 0, high: int = LIMITS["width"]) -> int | None:
    """A DeepSeek key: explicit null means none (0), absent means the transformers default."""
    if key in c.data and c.data[key] is None:
        c.note(field, f"config.json {c.prefix}{key} null")
        return None
    return _int(c, field, key, low=low, high=high)


def _int(c: Cfg, field: str, key: str, low: int = 1, high: int = LIMITS["width"]) -> int:
    """c.int with the transformers class default for an absent DeepSeek key (if it has one)."""
    defaults = _DEEPSEEK_DEFAULTS.get(c.model_type, _DEEPSEEK_DEFAULTS["deepseek_v3"])
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


def _mtp(c: Cfg, lm: dict[str, Any], draft: str) -> None:
    """num_nextn_predict_layers MTP layer(s): vLLM loads them as the draft of --speculative-config method mtp
    (vllm/config/speculative.py: deepseek_v3 -> deepseek_mtp, glm4_moe -> glm4_moe_mtp)."""
    if not c.data.get(c.spelling("num_nextn_predict_layers")):  # absent or 0 (Kimi K2): no draft
        return
    n = c.int("mtp_draft", "num_nextn_predict_layers", low=0, high=LIMITS["layers"])
    if n:
        lm["mtp_draft"] = MtpDraft(layers=n, draft=draft)
        c.note("mtp_draft", f"config.json num_nextn_predict_layers; vLLM draft model_type {draft} "
                            "(vllm/config/speculative.py)")


def deepseek_v2(c: Cfg) -> Adapted:
    """DeepseekV2ForCausalLM: MLA attention, shared + routed experts after the first dense layers."""
    lm = _deepseek(c)
    return _finish(c, lm, no_window(c, lm["layers"]))


def deepseek_v3(c: Cfg) -> Adapted:
    """DeepseekV3ForCausalLM: V2's layout; the router's e_score_correction_bias is a buffer, not a parameter.

    The multi-token-prediction layer (num_nextn_predict_layers) is not built by transformers and not
    counted here: it is loaded only for speculative decoding (mtp_draft).
    """
    lm = _deepseek(c)
    _mtp(c, lm, "deepseek_mtp")
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


def deepseek_v32(c: Cfg) -> Adapted:
    """DeepseekV32ForCausalLM (DeepSeek-V3.2): V3's layout plus the DSA lightning indexer in every layer
    (transformers DeepseekV32Indexer: wq_b [index_n_heads x index_head_dim, q_lora_rank], wk [index_head_dim,
    hidden], k_norm LayerNorm(index_head_dim), weights_proj [index_n_heads, hidden]); its cache keeps one
    index_head_dim key per token per layer (DynamicIndexedLayer.indexer_keys, single head)."""
    lm = _deepseek(c)
    if not lm["mla"].q_lora_rank:
        raise InvalidConfigValue(c.prefix + "q_lora_rank", 0, "at least 1 (the indexer's wq_b reads the q latent)")
    lm["indexer"] = Indexer(heads=c.int("indexer", "index_n_heads", default=64),
                            head_dim=c.int("indexer", "index_head_dim", default=128),
                            top_k=c.int("indexer", "index_topk", default=2048, high=LIMITS["context"]))
    c.note("indexer", "config.json index_n_heads, index_head_dim, index_topk (absent: transformers "
                      "DeepseekV32Config defaults 64, 128, 2048)")
    return _finish(c, lm, no_window(c, lm["layers"]))


def kimi_k2(c: Cfg) -> Adapted:
    """Kimi K2 (model_type kimi_k2, remote code): its config names DeepseekV3ForCausalLM and its
    configuration_deepseek.DeepseekV3Config, so it is read as deepseek_v3 (MLA, routed + shared experts)."""
    out = deepseek_v3(c)
    c.note("mla", c.sources["mla"] + "; kimi_k2 read as deepseek_v3 (its config's architectures: "
                                     "DeepseekV3ForCausalLM, remote code configuration_deepseek.py)")
    return out


def _sparse_from(c: Cfg, layers: int, start_key: str, default: int) -> int:
    return c.int("moe", start_key, default=default, low=0, high=layers)


def glm4_moe(c: Cfg) -> Adapted:
    """Glm4MoeForCausalLM (GLM-4.5 / 4.6 / 4.7): biased q/k/v (attention_bias), optional per-head q/k norms
    (use_qk_norm), first_k_dense_replace dense layers, then routed + shared experts; partial rotary adds no
    weights. The router's e_score_correction_bias is a buffer. The MTP layer(s) num_nextn_predict_layers
    are in the checkpoint but transformers' Glm4MoeForCausalLM does not build them: not counted, as there.
    """
    lm = decoder(c, tied_default=False)
    lm["qkv_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["output_bias"] = False
    c.note("output_bias", "transformers Glm4MoeAttention (o_proj bias=False)")
    lm["qk_norm"] = c.bool("qk_norm", "use_qk_norm", False)
    defaults = {"n_routed_experts": 128, "n_shared_experts": 1, "first_k_dense_replace": 1, "num_experts_per_tok": 8}
    experts = c.int("moe", "n_routed_experts", default=defaults["n_routed_experts"], low=2, high=LIMITS["experts"])
    lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "num_experts_per_tok", default=8, high=experts),
                    expert_ffn=c.int("moe", "moe_intermediate_size"),
                    shared_experts=c.int("moe", "n_shared_experts", default=1, low=0),
                    first_dense_layers=c.int("moe", "first_k_dense_replace", default=1, low=0, high=lm["layers"]))
    c.note("moe", "config.json n_routed_experts, num_experts_per_tok, moe_intermediate_size, n_shared_experts, "
                  "first_k_dense_replace (absent: transformers Glm4MoeConfig defaults); MTP layers not built")
    _mtp(c, lm, "glm4_moe_mtp")
    return _finish(c, lm, no_window(c, lm["layers"]))


def ernie4_5_moe(c: Cfg) -> Adapted:
    """Ernie4_5_MoeForCausalLM: dense layers before moe_layer_start_index, then moe_num_experts routed experts
    (top moe_k) + moe_num_shared_experts x moe_intermediate_size shared; biases on every linear by use_bias;
    the router's e_score_correction_bias is a parameter (Ernie4_5_MoeStatics, one per expert)."""
    lm = decoder(c, tied_default=True)
    bias = c.bool("qkv_bias", "use_bias", False)
    lm["qkv_bias"] = lm["linear_bias"] = bias
    layers = lm["layers"]
    interval = c.int("moe", "moe_layer_interval", default=1, high=layers)
    end = c.raw("moe_layer_end_index", -1)
    if interval != 1 or end not in (-1, layers - 1):
        raise InvalidConfigValue(c.prefix + ("moe_layer_interval" if interval != 1 else "moe_layer_end_index"),
                                 interval if interval != 1 else end, "every layer from moe_layer_start_index on "
                                 "(moe_layer_interval 1, moe_layer_end_index -1)")
    experts = c.int("moe", "moe_num_experts", low=2, high=LIMITS["experts"])
    shared = c.int("moe", "moe_num_shared_experts", default=0, low=0)
    lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "moe_k", high=experts),
                    expert_ffn=c.int("moe", "moe_intermediate_size"), shared_experts=shared,
                    first_dense_layers=_sparse_from(c, layers, "moe_layer_start_index", 1), router_bias=True)
    c.note("moe", "config.json moe_num_experts, moe_k, moe_intermediate_size, moe_num_shared_experts, "
                  "moe_layer_start_index; router_bias: Ernie4_5_MoeStatics e_score_correction_bias [1, experts]")
    return _finish(c, lm, no_window(c, layers))


def minimax_m2(c: Cfg) -> Adapted:
    """MiniMaxM2ForCausalLM: full attention in every layer, q_norm/k_norm over all heads (use_qk_norm,
    qk_norm_type per_layer), num_local_experts routed experts of intermediate_size, no shared expert; the
    router's e_score_correction_bias (use_routing_bias) is a buffer; MTP modules are not built."""
    c.with_class_defaults("MiniMaxM2Config", {"head_dim": 128})
    lm = decoder(c, tied_default=False)
    norm_type = c.str("qk_norm_type", "per_layer")
    if norm_type != "per_layer":
        raise InvalidConfigValue(c.prefix + "qk_norm_type", norm_type, "per_layer")
    lm["qk_norm"] = lm["qk_norm_full"] = True  # built whatever use_qk_norm says
    c.bool("qk_norm", "use_qk_norm", True)
    c.note("qk_norm", "transformers MiniMaxM2Attention (q_norm: heads x head_dim, k_norm: kv_heads x head_dim)")
    shared = c.int("moe", "shared_intermediate_size", default=0, low=0)
    if shared:
        raise InvalidConfigValue(c.prefix + "shared_intermediate_size", shared, "0 (MiniMax-M2 has no shared expert)")
    lm["moe"] = _moe(c, **_experts(c, "num_local_experts", "intermediate_size"))
    return _finish(c, lm, no_window(c, lm["layers"]))
