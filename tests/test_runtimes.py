"""Runtime memory models: the structure the reference describes (constants get calibrated later)."""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator import FORMATS, KV_TYPES, RUNTIMES, InvalidRequest, ModelSpec, VramRequest, estimate
from app.estimator.quantization import stored_weights
from app.estimator.runtimes import RuntimeInput

MiB = 1 << 20


def _input(spec: ModelSpec, slug: str, kv: str, sequence: int, **kw) -> RuntimeInput:
    base = dict(batch=1, images=0, gpu_count=1, flash_attention=True, gpu_memory=None)
    return RuntimeInput(spec, FORMATS[slug], stored_weights(spec, slug), KV_TYPES[kv], sequence, **{**base, **kw})


def test_llama_cpp_pads_kv_and_keeps_token_embd_on_host(glm4v: ModelSpec):
    e = estimate(glm4v, VramRequest(model="glm-4v-9b", quantization="q4_k_m", context=1000))
    assert e.detail.kv_cache_tokens == 1024
    assert e.breakdown.kv_cache == 1024 * 40 * 2 * 2 * 128 * 2
    w = stored_weights(glm4v, "q4_k_m")
    assert e.detail.weights_host_bytes == w.token_embd_bytes > 0
    # no image: mmproj not loaded; CUDA pads each tensor to 128 B and a quantized last row to 512 elements
    assert e.breakdown.weights == pytest.approx(w.language_bytes - w.token_embd_bytes, rel=1e-4)
    assert e.breakdown.weights >= w.language_bytes - w.token_embd_bytes
    with_image = estimate(glm4v, VramRequest(model="glm-4v-9b", quantization="q4_k_m", context=1000, images=1))
    assert with_image.breakdown.weights - e.breakdown.weights == w.vision_bytes


def test_llama_cpp_quantized_v_cache_needs_flash_attention(llama: ModelSpec):
    with pytest.raises(InvalidRequest) as err:
        estimate(llama, VramRequest(model="llama-3.1-8b", quantization="q4_k_m", kv_cache="q8_0",
                                    flash_attention=False))
    assert err.value.field == "flash_attention"


def test_transformers_activations_grow_linearly(catalog: Catalog):
    spec = catalog.model("glm-4-9b-chat")
    a = [estimate(spec, VramRequest(model=spec.slug, context=c)).breakdown.activations for c in (8192, 16384, 32768)]
    assert a[2] - a[1] == pytest.approx(2 * (a[1] - a[0]), rel=1e-6)


def test_transformers_counts_the_vision_pass(glm4v: ModelSpec):
    text = estimate(glm4v, VramRequest(model="glm-4v-9b", context=1024))
    image = estimate(glm4v, VramRequest(model="glm-4v-9b", context=1024, images=1))
    assert image.breakdown.activations > text.breakdown.activations
    assert image.breakdown.kv_cache - text.breakdown.kv_cache == 1599 * 40_960
    assert image.breakdown.weights == text.breakdown.weights == 2 * 13_906_320_896


def test_vllm_fills_its_budget_with_whole_blocks(llama: ModelSpec):
    e = estimate(llama, VramRequest(model="llama-3.1-8b", runtime="vllm", context=8192), [])
    assert e.detail.kv_cache_tokens % 16 == 0
    assert any("name a GPU" in w for w in e.warnings)
    from app.catalog import load_catalog
    gpus = load_catalog().gpus
    # vLLM 0.19: utilization 0.90 and the graph pool above the budget (0.34, the default release, is in
    # tests/test_vllm_releases.py)
    h = estimate(llama, VramRequest(model="llama-3.1-8b", runtime="vllm", context=8192, gpu="h200",
                                    vllm_version="0.19.0"), gpus)
    h200 = next(g for g in gpus if g.slug == "h200")
    # the budget (weights + activation + non-torch + KV) fills 0.90 of the GPU to within one block; the CUDA
    # context and the graph pool land above it (field case V1: real use ends a little above the fraction)
    outside = h.vllm.cuda_context_bytes + h.vllm.cuda_graph_bytes
    assert h.total_bytes - outside <= h200.memory_bytes * 0.90
    assert h.total_bytes - outside >= h200.memory_bytes * 0.90 - 16 * 131_072
    assert h.total_bytes == h.vllm.process_bytes
    assert h.detail.kv_capacity_tokens % 16 == 0
    assert h.detail.max_concurrency > 1


def test_runtime_defaults():
    assert FORMATS["q4_k_m"].runtimes[0] == "llama.cpp"
    assert FORMATS["bf16"].runtimes[0] == "transformers"
    assert set(RUNTIMES) == {"transformers", "llama.cpp", "vllm"}
