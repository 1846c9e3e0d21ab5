"""MiMo-V2-Flash (transformers models/mimo_v2_flash, 5.25): per-layer KV geometry between sliding and full
layers, K and V head dims apart, attention sinks on sliding layers, DeepSeek-style routed experts.

MiMoV2FlashAttention: q/k head_dim, v v_head_dim (o_proj reads heads x v_head_dim, no bias); sliding layers
have twice num_key_value_heads and one sink logit per query head. MiMoV2FlashConfig: layer 0 and every 6th
layer full attention, the rest sliding over sliding_window_size + 1 positions; mlp_layer_types (layer 0 dense,
then MoE without shared experts; the router's e_score_correction_bias is a buffer).
"""

from __future__ import annotations

from app.catalog.adapters.common import Adapted, decoder, dtype
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import KvGeometry, MoE, MtpDraft


def _layer_types(c: Cfg, layers: int) -> list[str]:
    kinds = {"full_attention": "full", "sliding_attention": "sliding"}
    raw = c.data.get("layer_types")
    if raw is not None:
        if not isinstance(raw, list) or len(raw) != layers or any(k not in kinds for k in raw):
            raise InvalidConfigValue(c.prefix + "layer_types", raw,
                                     f"{layers} entries of full_attention / sliding_attention")
        c.note("layer_types", f"config.json {c.prefix}layer_types")
        return [kinds[k] for k in raw]
    types = ["full" if i == 0 or not (i + 1) % 6 else "sliding" for i in range(layers)]
    c.note("layer_types", "transformers MiMoV2FlashConfig: layer 0 and every 6th layer full, the rest sliding")
    pattern = c.data.get("hybrid_layer_pattern")  # the remote-code key (1 = sliding); transformers ignores it
    if pattern is not None and pattern != [int(t == "sliding") for t in types]:
        raise InvalidConfigValue(c.prefix + "hybrid_layer_pattern", pattern,
                                 "transformers' pattern (layer 0 and every 6th layer full), which it builds")
    return types


def _mlp_layer_types(c: Cfg, layers: int) -> tuple[str, ...]:
    raw = c.data.get("mlp_layer_types")
    if raw is None:
        kinds = ["dense"] + ["sparse"] * (layers - 1)
        c.note("layer_ffn", "transformers MiMoV2FlashConfig: layer 0 dense, the rest MoE")
        freq = c.data.get("moe_layer_freq")  # the remote-code key (1 = MoE); transformers ignores it
        if isinstance(freq, list) and freq != [int(k == "sparse") for k in kinds]:
            raise InvalidConfigValue(c.prefix + "moe_layer_freq", freq, "transformers' pattern (layer 0 dense)")
    else:
        if not isinstance(raw, list) or len(raw) != layers or set(raw) - {"dense", "sparse"}:
            raise InvalidConfigValue(c.prefix + "mlp_layer_types", raw, f"{layers} entries of dense / sparse")
        kinds = raw
        c.note("layer_ffn", f"config.json {c.prefix}mlp_layer_types")
    return tuple("moe" if k == "sparse" else "dense" for k in kinds)


def mimo_v2_flash(c: Cfg) -> Adapted:
    """MiMoV2FlashForCausalLM."""
    c.with_class_defaults("MiMoV2FlashConfig", {"head_dim": 192})
    lm = decoder(c, tied_default=False)
    layers, kv = lm["layers"], lm["kv_heads"]
    lm["qkv_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["output_bias"] = False
    c.note("output_bias", "transformers MiMoV2FlashAttention (o_proj bias=False)")
    lm["v_head_dim"] = c.int("v_head_dim", "v_head_dim", default=128)
    # remote-code keys transformers does not read: refuse a config whose values it would build differently
    expect = {"swa_num_key_value_heads": 2 * kv, "swa_head_dim": lm["head_dim"], "swa_v_head_dim": lm["v_head_dim"],
              "swa_num_attention_heads": lm["heads"], "add_full_attention_sink_bias": False,
              "add_swa_attention_sink_bias": True}
    for key, value in expect.items():
        if c.data.get(key) not in (None, value):
            raise InvalidConfigValue(c.prefix + key, c.data[key], f"{value} (what transformers' MiMoV2FlashAttention "
                                                                  "builds)")
    if 2 * kv > lm["heads"] or lm["heads"] % (2 * kv):
        raise InvalidConfigValue(c.prefix + "num_key_value_heads", kv,
                                 f"half a divisor of num_attention_heads={lm['heads']}")
    lm["kv_geometry"] = {"sliding": KvGeometry(kv_heads=2 * kv, head_dim=lm["head_dim"],
                                               v_head_dim=lm["v_head_dim"])}
    c.note("kv_geometry", "transformers MiMoV2FlashAttention: sliding layers num_key_value_heads x 2, "
                          "head_dim / v_head_dim")
    lm["attention_sinks"] = True
    lm["sink_layer_type"] = "sliding"
    c.note("attention_sinks", "transformers MiMoV2FlashAttention (sinks: one per query head, sliding layers only)")
    lm["layer_ffn"] = _mlp_layer_types(c, layers)
    experts = c.int("moe", "n_routed_experts", "num_local_experts", default=256, low=2, high=LIMITS["experts"])
    lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "num_experts_per_tok", default=8, high=experts),
                    expert_ffn=c.int("moe", "moe_intermediate_size", default=2048))
    c.note("moe", "config.json n_routed_experts, num_experts_per_tok, moe_intermediate_size (no shared experts: "
                  "MiMoV2FlashMoE)")
    types = _layer_types(c, layers)
    if "sliding" in types:
        if c.has("sliding_window_size"):  # MiMoV2FlashConfig: the query plus sliding_window_size earlier tokens
            lm["sliding_window"] = c.int("sliding_window", "sliding_window_size", high=LIMITS["context"]) + 1
            c.note("sliding_window", f"config.json {c.prefix}sliding_window_size + 1 (transformers "
                                     "MiMoV2FlashConfig)")
        else:
            lm["sliding_window"] = c.int("sliding_window", "sliding_window", default=129, high=LIMITS["context"])
    lm["sliding_window_layers"] = types.count("sliding")
    lm["layer_types"] = tuple(types)
    lm["dtype"] = dtype(c)
    # vllm/config/speculative.py: MiMoV2FlashForCausalLM -> mimo_v2_mtp with n_predict
    # _MIMO_V2_FLASH_NUM_MTP_LAYERS = 1 (model_executor/models/mimo_v2_mtp.py, 0.32.0 and 0.34.0)
    lm["mtp_draft"] = MtpDraft(layers=1, draft="mimo_v2_mtp")
    c.note("mtp_draft", "vLLM mimo_v2_mtp.py _MIMO_V2_FLASH_NUM_MTP_LAYERS (the first stored MTP layer)")
    return Adapted(lm, c.sources)
