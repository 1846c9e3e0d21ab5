"""llama.cpp --fit (common/fit.cpp common_params_fit_impl, ggml-org/llama.cpp 6d0892b) on a grid of free memory.

The expected decisions are the source's rules applied in this file to memory figures of the estimator asked
directly (explicit -c / -ngl / -ot, not through --fit):
- no change when free - projected >= --fit-target (1024 MiB);
- with n_ctx 0: n_ctx = fit_ctx + (n_ctx_train - fit_ctx) * (target - used(fit_ctx)) / (used(train) - used(fit_ctx)),
  rounded down to a multiple of 256, at least fit_ctx (linear interpolation, step 2);
- else layers: false position stops at the largest layer count whose memory is <= target (step 3), so for a
  dense model the answer is that largest count; for a MoE model, the fewest expert layers in host memory.
G13's printed projection (71326 MiB vs 120459 MiB free: no change) is checked in test_llamacpp_backends.py.
"""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator import VramRequest, estimate
from app.estimator.estimate import resolve
from app.estimator.quantization import stored_weights
from app.estimator.runtimes import llamacpp
from app.estimator.runtimes.base import RuntimeInput
from app.estimator.runtimes.llamacpp_backends import BACKENDS
from app.estimator.runtimes.llamacpp_fit import OVERFLOW_PATTERNS, Layers, _step, fit
from app.estimator.schema import VramEstimate

MiB, GiB = 1 << 20, 1 << 30
MARGIN = 1024 * MiB  # --fit-target default (common/common.h fit_params_target)


def _device(e: VramEstimate) -> int:
    assert e.llamacpp is not None
    return sum(b.bytes for b in e.llamacpp.buffers if b.device == "gpu" and b.name in ("model", "kv", "compute"))


@pytest.mark.parametrize("free_gib", [2, 3, 4, 5, 6, 7, 8, 12])
def test_dense_layers_are_the_largest_count_that_fits(catalog: Catalog, free_gib: int):
    """Llama-3.1-8B Q4_K_M, -c 8192 set by the user (so no context change): layers back to front."""
    spec = catalog.model("llama-3.1-8b-instruct")
    base = {"model": spec.slug, "runtime": "llama.cpp", "quantization": "q4_k_m", "n_ctx": 8192}
    free = free_gib * GiB
    used = [_device(estimate(spec, VramRequest(**base, n_gpu_layers=n))) for n in range(spec.language_model.layers + 2)]
    fit = estimate(spec, VramRequest(**base, free_memory=free)).llamacpp.fit
    assert fit is not None
    if free - used[-1] >= MARGIN:
        assert fit.status == "unchanged" and fit.n_gpu_layers == len(used) - 1
        return
    best = max(n for n, u in enumerate(used) if u <= free - MARGIN)
    assert fit.status == "layers" and fit.n_gpu_layers == best and fit.n_ctx == 8192
    assert fit.projected == used[best] and fit.overrides == []
    assert fit.command.startswith("llama-server ") and f"-ngl {best} " in fit.command and "--fit off" in fit.command


@pytest.mark.parametrize("free_gib", [14, 15, 16, 18, 20])
def test_context_lowered_by_linear_interpolation(catalog: Catalog, free_gib: int):
    """gpt-oss-20b MXFP4 on ROCm with -c 0 (the training context, 131072): step 2."""
    spec = catalog.model("gpt-oss-20b")
    base = {"model": spec.slug, "runtime": "llama.cpp", "quantization": "mxfp4_moe", "backend": "rocm"}
    train, low = spec.language_model.max_context, 4096
    used_full = _device(estimate(spec, VramRequest(**base, n_ctx=train)))
    used_min = _device(estimate(spec, VramRequest(**base, n_ctx=low)))
    free = free_gib * GiB
    target = free - MARGIN
    fit = estimate(spec, VramRequest(**base, n_ctx=0, free_memory=free)).llamacpp.fit
    assert fit is not None
    if free - used_full >= MARGIN:
        assert fit.status == "unchanged" and fit.n_ctx == train
        return
    assert used_min < target < used_full  # the grid is meant to land in step 2
    ctx = low + (train - low) * (target - used_min) // (used_full - used_min)
    ctx = max(ctx - ctx % 256, low)
    assert fit.status == "context" and fit.n_ctx == ctx and fit.n_gpu_layers == spec.language_model.layers + 1
    assert fit.projected == _device(estimate(spec, VramRequest(**base, n_ctx=ctx))) <= target
    assert f"-c {ctx} " in fit.command


def test_context_set_by_the_user_is_kept(catalog: Catalog):
    spec = catalog.model("gpt-oss-20b")
    e = estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="mxfp4_moe", n_ctx=131072,
                                   free_memory=14 * GiB))
    assert e.llamacpp.fit is not None and e.llamacpp.fit.n_ctx == 131072 and e.llamacpp.fit.status == "layers"


