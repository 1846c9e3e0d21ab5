"""KV bytes from the real KV heads and head dim (shared/reference/glm-family.md, quantization s2)."""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator import KV_TYPES, ModelSpec
from app.estimator.kv_cache import image_positions, kv_bytes
from app.estimator.spec import MLA, LanguageModel


def test_glm4v_bf16_is_40960_bytes_per_token(glm4v: ModelSpec):
    assert kv_bytes(glm4v.language_model, KV_TYPES["bf16"], 1) == 40_960
    assert kv_bytes(glm4v.language_model, KV_TYPES["bf16"], 8192) == 40_960 * 8192


def test_glm_chat_1m_is_80_kib_per_token(catalog: Catalog):
    assert kv_bytes(catalog.model("glm-4-9b-chat-1m").language_model, KV_TYPES["bf16"], 1) == 80 * 1024


@pytest.mark.parametrize(("slug", "bytes_per_element"), [
    ("fp32", 4), ("fp16", 2), ("bf16", 2), ("fp8", 1), ("q8_0", 1.0625), ("q5_1", 0.75), ("q5_0", 0.6875),
    ("q4_1", 0.625), ("q4_0", 0.5625), ("iq4_nl", 0.5625)])
def test_kv_element_sizes(slug: str, bytes_per_element: float):
    """llama.cpp --cache-type-k/-v sizes (reference s2)."""
    assert KV_TYPES[slug].bytes_for(4096) == 4096 * bytes_per_element


def test_one_glm4v_image_adds_1599_positions(glm4v: ModelSpec, catalog: Catalog):
    assert image_positions(glm4v, 1) == 1599
    assert glm4v.vision.encoder_tokens == 6401
    assert image_positions(catalog.model("glm-4-9b"), 0) == 0


def _lm(**kw) -> LanguageModel:
    base = dict(source="test", layers=4, hidden=64, heads=4, kv_heads=2, head_dim=16, ffn=96, ffn_kind="swiglu",
                vocab=100, tied_embeddings=True, qkv_bias=False, linear_bias=False, norm="rmsnorm",
                max_context=1 << 20, fused_qkv=False, dtype="bfloat16")
    return LanguageModel(**{**base, **kw})


def test_sliding_window_layers_are_capped():
    lm = _lm(sliding_window=100, sliding_window_layers=3)
    per_layer_token = 2 * 2 * 16 * 2
    assert kv_bytes(lm, KV_TYPES["bf16"], 1000) == per_layer_token * (1 * 1000 + 3 * 100)
    assert kv_bytes(lm, KV_TYPES["bf16"], 50) == per_layer_token * 4 * 50


def test_mla_caches_one_latent():
    lm = _lm(kv_heads=4, mla=MLA(kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128))
    assert kv_bytes(lm, KV_TYPES["bf16"], 10) == 4 * (512 + 64) * 2 * 10
