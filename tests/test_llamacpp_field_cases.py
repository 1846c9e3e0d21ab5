"""Field cases L1-L4 (shared/reference/field-cases.md): buffer sizes real llama.cpp printed on GPUs.

Expected values are the printed MiB (2 decimals). Model, KV and output buffers are llama.cpp's own
arithmetic and must match to the printed digit. Compute buffers are within 5%; note that our CUDA compute
model's few constants (n_embd rows beside the peak tensor, the FA mask forms) were chosen to reproduce
these very logs (builds 2961 to 5781), so L1-L4 calibrate it rather than test it independently; the
CPU grid (test_llamacpp_grid.py) is the independent check of its structure.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.catalog import Catalog
from app.estimator import ModelSpec, VramRequest, estimate
from app.estimator.gguf.arch import ARCHS
from app.estimator.kv_cache import KV_TYPES
from app.estimator.llamacpp_check import mib
from app.estimator.runtimes.llamacpp_buffers import kv_cache
from app.estimator.runtimes.llamacpp_compute import compute_buffers
from app.estimator.runtimes.llamacpp_context import resolve_context
from app.estimator.schema import VramEstimate

SPECS = Path(__file__).resolve().parent.parent / "model_specs" / "llamacpp" / "specs"


def _buffers(e: VramEstimate) -> dict[tuple[str, str], float]:
    assert e.llamacpp is not None
    return {(b.name, b.device): mib(b.bytes) for b in e.llamacpp.buffers}


def _near(ours: float, printed: float) -> bool:
    return abs(ours - printed) <= 0.05 * printed


def test_l1_llama31_8b_q4_k_m_four_sequences_cuda(catalog: Catalog):
    """Ollama 0.5.4 runner, RTX 4090: n_ctx 8192 as 4 x 2048 (one KV pool then), FA off, embeddings on
    (its output buffer holds logits + embeddings: 4 x (128256 + 4096) floats = 2.02 MiB)."""
    spec = catalog.model("llama-3.1-8b-instruct")
    e = estimate(spec, VramRequest(model=spec.slug, quantization="q4_k_m", context=2048, n_parallel=4,
                                   kv_unified=True, n_batch=2048, n_ubatch=512, flash_attention=False,
                                   embeddings=True))
    b = _buffers(e)
    assert b["model", "host"] == 281.81 and b["model", "gpu"] == 4403.49
    assert b["kv", "gpu"] == 1024.00 and b["output", "host"] == 2.02
    assert _near(b["compute", "gpu"], 560.00) and _near(b["compute", "host"], 24.01)


def test_l2_llama31_8b_q4_0_16k_flash_attention(catalog: Catalog):
    """Mainline build 5781 (Vulkan, RTX 4080): n_ctx 16384, n_ubatch 1024, FA on."""
    spec = catalog.model("llama-3.1-8b-instruct")
    e = estimate(spec, VramRequest(model=spec.slug, quantization="q4_0", n_ctx=16384, n_batch=2048,
                                   n_ubatch=1024, flash_attention=True))
    b = _buffers(e)
    assert b["model", "host"] == 281.81 and b["model", "gpu"] == 4155.99
    assert b["kv", "gpu"] == 2048.00 and b["output", "host"] == 0.49
    assert _near(b["compute", "gpu"], 613.01) and _near(b["compute", "host"], 80.01)


def test_l3_mistral_7b_q2_k_32000_context():
    """Build 2961 (CUDA): n_ctx 32000, n_batch 1024, FA off. Its GPU model buffer (2898.55 MiB) is not
    asserted: the file was quantized in 2023 with older Q2_K rules (the case gives no type mix), and today's
    llama-quantize Q2_K of the same model is smaller; the header upload (/api/gguf) is exact for such files."""
    spec = ModelSpec.model_validate_json((SPECS / "mistral-7b-instruct-v0.2.json").read_bytes())
    e = estimate(spec, VramRequest(model=spec.slug, quantization="q2_k", n_ctx=32000, n_batch=1024,
                                   n_ubatch=512, flash_attention=False))
    b = _buffers(e)
    assert b["model", "host"] == 41.02  # token_embd at Q2_K
    assert b["kv", "gpu"] == 4000.00 and b["output", "host"] == 0.12
    assert _near(b["compute", "gpu"], 2094.50) and _near(b["compute", "host"], 70.51)


def test_l4_qwen2_7b_shape_q4_k_m_large_ubatch(catalog: Catalog):
    """ipex-llm SYCL build: `-c 2500` gave 2528 cells (that build padded to 32; today's pads to 256), n_batch =
    n_ubatch = 2528, FA off. DeepSeek-R1-Distill-Qwen-7B has Qwen2.5-7B's shape (28 layers, hidden 3584,
    4 KV heads, FFN 18944, vocab 152064), so the catalog's qwen2.5-7b-instruct stands in for it."""
    spec = catalog.model("qwen2.5-7b-instruct")
    req = VramRequest(model=spec.slug, quantization="q4_k_m", n_ctx=2528, n_batch=2528, n_ubatch=2528,
                      flash_attention=False)
    b = _buffers(estimate(spec, req))
    assert b["model", "host"] == 292.36 and b["model", "gpu"] == 4168.09
    lm = spec.language_model
    ctx = resolve_context(lm, req, 2528, KV_TYPES["fp16"], False, 0)
    that_build = dataclasses.replace(ctx, n_ctx=2528, n_ctx_seq=2528)  # its padding of 32, not 256
    assert mib(kv_cache(lm, that_build, ARCHS["qwen2"]).gpu) == 138.25
    comp = compute_buffers(lm, that_build, ARCHS["qwen2"])
    assert _near(mib(comp.gpu), 1501.00) and _near(mib(comp.host), 58.97)


def test_reference_kq_share_without_flash_attention(llama: ModelSpec):
    """quantization-and-runtimes.md s2: a 32-head model at n_ctx 32768 without FA: 2048 MiB KQ of 2144 MiB."""
    e = estimate(llama, VramRequest(model=llama.slug, quantization="q4_k_m", n_ctx=32768, flash_attention=False))
    assert _near(mib(e.breakdown.activations), 2144)