def test_layers_set_by_the_user_make_fit_give_up(catalog: Catalog):
    """common_params_fit_impl throws "n_gpu_layers already set by user" and the load goes on as asked."""
    spec = catalog.model("llama-3.1-8b-instruct")
    e = estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="q4_k_m", n_ctx=8192,
                                   n_gpu_layers=33, free_memory=3 * GiB))
    assert e.llamacpp.fit is not None and e.llamacpp.fit.status == "failed" and e.llamacpp.fit.n_gpu_layers == 33


def _moe_device(catalog: Catalog, layers: Layers, n_ctx: int) -> int:
    """Device bytes with the -ot patterns of `layers` applied (the memory model asked directly, no --fit)."""
    spec = catalog.model("gpt-oss-120b")
    req = VramRequest(model=spec.slug, runtime="llama.cpp", quantization="mxfp4_moe", backend="rocm")
    c = resolve(spec, req)
    inp = RuntimeInput(spec, c.fmt, stored_weights(spec, c.fmt.slug), c.kv, req.context, 1, 0, 1, True, None,
                       request=req)
    return llamacpp._device_bytes(inp, req, BACKENDS["rocm"], n_ctx, layers)[3]


@pytest.mark.parametrize("free_gib", [16, 24, 32, 48])
def test_moe_experts_to_host_fewest_layers(catalog: Catalog, free_gib: int):
    """gpt-oss-120b MXFP4 (61 GiB of weights) on smaller devices, -c 0: the context goes to 4096 first, then
    every layer is placed with the experts of as few layers as possible in host memory (steps 3-4)."""
    spec = catalog.model("gpt-oss-120b")
    n = spec.language_model.layers
    fit = estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="mxfp4_moe", backend="rocm",
                                     n_ctx=0, free_memory=free_gib * GiB)).llamacpp.fit
    assert fit is not None and fit.status == "layers" and fit.n_ctx == 4096 and fit.n_gpu_layers == n + 1
    target = free_gib * GiB - MARGIN
    assert fit.projected <= target
    k = len(fit.overrides)  # partial layers (the last pattern names blk.36, which has no tensors, as llama.cpp's)
    moe = [OVERFLOW_PATTERNS["MOE"].format(il=il) for il in range(n + 1 - k, n + 1)]
    assert fit.overrides[1:] == moe[1:] and fit.overrides[0].startswith(f"blk\\.{n + 1 - k}\\.ffn_")
    assert _moe_device(catalog, Layers(n + 1, k - 1), 4096) > target  # one layer fewer in host memory: too much
    assert fit.fit_print[0].startswith("ROCm0 ") and fit.fit_print[1].startswith("Host ")
    assert all(f"-ot {p!r}" in fit.command or f"-ot '{p}=CPU'" in fit.command for p in fit.overrides)


def test_gpt_oss_answers_on_llamacpp_without_naming_a_format(client):
    r = client.get("/api/vram", params={"model": "gpt-oss-120b", "runtime": "llama.cpp"})
    assert r.status_code == 200 and r.json()["request"]["quantization"] == "mxfp4_moe"


@pytest.mark.parametrize("target_layers", [0.5, 1, 7.3, 20, 32.9, 33])
def test_false_position_stops_at_the_last_layer_that_fits(target_layers: float):
    """A synthetic dense model, 1 GiB base + 100 MiB per layer (33 = 32 layers + output): common_params_fit_impl's
    loop must end on floor(target) layers whatever the interpolation steps were."""
    per, base = 100 * MiB, GiB

    def project(n_ctx: int, layers: Layers | None) -> int:
        return base + per * (33 if layers is None else layers.n_layer)

    free = base + int(target_layers * per) + MARGIN
    d = fit(project, free, MARGIN, 8192, 131072, 4096, 32, moe=False, ngl_set=False)
    if target_layers >= 33:
        assert d.status == "unchanged" and d.layers is None
        return
    assert d.status == "layers" and d.layers is not None and d.layers.n_layer == int(target_layers)


def test_step_is_computed_as_the_cpp_does():
    """uint32_t step_size = int64_t(delta) * (target - mem) / (mem_high - mem): truncation toward zero, a negative
    result wraps around in the uint32_t and the clamp then gives delta - 1."""
    assert _step(10, 550, 500, 600) == 5
    assert _step(10, 599, 500, 600) == 9  # 9.9 truncates to 9 = delta - 1
    assert _step(10, 501, 500, 600) == 1  # 0.1 -> 0 -> at least 1
    assert _step(10, 400, 500, 600) == 9  # -10 wraps to 2^32 - 10, clamped to delta - 1
