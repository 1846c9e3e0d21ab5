"""The generic path: a `model_type` with no adapter, read with transformers' standard keys only.

It answers only for configs whose every memory-relevant key is one it understands (LlamaConfig's names,
`layer_types` of full/sliding attention, the common expert keys), and says what it assumed. A key that
names something it cannot express (latent attention, recurrent or convolutional layers, per-layer KV
geometry, a vision tower) is a 422 naming that key, never a guess. Known architectures that need such
things are refused up front with the reason (REFUSED), unless an adapter in the registry handles them.
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, config_layer_types, decoder, dtype, window
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.errors import InvalidRequest
from app.estimator.spec import MoE

# model_type -> why the generic reader must not answer (architectures-2026.md, "What each needs")
REFUSED: dict[str, str] = {
    "minimax_m3": "MSA sparse attention with an index-key cache on most layers",
    "minimax_m3_vl": "MSA sparse attention with an index-key cache, and a vision tower",
    "kimi_k3": "Kimi Delta Attention recurrent layers beside MLA layers",
    "kimi_linear": "Kimi Delta Attention recurrent layers beside MLA layers",
    "step3p5": "sliding layers with their own query heads and MTP layers (Step-3.7's decoder alone: no "
               "transformers class; model_type step3p7 is read)",
    "gemma3n": "per-layer embeddings, AltUp/LAuReL weights and cross-layer KV sharing",
    "qwen3_5": "Gated DeltaNet recurrent layers (fixed-size state, no KV)",
    "qwen3_5_moe": "Gated DeltaNet recurrent layers (fixed-size state, no KV)",
    "qwen3_next": "Gated DeltaNet recurrent layers (fixed-size state, no KV)",
    "nemotron_h": "Mamba2 layers (hybrid_override_pattern)",
    "granitemoehybrid": "Mamba2 layers beside attention",
    "falcon_h1": "Mamba2 layers beside attention",
    "jamba": "Mamba layers beside attention",
    "lfm2": "short-convolution layers (conv state, no KV)",
    "lfm2_moe": "short-convolution layers (conv state, no KV)",
    "lfm2_vl": "short-convolution layers and a SigLIP2 tower",
    "glm4v_moe": "a GLM ViT tower this calculator does not count for this wrapper yet",
}

# keys that mean something the generic reader cannot express -> what it is
_CANNOT = {
    "kv_lora_rank": "multi-head latent attention",
    "q_lora_rank": "multi-head latent attention",
    "linear_attn_config": "linear-attention layers",
    "linear_num_value_heads": "linear-attention (recurrent) layers",
    "hybrid_override_pattern": "hybrid Mamba / attention layers",
    "mamba_num_heads": "Mamba layers",
    "ssm_state_size": "state-space layers",
    "conv_L_cache": "short-convolution layers",
    "attention_chunk_size": "chunked local attention",
    "num_kv_shared_layers": "cross-layer KV sharing",
    "global_head_dim": "per-layer KV geometry",
    "swa_num_key_value_heads": "per-layer KV geometry",
    "compress_ratios": "compressed attention caches",
    "index_n_heads": "an attention indexer with its own key cache",
    "vision_config": "a vision tower",
    "audio_config": "an audio tower",
    "text_config": "a nested text model (a multimodal wrapper)",
    "n_shared_experts": "shared experts",
    "shared_expert_intermediate_size": "shared experts",
    "first_k_dense_replace": "dense layers before the MoE layers",
    "mlp_only_layers": "dense-only layers among MoE layers",
}
_EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


_CORE = ("num_hidden_layers", "hidden_size", "num_attention_heads")


def readable(config: dict[str, Any]) -> bool:
    """Whether a config uses transformers' standard decoder keys at all (else: an unknown model_type)."""
    return any(config.get(k) is not None for k in _CORE)


def refuse(model_type: str) -> None:
    """A 422 for a model_type known to need what the generic reader cannot express."""
    why = REFUSED.get(model_type)
    if why is not None:
        raise InvalidRequest("config.model_type", f"config.model_type {model_type!r} is not supported yet: it needs "
                                                  f"{why}, which a generic reading would get wrong")


def generic(c: Cfg) -> Adapted:
    """A decoder read with LlamaConfig's keys; every assumption listed in `generic` and the answer."""
    for key, what in _CANNOT.items():
        value = c.data.get(key)
        if value not in (None, 0, [], {}, False):
            raise InvalidConfigValue(key, value if not isinstance(value, dict) else "{...}",
                                     f"absent: {what} needs an adapter for model_type {c.model_type!r} "
                                     "(the generic reader does not guess)")
    lm = decoder(c, tied_default=False)
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["linear_bias"] = c.bool("linear_bias", "mlp_bias", False)
    types = config_layer_types(c, lm["layers"])
    if types is None:
        types = ["sliding"] * lm["layers"] if c.has("sliding_window") else ["full"] * lm["layers"]
        c.note("layer_types", "generic: no layer_types; sliding_window (when set) on every layer, as Mistral")
    experts_key = next((k for k in _EXPERT_KEYS if c.data.get(k) not in (None, 0)), None)
    assumed = ["decoder-only transformer with LlamaConfig's keys", "SwiGLU MLP (gate_proj, up_proj, down_proj)",
               "RMSNorm, two per layer", "separate q/k/v projections, no q/k norms",
               f"biases: attention {lm['qkv_bias']}, MLP {lm['linear_bias']}",
               f"tied embeddings {lm['tied_embeddings']}"]
    if experts_key is not None:
        experts = c.int("moe", experts_key, low=2, high=LIMITS["experts"])
        ffn_key = "moe_intermediate_size" if c.has("moe_intermediate_size") else "intermediate_size"
        lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "num_experts_per_tok", high=experts),
                        expert_ffn=c.int("moe", ffn_key))
        c.note("moe", f"generic: config.json {experts_key}, num_experts_per_tok, {ffn_key}; every layer MoE, "
                      "no shared expert, bias-free router")
        assumed.append(f"every layer a MoE of {experts} experts ({ffn_key}), no shared expert")
    window(c, lm, types)
    lm["dtype"] = dtype(c)
    lm["generic"] = (f"generic: this architecture is not checked (model_type {c.model_type!r} has no adapter); "
                     f"assumed: {'; '.join(assumed)}")
    return Adapted(lm, c.sources)


def adapt(config: dict[str, Any], model_type: str) -> Adapted:
    refuse(model_type)
    return generic(Cfg(config, model_type))
