"""KV bytes with per-layer sliding windows and MLA, from the released configs' own numbers."""

from __future__ import annotations

import json

from app.catalog import SPECS_DIR
from app.catalog.importer import spec_from_config
from app.estimator.kv_cache import KV_TYPES, kv_bytes


def _config(slug: str) -> dict:
    return json.loads((SPECS_DIR / "configs" / slug / "config.json").read_text())


def test_gemma2_sliding_layers_hold_at_most_the_window():
    c = _config("gemma-2-9b-it")  # 42 layers, 8 KV heads x 256, sliding_window 4096, even layers slide
    lm = spec_from_config(c).language_model
    per_token_layer = 2 * c["num_key_value_heads"] * c["head_dim"] * 2  # K and V, fp16
    tokens = 8192
    expected = per_token_layer * (21 * tokens + 21 * min(tokens, c["sliding_window"]))
    assert kv_bytes(lm, KV_TYPES["fp16"], tokens) == expected
    assert kv_bytes(lm, KV_TYPES["fp16"], 1000) == per_token_layer * 42 * 1000  # below the window: all layers


def test_gpt_oss_alternating_window_of_128():
    c = _config("gpt-oss-20b")
    lm = spec_from_config(c).language_model
    per = 2 * c["num_key_value_heads"] * c["head_dim"] * 2
    sliding = c["layer_types"].count("sliding_attention")
    full = c["num_hidden_layers"] - sliding
    assert kv_bytes(lm, KV_TYPES["bf16"], 32768) == per * (full * 32768 + sliding * c["sliding_window"])


def test_deepseek_v3_caches_the_mla_latent():
    c = _config("deepseek-v3")
    lm = spec_from_config(c).language_model
    latent = c["kv_lora_rank"] + c["qk_rope_head_dim"]  # 512 + 64 per layer per token
    assert kv_bytes(lm, KV_TYPES["bf16"], 1000) == 2 * latent * c["num_hidden_layers"] * 1000


def test_qwen2_without_use_sliding_window_is_full_everywhere():
    c = _config("qwen2.5-7b-instruct")  # sliding_window 131072 but use_sliding_window false
    lm = spec_from_config(c).language_model
    assert lm.sliding_window_layers == 0


def test_layer_tokens_follow_the_pattern_and_sum_to_kv_bytes():
    from app.estimator.kv_cache import layer_tokens

    c = _config("gemma-2-9b-it")
    lm = spec_from_config(c).language_model
    per_layer = layer_tokens(lm, 8192)
    assert per_layer[:4] == [4096, 8192, 4096, 8192]  # layer 0 slides, layer 1 is global (Gemma 2)
    row = 2 * c["num_key_value_heads"] * c["head_dim"] * 2
    assert kv_bytes(lm, KV_TYPES["fp16"], 8192) == row * sum(per_layer)
