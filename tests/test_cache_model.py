"""The per-layer cache model (app.estimator.cache) against what the runtimes themselves keep.

transformers: model_specs/traces/cache/*.json, written by `python -m app.measure cache-trace --all` (the real
classes run the prefill on fake tensors; every cache layer's keys/values and conv/recurrent state storages are
measured). llama.cpp: its own state-size rules (src/llama-hparams.cpp n_embd_r / n_embd_s, F32 r and s
states, max(1, n_seq_max) cells in llama_memory_recurrent) applied here to the GGUF keys convert_hf_to_gguf.py
writes from config.json, not to our spec.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator import VramRequest, estimate
from app.estimator.cache import kv_bytes, layer_caches
from app.estimator.kv_cache import KV_TYPES, kv_row_elements
from app.estimator.runtimes.transformers import state_rule
from app.estimator.spec import LanguageModel
from app.measure.cache_trace import CacheTraceFile

TRACES = sorted((SPECS_DIR / "traces" / "cache").glob("*.json"))
CONFIGS = SPECS_DIR / "configs"


def _trace(path: Path) -> CacheTraceFile:
    return CacheTraceFile.model_validate_json(path.read_text())


def test_every_recurrent_family_is_traced():
    traced = {p.stem for p in TRACES}
    assert {"qwen3.5-27b", "qwen3.6-35b-a3b", "qwen3-next-80b-a3b-instruct", "nemotron-3-nano-30b-a3b",
            "lfm2.5-vl-1.6b", "deepseek-v4-flash"} <= traced


def _layer_row(layer, kv_type, rule, context: int, batch: int) -> tuple[int, int, int, int, int]:
    """(kv, conv, recurrent, compressed, compressor) bytes of one layer as transformers holds it right after the
    prefill (every prompt position, app.estimator.cache Row.positions with windows=False), for `batch` sequences."""
    def rows(keep) -> int:
        return sum(kv_type.bytes_for(r.elements) * r.positions(context, layer.span, False)
                   for r in layer.rows if keep(r)) * batch

    def states(*names) -> int:
        return sum(rule.bytes(s) for s in layer.states if s.name in names) * batch

    return (rows(lambda r: r.every == 1 and not r.prefill_only), states("conv"), states("recurrent", "ssm"),
            rows(lambda r: r.every > 1),  # DeepSeek-V4 compressed entries and indexer keys
            rows(lambda r: r.prefill_only) + states("overlap_kv", "overlap_gate"))  # its compressor's buffers


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.stem)
def test_per_layer_kv_and_state_equal_transformers_cache(path: Path, catalog: Catalog):
    trace = _trace(path)
    spec = catalog.model(trace.model)
    lm = spec.language_model
    for row in trace.rows:
        rule = state_rule(2 if row.quantization in ("bf16", "fp16") else 4)
        kv_type = KV_TYPES[row.quantization]
        ours = layer_caches(lm)
        assert len(ours) == len(row.layers)
        for layer, traced in zip(ours, row.layers, strict=True):
            ours_row = _layer_row(layer, kv_type, rule, row.context, row.batch)
            assert ours_row == (traced.kv_bytes, traced.conv_bytes, traced.recurrent_bytes, traced.compressed_bytes,
                                traced.compressor_bytes), (layer.index, traced.cache_class)
        e = estimate(spec, VramRequest(model=spec.slug, runtime="transformers", context=row.context,
                                       batch=row.batch, quantization=row.quantization), catalog.gpus)
        overlap = sum(layer.state_bytes(rule) for layer in ours if layer.kind == "compressed") * row.batch
        assert e.cache.state_bytes == row.state_bytes + overlap
        assert e.cache.kv_bytes + e.cache.state_bytes == row.kv_bytes + row.state_bytes + row.compressed_bytes
        assert e.breakdown.kv_cache == row.kv_bytes + row.state_bytes + row.compressed_bytes


def _gguf_ssm(config: dict) -> dict[str, int]:
    """The ssm.* / shortconv keys convert_hf_to_gguf.py writes for a text config: Qwen3NextModel (and
    Qwen3_5TextModel, its subclass): conv_kernel linear_conv_kernel_dim, state_size linear_key_head_dim,
    group_count linear_num_key_heads, inner_size linear_value_head_dim x linear_num_value_heads; NemotronH
    (Mamba2): conv_kernel, ssm_state_size, n_groups, inner = mamba_num_heads x mamba_head_dim; LFM2:
    shortconv_l_cache conv_L_cache."""
    c = config.get("text_config", config)
    if "linear_conv_kernel_dim" in c:
        return {"d_conv": c["linear_conv_kernel_dim"], "d_state": c["linear_key_head_dim"],
                "n_group": c["linear_num_key_heads"],
                "d_inner": c["linear_value_head_dim"] * c["linear_num_value_heads"]}
    if "conv_L_cache" in c:
        return {"l_cache": c["conv_L_cache"], "n_embd": c["hidden_size"]}
    return {"d_conv": c["conv_kernel"], "d_state": c["ssm_state_size"], "n_group": c["n_groups"],
            "d_inner": c["mamba_num_heads"] * c["mamba_head_dim"]}


def _llamacpp_rs_bytes(h: dict[str, int]) -> int:
    """llama_hparams::n_embd_r() + n_embd_s(), F32 (recurrent_type_r = recurrent_type_s = GGML_TYPE_F32)."""
    if "l_cache" in h:
        return 4 * h["n_embd"] * (h["l_cache"] - 1)  # LFM2: n_embd_s = ssm_d_state x ssm_d_inner = 0
    r = (h["d_conv"] - 1) * (h["d_inner"] + 2 * h["n_group"] * h["d_state"])
    s = h["d_state"] * h["d_inner"]
    return 4 * (r + s)


@pytest.mark.parametrize("slug", ["qwen3.5-27b", "qwen3.6-35b-a3b", "qwen3-next-80b-a3b-instruct",
                                  "nemotron-3-nano-30b-a3b", "nemotron-h-56b-base-8k", "lfm2.5-vl-1.6b"])
@pytest.mark.parametrize("parallel", [1, 3])
def test_llamacpp_recurrent_state_follows_its_source(slug: str, parallel: int, catalog: Catalog):
    spec = catalog.model(slug)
    per_layer = _llamacpp_rs_bytes(_gguf_ssm(json.loads((CONFIGS / slug / "config.json").read_text())))
    recurrent = sum(1 for x in layer_caches(spec.language_model) if x.states)
    e = estimate(spec, VramRequest(model=slug, runtime="llama.cpp", quantization="q8_0", context=4096,
                                   n_parallel=parallel), catalog.gpus)
    assert {x.state_bytes_per_sequence for x in e.cache.layers if x.kind != "none" and not x.kv_bytes_per_token} \
        == {per_layer}
    assert e.cache.state_bytes == recurrent * per_layer * parallel  # max(1, n_seq_max) cells, all on the GPU
    assert {b.bytes for b in e.llamacpp.buffers if b.name == "rs" and b.device == "gpu"} == {e.cache.state_bytes}


def test_state_does_not_grow_with_context(catalog: Catalog):
    spec = catalog.model("qwen3.6-35b-a3b")
    for runtime, fmt in (("transformers", "bf16"), ("llama.cpp", "q8_0"), ("vllm", "bf16")):
        short, long = (estimate(spec, VramRequest(model=spec.slug, runtime=runtime, context=n, quantization=fmt),
                                catalog.gpus) for n in (4096, 65536))
        assert short.cache.state_bytes == long.cache.state_bytes > 0
        assert long.cache.kv_bytes > short.cache.kv_bytes


def test_older_specs_keep_one_uniform_row(catalog: Catalog):
    """Every spec without per-layer fields: each layer that caches holds kv_row_elements, as before."""
    for spec in catalog.models.values():
        lm: LanguageModel = spec.language_model
        if lm.layer_types is not None and set(lm.layer_types) - {"full", "sliding"} or lm.kv_geometry or lm.indexer:
            continue  # per-layer kinds, per-layer-type KV geometry (Gemma 4), indexer keys: not one uniform row
        assert {x.row_elements for x in layer_caches(lm)} == {kv_row_elements(lm)}, spec.slug


def test_kv_geometry_k_eq_v_shared_and_chunked_layers():
    """Gemma 4 style full layers (2 KV heads x 512, K = V), sliding 8 x 256, the last two layers shared;
    Llama 4 style chunked layers keep attention_chunk_size positions."""
    lm = LanguageModel(
        source="test", layers=6, hidden=64, heads=8, kv_heads=8, head_dim=256, ffn=64, ffn_kind="geglu", vocab=10,
        tied_embeddings=True, qkv_bias=False, linear_bias=False, norm="rmsnorm", max_context=8192, fused_qkv=False,
        sliding_window=1024, sliding_window_layers=4, dtype="bfloat16", kv_shared_layers=2,
        layer_types=("sliding", "sliding", "full", "sliding", "sliding", "full"),
        kv_geometry={"full": {"kv_heads": 2, "head_dim": 512, "k_eq_v": True}})
    layers = layer_caches(lm)
    assert [x.kind for x in layers] == ["attention"] * 4 + ["shared", "shared"]
    assert (layers[4].source, layers[5].source) == (3, 2)
    assert layers[2].row_elements == 2 * 512 and layers[0].row_elements == 2 * 8 * 256
    # 3 sliding layers x 1,024 positions x (K + V) 8 x 256 x 2 B, plus one full layer x 4,096 x (K = V) 2 x 512 x 2 B
    assert kv_bytes(lm, KV_TYPES["bf16"], 4096) == 3 * 1024 * 8192 + 4096 * 2048 == 33_554_432
    chunked = lm.model_copy(update={"layer_types": ("chunked",) * 6, "sliding_window_layers": 0,
                                    "attention_chunk_size": 8192, "kv_geometry": {}, "kv_shared_layers": 0})
    assert [x.positions(20000) for x in layer_caches(chunked)] == [8192] * 6


def test_api_answers_kv_and_state_apart_and_refuses_bad_layer_types():
    from fastapi.testclient import TestClient

    from app.main import create_app

    client = TestClient(create_app())
    config = json.loads((CONFIGS / "qwen3.5-27b" / "config.json").read_text())
    r = client.post("/api/vram", json={"config": config, "context": 8192, "batch": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["cache"]["kv_bytes"] + body["cache"]["state_bytes"] == body["breakdown"]["kv_cache"]
    assert body["total_bytes"] == sum(body["breakdown"].values())
    assert body["cache"]["state_bytes"] == 2 * body["cache"]["state_bytes_per_sequence"] > 0
    bad = json.loads(json.dumps(config))
    bad["text_config"]["layer_types"][0] = "mamba"
    r = client.post("/api/vram", json={"config": bad})
    assert r.status_code == 422 and "layer_types" in r.text and "linear_attention / full_attention" in r.text
