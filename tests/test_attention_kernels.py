"""The attention kernel as an input (attn_implementation): the same rows traced with each kernel
(model_specs/traces/attention/: native classes with eager, sdpa and SDPA held to its math kernel;
model_specs/traces/remote/: glm-4-9b-chat's own code with eager and sdpa). The difference our estimate makes
between two kernels equals the traced difference to the byte, so a CPU trace that ran another kernel than a
GPU would is corrected exactly."""

from __future__ import annotations

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator import estimate
from app.estimator.runtimes.attention import KERNELS, resolve
from app.estimator.schema import VramRequest
from app.estimator.traces import compare_trace, kernel_corrected_peak, load_traces

TRACES = load_traces(SPECS_DIR / "traces" / "attention") + load_traces(SPECS_DIR / "traces" / "remote")


def _pairs():
    """(row with another kernel, the sdpa row of the same model, code, context and batch)."""
    out = []
    for f in TRACES:
        sdpa = {(r.code, r.context, r.batch, r.images): r for r in f.rows if r.attn_implementation == "sdpa"}
        for r in f.rows:
            if r.attn_implementation != "sdpa" and (r.code, r.context, r.batch, r.images) in sdpa:
                out.append((r, sdpa[(r.code, r.context, r.batch, r.images)]))
    return out


PAIRS = _pairs()


def test_each_kernel_is_traced_beside_sdpa():
    kinds = {(r.code, r.attn_implementation) for r, _ in PAIRS}
    assert {("native", "eager"), ("native", "sdpa_math"), ("remote", "eager")} <= kinds
    for r, s in PAIRS:  # the kernels the CPU trace dispatched
        assert s.attention_kernels == ["_scaled_dot_product_flash_attention_for_cpu"]
        if r.attn_implementation == "sdpa_math":
            assert "_safe_softmax" in r.attention_kernels


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{r.label} {r.attn_implementation}" for r, _ in PAIRS])
def test_the_kernel_difference_is_reproduced_exactly(catalog: Catalog, pair):
    row, sdpa = pair
    spec = catalog.model(row.model)
    traced = row.peak_bytes - sdpa.peak_bytes
    assert traced > 0  # a materialized score matrix costs memory
    assert compare_trace(spec, row).estimated_peak - compare_trace(spec, sdpa).estimated_peak == traced
    # the correction: the row traced with one kernel, turned into the other's, equals that trace
    assert kernel_corrected_peak(spec, row, "sdpa") == sdpa.peak_bytes
    assert kernel_corrected_peak(spec, sdpa, row.attn_implementation) == row.peak_bytes


def test_the_default_is_what_transformers_runs_on_a_cuda_gpu(catalog: Catalog):
    # transformers 5.25 get_correct_attn_implementation: sdpa when the class supports it; the Gemma 2 and
    # gpt-oss classes default to eager; flash-attn only when asked
    assert resolve(None, eager_family=False) == "sdpa" and resolve(None, eager_family=True) == "eager"
    assert not KERNELS["sdpa"].scores and KERNELS["sdpa_math"].scores and KERNELS["eager"].scores
    spec = catalog.model("llama-3.1-8b")
    req = dict(model="llama-3.1-8b", context=32768)
    default = estimate(spec, VramRequest(**req))
    assert default.total_bytes == estimate(spec, VramRequest(**req, attn_implementation="sdpa")).total_bytes
    assert default.total_bytes == estimate(spec, VramRequest(**req, attn_implementation="flash_attention_2")
                                           ).total_bytes
    math = estimate(spec, VramRequest(**req, attn_implementation="sdpa_math"))
    eager = estimate(spec, VramRequest(**req, attn_implementation="eager"))
    assert default.total_bytes < math.total_bytes < eager.total_bytes
    assert any("math kernel" in a for a in math.assumptions)
