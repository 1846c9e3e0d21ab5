"""DeepSeek-V4 (transformers models/deepseek_v4, 5.25): DeepseekV4ForCausalLM.

DeepseekV4Attention on every layer: q through a q_lora_rank latent (q_a_proj, q_a_norm, q_b_proj), one shared
K = V head of head_dim (kv_proj, kv_norm; num_key_value_heads is not read), a grouped low-rank output
projection (o_a_proj per o_groups, o_b_proj), one sink logit per query head. Layer kinds from layer_types, else
the released per-layer `compress_ratios` (0 sliding window only, 4 compressed_sparse = CSA with a lightning
indexer, 128 heavily_compressed = HCA), else DeepseekV4Config's default pattern. Every layer a routed MoE with one
shared expert of moe_intermediate_size (the first num_hash_layers route by a frozen tid2eid buffer: same weights),
two hyper-connection mixers per layer and one before the final norm (hc_mult streams). The MTP layers
(num_nextn_predict_layers) are not built by transformers and not counted, as there.
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, dtype
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import CompressedAttention, MoE

# DeepseekV4Config's class defaults (configuration_deepseek_v4.py, transformers 5.25) for the V4-specific keys; the
# decoder's sizes (layers, widths, vocabulary, experts) must be in the config, as in every other adapter
DEFAULTS = {"head_dim": 512, "q_lora_rank": 1024, "sliding_window": 128, "o_groups": 8, "o_lora_rank": 1024,
            "index_n_heads": 64, "index_head_dim": 128, "index_topk": 512, "hc_mult": 4}
# configuration_deepseek_v4.py DEEPSEEK_V4_LAYER_TYPES and _COMPRESS_RATIO_TO_LAYER_TYPE -> our layer types
LAYER_TYPES = {"sliding_attention": "sliding", "compressed_sparse_attention": "compressed_sparse",
               "heavily_compressed_attention": "heavily_compressed"}
RATIO_TYPES = {0: "sliding_attention", 4: "compressed_sparse_attention", 128: "heavily_compressed_attention"}
DEFAULT_RATES = {"compressed_sparse_attention": 4, "heavily_compressed_attention": 128}  # default_compress_rates


def _layer_types(c: Cfg, layers: int) -> list[str]:
    """DeepseekV4Config.__post_init__: layer_types, else the legacy per-layer compress_ratios (0 / 4 / 128),
    else 2 heavily-compressed layers then HCA / CSA alternating; cut to num_hidden_layers (a released
    compress_ratios also lists the MTP layer)."""
    raw, key = c.data.get("layer_types"), "layer_types"
    if raw is None and c.data.get("compress_ratios") is not None:
        key, ratios = "compress_ratios", c.data["compress_ratios"]
        if not isinstance(ratios, list) or any(isinstance(r, bool) or r not in RATIO_TYPES for r in ratios):
            raise InvalidConfigValue(c.prefix + key, ratios, "a list of 0 (sliding), 4 (CSA) and 128 (HCA)")
        raw = [RATIO_TYPES[r] for r in ratios]
    if raw is None:
        c.note("layer_types", "transformers DeepseekV4Config: 2 heavily-compressed layers, then HCA / CSA alternate")
        tail = ["compressed_sparse_attention" if i % 2 else "heavily_compressed_attention"
                for i in range(max(layers - 2, 0))]
        raw = ["heavily_compressed_attention"] * min(layers, 2) + tail
    else:
        c.note("layer_types", f"config.json {c.prefix}{key} (first num_hidden_layers entries, as DeepseekV4Config)")
    if not isinstance(raw, list) or len(raw) < layers or any(t not in LAYER_TYPES for t in raw):
        raise InvalidConfigValue(c.prefix + key, raw, f"{layers} entries of {', '.join(LAYER_TYPES)}")
    return [LAYER_TYPES[t] for t in raw[:layers]]


def _compress_rates(c: Cfg) -> dict[str, int]:
    """compress_rates, else the legacy compress_rate_csa / compress_rate_hca, else 4 and 128."""
    rates = dict(DEFAULT_RATES)
    given = c.data.get("compress_rates")
    if given is not None:
        if not isinstance(given, dict) or set(given) - set(DEFAULT_RATES):
            raise InvalidConfigValue(c.prefix + "compress_rates", given, f"a dict keyed by {', '.join(DEFAULT_RATES)}")
        rates.update(given)
    for key, name in (("compress_rate_csa", "compressed_sparse_attention"),
                      ("compress_rate_hca", "heavily_compressed_attention")):
        if c.data.get(key) is not None:
            rates[name] = c.data[key]
    for name, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= LIMITS["context"]:
            raise InvalidConfigValue(c.prefix + "compress_rates", rates, f"{name}: an integer of at least 1")
    return {LAYER_TYPES[k]: v for k, v in rates.items()}


def deepseek_v4(c: Cfg) -> Adapted:
    """DeepseekV4ForCausalLM."""
    c.with_class_defaults("DeepseekV4Config", DEFAULTS)
    layers = c.int("layers", "num_hidden_layers", high=LIMITS["layers"])
    hidden = c.int("hidden", "hidden_size")
    heads = c.int("heads", "num_attention_heads", high=LIMITS["width"] // 8)
    head_dim = c.int("head_dim", "head_dim")
    kv = c.data.get("num_key_value_heads")
    if kv not in (None, 1):  # DeepseekV4Attention: kv_proj is one head whatever the config says
        raise InvalidConfigValue(c.prefix + "num_key_value_heads", kv, "1 (DeepseekV4Attention: one shared K = V head)")
    c.note("kv_heads", "transformers DeepseekV4Attention: one K = V head (kv_proj [head_dim, hidden])")
    if c.data.get("mlp_bias"):
        raise InvalidConfigValue(c.prefix + "mlp_bias", True, "false (the routed experts carry no biases)")
    ffn = c.int("ffn", "moe_intermediate_size")
    lm: dict[str, Any] = dict(
        layers=layers, hidden=hidden, heads=heads, kv_heads=1, head_dim=head_dim, ffn=ffn, ffn_kind="swiglu",
        vocab=c.int("vocab", "vocab_size", high=LIMITS["vocab"]),
        tied_embeddings=c.bool("tied_embeddings", "tie_word_embeddings", False),
        max_context=c.int("max_context", "max_position_embeddings", high=LIMITS["context"]),
        norm="rmsnorm", fused_qkv=False, fused_gate_up=False, qkv_bias=False, linear_bias=False, output_bias=False,
        attention_sinks=True)
    c.note("ffn", f"config.json {c.prefix}moe_intermediate_size (DeepseekV4Config maps intermediate_size to it)")
    c.note("norm", "transformers DeepseekV4RMSNorm (weight only); input_layernorm, post_attention_layernorm")
    c.note("qkv_bias", "transformers DeepseekV4Attention: every projection bias-free (attention_bias not read)")
    c.note("attention_sinks", "transformers DeepseekV4Attention.sinks: one per query head, every layer")
    o_groups = c.int("compressed_attention", "o_groups")
    if (heads * head_dim) % o_groups:
        raise InvalidConfigValue(c.prefix + "o_groups", o_groups,
                                 f"a divisor of num_attention_heads x head_dim = {heads * head_dim}")
    lm["compressed_attention"] = CompressedAttention(
        q_lora_rank=c.int("compressed_attention", "q_lora_rank"), o_groups=o_groups,
        o_lora_rank=c.int("compressed_attention", "o_lora_rank"), compress_rates=_compress_rates(c),
        index_heads=c.int("compressed_attention", "index_n_heads"),
        index_head_dim=c.int("compressed_attention", "index_head_dim"),
        index_top_k=c.int("compressed_attention", "index_topk", high=LIMITS["context"]))
    c.note("compressed_attention", "config.json q_lora_rank, o_groups, o_lora_rank, compress_rates (or "
                                   "compress_rate_csa / _hca), index_n_heads, index_head_dim, index_topk (absent: "
                                   "DeepseekV4Config defaults)")
    lm["hyper_connections"] = c.int("hyper_connections", "hc_mult")
    experts = c.int("moe", "n_routed_experts", "num_local_experts", low=2, high=LIMITS["experts"])
    lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "num_experts_per_tok", high=experts),
                    expert_ffn=ffn, shared_expert_ffn=ffn)
    c.note("moe", "config.json n_routed_experts, num_experts_per_tok, moe_intermediate_size; one shared expert of "
                  "moe_intermediate_size whatever n_shared_experts (DeepseekV4SparseMoeBlock.shared_experts); "
                  "hash-routed layers (num_hash_layers) have the same weights (tid2eid is a buffer)")
    types = _layer_types(c, layers)
    lm["sliding_window"] = c.int("sliding_window", "sliding_window", high=LIMITS["context"])
    c.note("sliding_window", f"config.json {c.prefix}sliding_window: every layer's K = V window (CSA / HCA too)")
    lm["sliding_window_layers"] = types.count("sliding")
    lm["layer_types"] = tuple(types)
    lm["dtype"] = dtype(c)
    return Adapted(lm, c.sources)
