"""vLLM releases 0.7 to 0.34 and the one start verdict.

Expected values are what vLLM printed (field cases G02, G05 in shared/reference/field-cases-2026.md) or
what its code says (vLLM 0.34.0 wheel: vllm/config/cache.py, vllm/v1/worker/gpu_worker.py,
vllm/v1/worker/extensible_kv_cache.py). Which constant was fitted on which case is said at each test:
a constant fitted on a case is a fit, not a check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.catalog import Catalog
from app.estimator import VramRequest, estimate
from app.estimator.runtimes import vllm_profiles
from app.estimator.runtimes.vllm_memory import Stage
from app.estimator.solve import largest_context

GiB = 1 << 30


def _vllm(catalog: Catalog, model: str, **req):
    return estimate(catalog.model(model), VramRequest(model=model, runtime="vllm", **req), catalog.gpus)


@pytest.mark.parametrize("minor", range(7, 35))
def test_every_release_from_0_7_to_0_34_is_answered(catalog: Catalog, minor: int):
    e = _vllm(catalog, "llama-3.1-8b", gpu="h100-80gb", context=4096, vllm_version=f"0.{minor}.0")
    assert e.vllm.starts is True and e.vllm.kv_tokens > 0
    assert not [w for w in e.warnings if "newer than" in w]


def test_default_release_is_the_newest_and_uncalibrated_ranges_say_so(catalog: Catalog):
    e = _vllm(catalog, "llama-3.1-8b", gpu="h100-80gb", context=4096)
    assert e.vllm.version == "0.34" and e.vllm.extensible_kv_cache and not e.vllm.calibrated
    assert any("not checked against a startup log" in a for a in e.assumptions)


def test_default_utilization_per_release(catalog: Catalog):
    """vllm/config/cache.py: 0.9 in 0.19.0 (:41); 0.92 from 0.20.0; 0.34.0: None -> 1.0 with the extensible
    KV cache, DEFAULT_GPU_MEMORY_UTILIZATION 0.92 without it (:186, :495)."""
    util = {v: _vllm(catalog, "llama-3.1-8b", gpu="h100-80gb", vllm_version=v).vllm.gpu_memory_utilization
            for v in ("0.19.0", "0.20.0", "0.27.0", "0.34.0")}
    assert util == {"0.19.0": 0.90, "0.20.0": 0.92, "0.27.0": 0.92, "0.34.0": 1.0}
    off = _vllm(catalog, "llama-3.1-8b", gpu="h100-80gb", vllm_version="0.34.0", enable_extensible_kv_cache=False)
    assert off.vllm.gpu_memory_utilization == 0.92 and not off.vllm.extensible_kv_cache
    given = _vllm(catalog, "llama-3.1-8b", gpu="h100-80gb", vllm_version="0.34.0", gpu_memory_utilization=0.9)
    assert given.vllm.gpu_memory_utilization == 0.9


def test_switches_that_a_release_lacks_are_refused(client):
    base = {"model": "llama-3.1-8b", "runtime": "vllm", "gpu": "h100-80gb"}
    r = client.get("/api/vram", params={**base, "vllm_version": "0.21.0", "enable_extensible_kv_cache": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "enable_extensible_kv_cache"
    r = client.get("/api/vram", params={**base, "vllm_version": "0.17.0", "memory_profiler_estimate_cudagraphs": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "memory_profiler_estimate_cudagraphs"


def test_newer_release_answered_with_the_newest_profile_and_a_warning(catalog: Catalog):
    e = _vllm(catalog, "llama-3.1-8b", gpu="h100-80gb", vllm_version="0.41.2")
    assert e.vllm.version == vllm_profiles.PROFILES[-1].name
    assert any("0.41.2 is newer than the newest release modelled" in w for w in e.warnings)


def test_g02_qwen3_8b_on_an_rtx_a5000_vllm_0_21(catalog: Catalog):
    """G02 (https://github.com/LMCache/LMCache/issues/3430, vLLM 0.21.0): "Estimated CUDA graph memory: 0.52
    GiB total", "Available KV cache memory: 6.37 GiB", "GPU KV cache size: 46,368 tokens", "Maximum
    concurrency for 16,384 tokens per request: 2.83x", "--gpu-memory-utilization=0.9764 is equivalent to
    --gpu-memory-utilization=0.9543 ... increase --gpu-memory-utilization to 0.9984".

    Fitted on G02: the CUDA-graph estimate per layer (GRAPH_ESTIMATE_PER_LAYER_GIB), and the A5000's CUDA
    total (derived from G02's utilization pair; gpus.json says so). Checked, not fitted: weights, activation
    peak and non-torch memory (the 0.19 fits), hence the KV budget, tokens and concurrency."""
    d = _vllm(catalog, "qwen3-8b", gpu="rtx-a5000", context=16384, gpu_memory_utilization=0.9764,
              vllm_version="0.21.0").vllm
    assert d.cuda_graph_estimate_bytes / GiB == pytest.approx(0.52, abs=0.005)  # fit
    assert d.kv_budget_bytes / GiB == pytest.approx(6.37, rel=0.02)
    assert d.kv_tokens == pytest.approx(46_368, rel=0.02)
    assert d.max_concurrency == pytest.approx(2.83, rel=0.02)
    assert d.equivalent_gpu_memory_utilization == pytest.approx(0.9543, abs=0.0002)
    assert d.suggested_gpu_memory_utilization == pytest.approx(0.9984, abs=0.0002)
    # the same request as 0.20 accounted it before the estimate moved in: the estimate more KV
    old = _vllm(catalog, "qwen3-8b", gpu="rtx-a5000", context=16384, gpu_memory_utilization=0.9764,
                vllm_version="0.19.0", max_num_seqs=256).vllm
    assert old.kv_budget_bytes - d.kv_budget_bytes == d.cuda_graph_estimate_bytes


def test_g05_ledger_budget_arithmetic():
    """G05 (https://github.com/noonghunna/club-3090/pull/1139): "Free memory on device (23.15/23.56 GiB) ...
    Desired GPU memory utilization is (0.92, 21.67 GiB). Actual usage is 15.25 GiB for consumed memory
    (weights + non-torch), 1.66 GiB for peak activation, and 0.14 GiB for CUDAGraph memory ... Current kv
    cache memory in use is 4.76 GiB"; "CUDA graph pool memory: 0.14 GiB (actual), 0.2 GiB (estimated)".
    The model (Qwen3.8-27B) is not in the catalog: this checks our budget formula fed with the printed
    terms (printed peak activation = transient + estimate, vLLM's peak_activation_memory)."""
    total, estimate_ = round(23.56 * GiB), round(0.2 * GiB)
    stage = Stage(0, 1, round(15.25 * GiB), 0, round(1.66 * GiB) - estimate_, 0, 1, estimate_, estimate_)
    requested = int(0.92 * total)
    assert requested / GiB == pytest.approx(21.67, abs=0.01)
    assert stage.budget(requested) / GiB == pytest.approx(4.76, rel=0.02)


def test_extensible_cache_matches_measure_kv_cache_bytes():
    """0.34 measure_kv_cache_bytes (extensible_kv_cache.py:592), expected values from running vLLM 0.34.0's own
    function (tests/fixtures/vllm/measure_kv_cache_bytes.txt: the command and its output)."""
    text = (Path(__file__).parent / "fixtures" / "vllm" / "measure_kv_cache_bytes.txt").read_text()
    cases = [{**ast.literal_eval(ln.rsplit(" ", 1)[0]), "expected": int(ln.rsplit(" ", 1)[1])}
             for ln in text.splitlines() if ln.startswith("{")]
    assert len(cases) == 3
    for case in cases:
        init_free, free, committed = case["init_free_memory"], case["free_memory"], case["committed_bytes"]
        used = init_free - free - committed  # weights + non-torch + graph pool, as measured
        peak = case.get("transient_peak_bytes", 0)
        if case.get("torch_reserve_growth_bytes", 0) > peak:
            continue  # our model has no torch reservation growth beyond the transient peak
        stage = Stage(0, 1, used, 0, peak, 0, 1, 0, 0)
        assert max(stage.budget(case["requested_memory"], free=init_free), 0) == case["expected"], case


# --- one verdict: the 2x RTX 4090 case (Llama-3.1-8B, util 0.95, 32,768 tokens) ---
CASE_4090 = {"gpu": "rtx-4090", "gpu_count": 2, "context": 32768, "vllm_version": "0.19.0"}


@pytest.mark.parametrize("util", [0.90, 0.93, 0.94, 0.95])
def test_one_verdict_everywhere(catalog: Catalog, util: float):
    e = _vllm(catalog, "llama-3.1-8b", gpu_memory_utilization=util, **CASE_4090)
    d, row = e.vllm, e.fits[0]
    assert row.gpu == "rtx-4090" and row.fits is d.starts
    assert (row.headroom_bytes >= 0) is d.starts and (d.headroom_bytes >= 0) is d.starts
    says_no = any(w.startswith("vLLM does not start") for w in e.warnings)
    assert says_no is (not d.starts)
    gpu = next(g for g in catalog.gpus if g.slug == "rtx-4090")
    req = VramRequest(model="llama-3.1-8b", runtime="vllm", gpu_memory_utilization=util, **CASE_4090)
    best = largest_context(catalog.model("llama-3.1-8b"), req, gpu, 131072)
    if d.starts:
        assert best >= 32768
    else:
        assert best is None or best < 32768


@pytest.mark.parametrize("version", ["0.19.0", "0.21.0", "0.34.0"])
def test_headline_total_is_monotone_in_utilization(catalog: Catalog, version: str):
    """The total grows with the KV budget; a failed start no longer drops the KV cache to nothing. (0.34's
    extensible cache is capped by the free memory, so there the total stops growing instead.)"""
    totals = [_vllm(catalog, "llama-3.1-8b", gpu_memory_utilization=u, **{**CASE_4090, "vllm_version": version})
              .total_bytes for u in (0.90, 0.92, 0.93, 0.94, 0.95, 0.99)]
    assert totals == sorted(totals)


@pytest.mark.parametrize("util", [0.94, 0.95, 0.99])
def test_fixes_start_it_and_never_ask_for_more(catalog: Catalog, util: float):
    e = _vllm(catalog, "llama-3.1-8b", gpu_memory_utilization=util, **CASE_4090)
    assert e.vllm.starts is False and e.vllm.fixes
    for fix in e.vllm.fixes:
        if fix.flag == "max_model_len":
            assert int(fix.value) <= 32768
        kind = {"kv_cache_dtype": str, "gpu_memory_utilization": float, "max_model_len": int}
        change = ({"gpu_count": int(fix.value)} if fix.flag == "tensor_parallel_size"
                  else {fix.flag: kind[fix.flag](fix.value)})
        fixed = _vllm(catalog, "llama-3.1-8b", **{**CASE_4090, "gpu_memory_utilization": util, **change})
        assert fixed.vllm.starts is True, fix


def test_max_model_len_fix_only_when_the_kv_budget_is_short(catalog: Catalog):
    """KV short: a shorter max_model_len (never above the one asked, never below the request's sequence)."""
    e = _vllm(catalog, "llama-3.1-8b", gpu="rtx-4090", context=8192, max_model_len=131072, vllm_version="0.19.0")
    assert e.vllm.starts is False
    fix = next(x for x in e.vllm.fixes if x.flag == "max_model_len")
    assert 8192 <= int(fix.value) < 131072
