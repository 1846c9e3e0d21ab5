"""GLM's MLA decoders (transformers 5.25): GLM-4.7-Flash (glm4_moe_lite) and GLM-5 (glm_moe_dsa).

Both are DeepSeek-V3's layout under GLM key names (q_lora_rank, kv_lora_rank, qk_nope_head_dim,
qk_rope_head_dim, v_head_dim; routed + shared experts) with the dense/sparse split per layer in
mlp_layer_types. GLM-5 adds the DSA indexer: layers whose indexer_types entry is "full" run their own indexer
(weights, and one index_head_dim key per token cached); "shared" layers reuse the previous full layer's top-k.
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, no_window
from app.catalog.adapters.moe import _deepseek, _finish
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import Indexer


def _mlp_layer_types(c: Cfg, lm: dict[str, Any], dense_first: int) -> None:
    """config mlp_layer_types (dense / sparse), else the first `dense_first` layers dense."""
    layers = lm["layers"]
    raw = c.data.get("mlp_layer_types")
    if raw is None:
        kinds = ["dense"] * min(dense_first, layers) + ["sparse"] * max(layers - dense_first, 0)
        c.note("layer_ffn", f"transformers {c.model_type} config: the first {dense_first} layers dense, then MoE")
    else:
        if not isinstance(raw, list) or len(raw) != layers or set(raw) - {"dense", "sparse"}:
            raise InvalidConfigValue(c.prefix + "mlp_layer_types", raw, f"{layers} entries of dense / sparse")
        kinds = raw
        c.note("layer_ffn", f"config.json {c.prefix}mlp_layer_types")
    lm["layer_ffn"] = tuple("moe" if k == "sparse" else "dense" for k in kinds)


def _no_bias(c: Cfg) -> None:
    if c.data.get("attention_bias"):
        raise InvalidConfigValue(c.prefix + "attention_bias", True, "false (MLA projections without biases)")


def glm4_moe_lite(c: Cfg) -> Adapted:
    """Glm4MoeLiteForCausalLM (GLM-4.7-Flash): MLA + routed and shared experts; mlp_layer_types, else one
    dense layer first (Glm4MoeLiteConfig)."""
    _no_bias(c)
    lm = _deepseek(c)
    _mlp_layer_types(c, lm, 1)
    return _finish(c, lm, no_window(c, lm["layers"]))


def _indexer_shared(c: Cfg, layers: int) -> tuple[int, ...]:
    """Layers whose indexer_types entry is "shared", as GlmMoeDsaConfig.__post_init__ resolves them: the list,
    else index_topk_pattern (F / S), else index_topk_freq and index_skip_topk_offset."""
    raw = c.data.get("indexer_types")
    if raw is None and c.data.get("index_topk_pattern") is not None:
        pattern = c.data["index_topk_pattern"]
        raw = [{"F": "full", "S": "shared"}.get(ch, ch) for ch in pattern] if isinstance(pattern, str) else pattern
        c.note("indexer", f"config.json {c.prefix}index_topk_pattern")
    if raw is None:
        freq = max(int(c.data.get("index_topk_freq") or 1), 1)
        offset = int(c.data.get("index_skip_topk_offset", 2))
        raw = ["full" if (max(i - offset + 1, 0) % freq) == 0 else "shared" for i in range(layers)]
        c.note("indexer", f"transformers GlmMoeDsaConfig: index_topk_freq {freq}, index_skip_topk_offset {offset}")
    elif "indexer" not in c.sources:
        c.note("indexer", f"config.json {c.prefix}indexer_types")
    if not isinstance(raw, list) or len(raw) != layers or set(raw) - {"full", "shared"}:
        raise InvalidConfigValue(c.prefix + "indexer_types", raw, f"{layers} entries of full / shared")
    return tuple(i for i, k in enumerate(raw) if k == "shared")


def glm_moe_dsa(c: Cfg) -> Adapted:
    """GlmMoeDsaForCausalLM (GLM-5): glm4_moe_lite's MLA + MoE with first_k_dense_replace dense layers, and the
    DSA indexer (GlmMoeDsaIndexer: wq_b, wk, k_norm LayerNorm, weights_proj) on its "full" layers."""
    _no_bias(c)
    lm = _deepseek(c)
    if not lm["mla"].q_lora_rank:
        raise InvalidConfigValue(c.prefix + "q_lora_rank", 0, "at least 1 (the indexer's wq_b reads the q latent)")
    _mlp_layer_types(c, lm, c.int("layer_ffn", "first_k_dense_replace", default=3, low=0, high=lm["layers"]))
    shared = _indexer_shared(c, lm["layers"])
    source = c.sources.get("indexer", "")
    lm["indexer"] = Indexer(heads=c.int("indexer", "index_n_heads", default=32),
                            head_dim=c.int("indexer", "index_head_dim", default=128),
                            top_k=c.int("indexer", "index_topk", default=2048, high=LIMITS["context"]),
                            shared_layers=shared)
    c.note("indexer", "config.json index_n_heads, index_head_dim, index_topk (absent: GlmMoeDsaConfig defaults); "
                      + source)
    return _finish(c, lm, no_window(c, lm["layers"]))
