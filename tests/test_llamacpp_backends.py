"""llama.cpp per backend (2026 builds): G12 (Metal, --fit-print) and G13 (ROCm, Ollama 0.30, gpt-oss-120b MXFP4).

Expected values are the printed MiB of shared/reference/field-cases-2026.md (sources: llama.cpp PR 22171;
ollama issues 16416/16480). llama.cpp prints these figures truncated to whole MiB (common/fit.cpp divides
bytes by MiB), so "exact" below means ours // MiB == printed.

What is a check and what is a fit:
- model, context (KV) and output buffers: llama.cpp's arithmetic (and convert_hf_to_gguf's MXFP4 layout for
  gpt-oss), nothing fitted: a check;
- device compute buffer: the F16 KQ mask (llama-graph.cpp build_attn_inp_kq_mask) is from the source, but that
  the 2026 graph's peak is the logits plus one n_embd row was read off these two logs: a fit;
- host compute buffer: `host_rows` (rocm) and `host_copies` (metal) in llamacpp_backends were chosen to
  reproduce these two logs: a fit, not a check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient
from gguf.constants import GGML_QUANT_SIZES
from typer.testing import CliRunner

from app.catalog import Catalog
from app.catalog.importer import spec_from_config
from app.cli import cli
from app.estimator import ModelSpec, VramRequest, estimate
from app.estimator.gguf.rules import FILE_TYPES, language_types
from app.estimator.params import language_tensors
from app.estimator.runtimes.llamacpp_backends import BACKENDS
from app.estimator.runtimes.llamacpp_buffers import catalog_tensors
from app.estimator.schema import LlamaBackend, VramEstimate

MiB = 1 << 20
CONFIGS = Path(__file__).parent / "fixtures" / "configs"


def _mib(e: VramEstimate) -> dict[tuple[str, str], int]:
    assert e.llamacpp is not None
    return {(b.name, b.device): b.bytes // MiB for b in e.llamacpp.buffers}


def _within(ours: int, printed: int, share: float = 0.03) -> bool:
    return abs(ours - printed) <= share * printed


@pytest.fixture(scope="module")
def gemma3_4b() -> ModelSpec:
    """google/gemma-3-4b-it config.json (tests/fixtures/configs/gemma-3-4b-it.json; its source in README.md)."""
    return spec_from_config(json.loads((CONFIGS / "gemma-3-4b-it.json").read_text()), repo="google/gemma-3-4b-it")


def g12(spec: ModelSpec) -> VramEstimate:
    """`llama-fit-params -m ggml-model-f16.gguf -c 32768 --fit-print on` on Metal: FA auto (on), n_ubatch 512."""
    return estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="f16", n_ctx=32768,
                                      flash_attention=True, backend="metal"))


def g13(catalog: Catalog) -> VramEstimate:
    """Ollama 0.30 llama-server: n_ctx 262144 over 2 sequences (not unified), n_batch = n_ubatch 1024, FA on."""
    spec = catalog.model("gpt-oss-120b")
    return estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="mxfp4_moe",
                                      n_ctx=262144, n_parallel=2, batch=2, n_batch=1024, n_ubatch=1024,
                                      flash_attention=True, backend="rocm", free_memory=120459 * MiB))


def test_g12_metal_fit_print_every_figure(gemma3_4b: ModelSpec):
    """Printed: `MTL0 7401 814 517` and `host 1280 0 154`."""
    e = g12(gemma3_4b)
    assert e.llamacpp is not None and e.llamacpp.fit_print == ["MTL0 7401 814 517", "Host 1280 0 154"]
    b = _mib(e)
    assert b["model", "gpu"] == 7401 and b["model", "host"] == 1280  # check (tied output duplicated onto MTL0)
    assert b["kv", "gpu"] + b["kv", "host"] == 814 and b["kv", "host"] == 0  # check
    assert _within(b["compute", "gpu"], 517) and b["compute", "gpu"] == 517  # F16 mask: source; peak rule: fit
    assert _within(b["compute", "host"], 154) and b["compute", "host"] == 154  # fit (metal host_copies)


def test_g13_rocm_gpt_oss_120b_every_figure(catalog: Catalog):
    """Printed: ROCm0 model 61223, context 9306, compute 796; Host 1104 / 0 / 281; output 1.53 MiB;
    `projected to use 71326 MiB of device memory vs. 120459 MiB of free device memory`."""
    e = g13(catalog)
    b = _mib(e)
    assert b["model", "gpu"] == 61223 and b["model", "host"] == 1104  # check: MXFP4 experts, F16 rest
    assert b["kv", "gpu"] == 9306 and b["kv", "host"] == 0  # check: 9216 + 90 (iSWA)
    assert round(next(x.bytes for x in e.llamacpp.buffers if x.name == "output") / MiB, 2) == 1.53  # check
    assert _within(b["compute", "gpu"], 796) and b["compute", "gpu"] == 796  # F16 mask: source; peak: fit
    assert _within(b["compute", "host"], 281) and b["compute", "host"] == 281  # fit (rocm host_rows)
    fit = e.llamacpp.fit
    assert fit is not None and fit.projected // MiB == 71326  # what common_params_fit_impl printed
    assert fit.status == "unchanged" and fit.fit_print == ["ROCm0 61223 9306 796", "Host 1104 0 281"]


def test_cuda_default_is_unchanged_by_the_backend_field(catalog: Catalog):
    spec = catalog.model("llama-3.1-8b-instruct")
    req = {"model": spec.slug, "quantization": "q4_k_m", "n_ctx": 8192, "runtime": "llama.cpp"}
    assert estimate(spec, VramRequest(**req)).llamacpp == estimate(spec, VramRequest(**req, backend="cuda")).llamacpp


def test_gpt_oss_mxfp4_tensors_as_convert_hf_to_gguf_writes_them(catalog: Catalog):
    """convert_hf_to_gguf.py GptOssModel: experts repacked as GGML MXFP4 (32 values in 17 bytes: gguf
    GGML_QUANT_SIZES); biases, router, norms and sinks F32; other matrices --outtype (F16)."""
    for slug in ("gpt-oss-20b", "gpt-oss-120b"):
        lm = catalog.model(slug).language_model
        tensors = language_tensors(lm)
        ggml = language_types(lm, tensors, FILE_TYPES["mxfp4_moe"])
        types = {t.name: g.name for t, g in zip(tensors, ggml, strict=True)}
        assert types["blk.0.ffn_gate_exps.weight"] == types["blk.0.ffn_down_exps.weight"] == "MXFP4"
        assert types["blk.0.ffn_down_exps.bias"] == types["blk.0.ffn_gate_inp.weight"] == "F32"
        assert types["blk.0.attn_sinks.weight"] == types["blk.0.attn_norm.weight"] == "F32"
        assert types["token_embd.weight"] == types["output.weight"] == types["blk.0.attn_q.weight"] == "F16"
        e = estimate(catalog.model(slug), VramRequest(model=slug, runtime="llama.cpp", quantization="mxfp4_moe"))
        assert e.llamacpp is not None and e.detail.weights_host_bytes == 201088 * 2880 * 2  # token_embd F16


def test_model_buffer_padding_per_backend(catalog: Catalog):
    """ggml-cuda (CUDA, ROCm; get_alloc_size) pads a quantized tensor's last row to a multiple of 512 elements
    and aligns to 128 B; ggml-metal pads nothing and aligns to 32 B. Expected bytes from those two rules over
    the file's device tensors (every tensor but token_embd; gpt-oss's output is untied)."""
    spec = catalog.model("gpt-oss-20b")
    tensors = catalog_tensors(spec, "q4_k_m")

    def pad(n: int, to: int) -> int:
        return -(-n // to) * to

    def device_bytes(row_padding: int, align: int) -> int:
        total = 0
        for t in tensors:
            if t.name == "token_embd.weight":
                continue
            block, size = GGML_QUANT_SIZES[t.ggml_type]
            extra = (row_padding - t.row % row_padding) * size // block if row_padding and block > 1 \
                and t.row % row_padding else 0
            total += pad(t.nbytes + extra, align)
        return total

    req = {"model": spec.slug, "runtime": "llama.cpp", "n_ctx": 4096, "quantization": "q4_k_m"}
    rocm, metal = (estimate(spec, VramRequest(**req, backend=b)).llamacpp for b in ("rocm", "metal"))
    assert rocm is not None and metal is not None
    assert rocm.buffers[0].bytes == device_bytes(512, 128) and metal.buffers[0].bytes == device_bytes(0, 32)
    assert rocm.buffers[0].bytes > metal.buffers[0].bytes and rocm.buffers[1].bytes == metal.buffers[1].bytes


def test_cpu_backend_offloads_nothing(catalog: Catalog):
    spec = catalog.model("llama-3.1-8b-instruct")
    e = estimate(spec, VramRequest(model=spec.slug, quantization="q4_k_m", runtime="llama.cpp", backend="cpu"))
    assert e.llamacpp is not None and e.llamacpp.n_gpu_layers == 0 and e.breakdown.weights == 0


def test_backend_through_every_door(client: TestClient):
    body = {"model": "gpt-oss-20b", "runtime": "llama.cpp", "quantization": "mxfp4_moe", "backend": "metal"}
    r = client.post("/api/vram", json=body)
    assert r.status_code == 200 and r.json()["llamacpp"]["device"] == "MTL0"
    r = client.get("/api/vram", params=body)
    assert r.status_code == 200 and r.json()["llamacpp"]["backend"] == "metal"
    r = client.post("/api/vram", data=body)
    assert r.status_code == 200 and r.json()["llamacpp"]["backend"] == "metal"
    out = CliRunner().invoke(cli, ["estimate", "gpt-oss-20b", "--runtime", "llama.cpp", "--quantization",
                                   "mxfp4_moe", "--backend", "rocm", "--json"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and json.loads(out.stdout)["llamacpp"]["device"] == "ROCm0"


def test_unknown_backend_is_a_422_naming_the_field(client: TestClient):
    r = client.get("/api/vram", params={"model": "gpt-oss-20b", "runtime": "llama.cpp", "backend": "opencl"})
    assert r.status_code == 422
    text = r.text
    assert "backend" in text and all(name in text for name in BACKENDS)


def test_l2_vulkan_and_l4_style_backends_keep_the_2025_figures(catalog: Catalog):
    """L2 (field-cases.md) was printed by a Vulkan build (b5781, RTX 4080): with backend vulkan the model, KV and
    output buffers still match to the printed 0.01 MiB (Q4_0 rows of 4096 and 14336 need no padding; Vulkan's
    alignment changes nothing here) and the compute buffers stay within 5% (the 2025 rules were fitted on L1-L4)."""
    spec = catalog.model("llama-3.1-8b-instruct")
    e = estimate(spec, VramRequest(model=spec.slug, quantization="q4_0", n_ctx=16384, n_batch=2048, n_ubatch=1024,
                                   flash_attention=True, backend="vulkan"))
    assert e.llamacpp is not None and e.llamacpp.device == "Vulkan0"
    b = {(x.name, x.device): round(x.bytes / MiB, 2) for x in e.llamacpp.buffers}
    assert b["model", "gpu"] == 4155.99 and b["model", "host"] == 281.81
    assert b["kv", "gpu"] == 2048.00 and b["output", "host"] == 0.49
    assert _within(b["compute", "gpu"], 613.01, 0.05) and _within(b["compute", "host"], 80.01, 0.05)


def test_request_names_every_backend_of_the_registry():
    assert set(get_args(LlamaBackend)) == set(BACKENDS)


def test_mxfp4_moe_on_a_dense_model_is_a_422(client: TestClient):
    r = client.get("/api/vram", params={"model": "llama-3.1-8b-instruct", "quantization": "mxfp4_moe"})
    assert r.status_code == 422 and "quantization" in r.text and "expert" in r.text
