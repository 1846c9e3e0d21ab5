"""llama.cpp --fit across several devices (common/fit.cpp common_params_fit_impl at 0c1e570, the llama.cpp that
llama-cpp-python 0.3.36 vendors; "L<n>" below are that file's lines, "M<n>" src/llama-model.cpp's).

Synthetic models whose memory per device is written out in this file (from the rules of llama.cpp's layer split,
not from the code under test), so every expected decision is derived by hand from the source's rules; each test
states the lines its numbers follow. Then the real estimator with gpu_count 2 on catalog models.
"""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator import VramRequest, estimate
from app.estimator.runtimes.llamacpp_fit import Layers, Plan, Use, default_split, fit_devices
from app.estimator.schema import VramEstimate

MiB, GiB = 1 << 20, 1 << 30
MARGIN = 1024 * MiB  # --fit-target default (common/common.h fit_params_target)
N_LAYER = 32  # repeating layers; il = 32 is the output layer (hp_ngl + 1 = 33 "layers")


def _blocks(counts: tuple[int, ...]) -> list[range]:
    """M1589-M1614: with tensor_split = layer counts, device d holds the d-th contiguous block of the last
    sum(counts) layer indices (i_gpu_start = n_layer + 1 - ngl); index n_layer is the output layer."""
    start = N_LAYER + 1 - sum(counts)
    out = []
    for k in counts:
        out.append(range(start, start + k))
        start += k
    return out


def _dense(per_layer: int, output: int, compute: int, kv_per_token: int = 0):
    """A dense model: `per_layer` MiB of weights per repeating layer, `output` MiB for the output layer,
    `kv_per_token` bytes of KV per layer per token, `compute` MiB on every device that holds a layer."""

    def project(n_ctx: int, plan: Plan | None, frees: list[int]) -> list[Use]:
        counts = plan.tensor_split if plan else _even(len(frees))
        out = []
        for block in _blocks(counts):
            reps = sum(1 for il in block if il < N_LAYER)
            model = reps * per_layer * MiB + (output * MiB if N_LAYER in block else 0)
            out.append(Use(model, model + reps * n_ctx * kv_per_token + (compute * MiB if block else 0)))
        return out

    return project


def _even(nd: int) -> tuple[int, ...]:
    """llama.cpp's default split of 33 layers over nd devices of equal free memory, by hand (M1557-M1597: split
    points float(i + 1) / nd; layer offset k goes to the first device whose point exceeds float(k) / 33):
    nd 1: 33; nd 2: k/33 < 0.5 for k <= 16 -> 17, 16; nd 3: k/33 < float(1/3) for k <= 10, < float(2/3) for
    k <= 21 (k = 11 gives exactly float(1/3), which is not above it) -> 11, 11, 11."""
    return {1: (33,), 2: (17, 16), 3: (11, 11, 11)}[nd]


def test_default_split_by_free_memory():
    """M1557-M1597, worked by hand as in _even; uneven devices 24 and 8 GiB: points 0.75 and 1, k/33 < 0.75 for
    k <= 24 -> 25 layers on the first, 8 on the second; -ngl 20 on two equal devices: k/20 < 0.5 for k <= 9."""
    assert default_split([GiB], 33, N_LAYER) == (33,)
    assert default_split([GiB] * 2, 33, N_LAYER) == (17, 16)
    assert default_split([GiB] * 3, 33, N_LAYER) == (11, 11, 11)
    assert default_split([24 * GiB, 8 * GiB], 33, N_LAYER) == (25, 8)
    assert default_split([GiB] * 2, 20, N_LAYER) == (10, 10)


# Dense grid: 100 MiB per layer, output 500 MiB, compute 200 MiB; -c set by the user (no context step, L456).
# Step 1 (L352-L371) with _even's split: nd 1 uses 32 x 100 + 500 + 200 = 3900; nd 2: device 0 holds 17
# repeating layers (1900), device 1 15 + output (2200); nd 3: 1300, 1300, 10 + output (1700).
# Step 3 (L675-L728), back to front, false position ending on the largest count that fits (the lower bound
# "that just barely still fits", L663-L669, the memory growing with the count): device d's block sits right
# below the later devices' blocks, so it holds the output layer only while every later device is empty:
#   with the output: k layers cost 100 (k - 1) + 700 <= T  ->  k = floor((T - 600) / 100);
#   without:         k layers cost 100 k + 200 <= T       ->  k = floor((T - 200) / 100), at most what is left.
# T = free - 1024 MiB (MiB):
#   650: 0 with the output, so every earlier device is in the same case: all zero;
#   1000: last 4, earlier 8;  1500: last 9, earlier 13 (nd 3: 9, 13, then 33 - 22 = 11 left);
#   1750: last 11, earlier 15; nd 3 unchanged (1700 <= 1750);  2100: last 15, earlier 18 left of 19;
#   2500: nd 2 unchanged (2200 <= 2500);  4000: nd 1 unchanged (3900 <= 4000).
DENSE_GRID = [
    (650, 1, (0,)), (650, 2, (0, 0)), (650, 3, (0, 0, 0)),
    (1000, 1, (4,)), (1000, 2, (8, 4)), (1000, 3, (8, 8, 4)),
    (1500, 1, (9,)), (1500, 2, (13, 9)), (1500, 3, (11, 13, 9)),
    (1750, 1, (11,)), (1750, 2, (15, 11)), (1750, 3, None),
    (2100, 1, (15,)), (2100, 2, (18, 15)), (2100, 3, None),
    (2500, 1, (19,)), (2500, 2, None), (2500, 3, None),
    (4000, 1, None), (4000, 2, None), (4000, 3, None),
]


@pytest.mark.parametrize(("target_mib", "nd", "split"), DENSE_GRID)
def test_dense_layers_back_to_front(target_mib: int, nd: int, split: tuple[int, ...] | None):
    frees = [target_mib * MiB + MARGIN] * nd
    project = _dense(100, 500, 200)
    d = fit_devices(lambda ctx, plan: project(ctx, plan, frees), frees, [MARGIN] * nd, 8192, 131072, 4096,
                    N_LAYER, moe=False, ngl_set=False)
    if split is None:
        assert d.status == "unchanged" and d.plan is None and d.n_ctx == 8192
        return
    assert d.plan is not None and d.plan.tensor_split == split and d.n_ctx == 8192
    assert all(x.n_part == 0 for x in d.plan.layers) and d.plan.overrides(N_LAYER) == []
    assert d.status == "layers" and max(d.mem) <= target_mib * MiB


def test_context_lowered_across_devices_then_layers_placed():
    """Dense, 2 devices of 4096 MiB free, -c 0 (training context 131072), KV 1 KiB per layer per token.
    Step 1 at 131072 (_even: 17 | 15 + output): device 0 = 1700 + 17 x 128 + 200 = 4076 MiB, device 1 =
    2000 + 15 x 128 + 200 = 4120 MiB; 4096 - 4076 < 1024: changes needed; sum 8196 > 8192 - 2048 (L376-L383).
    Step 2 (L395-L431): target 6144 MiB less (nd + 1) x model_per_layer / 2 with model_per_layer = (1700 + 2000)
    MiB / min(-ngl -1 as uint32, 32) = 121241600 bytes -> 6442450944 - 181862400 = 6260588544; at --fit-ctx 4096
    the devices use 1968 + 2260 = 4228 MiB (4433379328); n_ctx = 4096 + 126976 x 1827209216 / 4160749568 =
    4096 + 55762 = 59858, rounded down to 256: 59648; several devices go on to step 3 (L436-L440).
    Step 3 at 59648 (58.25 MiB of KV per layer), target 3072 MiB: device 1 (output) all 33 = 3900 + 32 x 58.25 =
    5764 > 3072; false position from 0: step 33 x 3072 / 5764 = 17 -> 16 + output = 3232 (high); step 17 x 3072 /
    3232 = 16 -> 3073.75 (high); step 16 x 3072 / 3073.75 = 15 -> 14 + output = 2915.5 (fits), delta 1: 15.
    Device 0: the 18 left = 1800 + 18 x 58.25 + 200 = 3048.5 <= 3072: all. Every layer placed: status context."""
    frees = [4096 * MiB] * 2
    project = _dense(100, 500, 200, kv_per_token=1024)
    d = fit_devices(lambda ctx, plan: project(ctx, plan, frees), frees, [MARGIN] * 2, 0, 131072, 4096, N_LAYER,
                    moe=False, ngl_set=False)
    assert d.n_ctx == 59648 and d.plan is not None and d.plan.tensor_split == (18, 15)
    assert d.status == "context" and d.mem == (int(3048.5 * MiB), int(2915.5 * MiB))


def test_one_device_context_is_the_answer():
    """The same model on one device of 5120 MiB, -c 0: step 1 uses 3900 + 32 x 128 = 7996 MiB; step 2 without the
    multi-device allowance (L403 nd > 1 only): target 4096 MiB, at 4096 tokens 3900 + 128 = 4028 MiB;
    n_ctx = 4096 + 126976 x (4096 - 4028) / (7996 - 4028) = 4096 + 126976 x 68 / 3968 = 4096 + 2176 = 6272 ->
    6144 (a multiple of 256); one device returns there (L436-L438): layers as asked."""
    frees = [5120 * MiB]
    project = _dense(100, 500, 200, kv_per_token=1024)
    d = fit_devices(lambda ctx, plan: project(ctx, plan, frees), frees, [MARGIN], 0, 131072, 4096, N_LAYER,
                    moe=False, ngl_set=False)
    assert d.status == "context" and d.n_ctx == 6144 and d.plan is None


def test_context_counts_streams():
    """Split KV (n_parallel 2 without -kvu): n_streams 2 (L197), the automatic context is n_ctx_train x 2 = 262144
    (L267, L271-L272), the floor --fit-ctx x 2 = 8192 (L268) and the rounding 256 x 2 (L429). One device of 6144
    MiB (target 5120): 3900 + 32 x 256 = 12092 MiB at 262144, 3900 + 32 x 8 = 4156 at 8192; n_ctx = 8192 +
    253952 x (5120 - 4156) / (12092 - 4156) = 8192 + 32 x 964 = 39040 -> 38912 (a multiple of 512)."""
    frees = [6144 * MiB]
    project = _dense(100, 500, 200, kv_per_token=1024)
    d = fit_devices(lambda ctx, plan: project(ctx, plan, frees), frees, [MARGIN], 0, 131072, 4096, N_LAYER,
                    moe=False, ngl_set=False, n_streams=2)
    assert d.status == "context" and d.n_ctx == 38912


# MoE: a repeating layer = attention 40 + shared-expert FFN 10 + experts up 130, gate 130, down 140 MiB (450).
# What the first partial layer of a device keeps (get_overflow_pattern, L493-L530): MOE moves the *_exps tensors
# (keeps 50), UP moves ffn_(gate|gate_up|down).* (keeps 40 + 10 + 130 = 180), GATE moves ffn_down.* (keeps
# 310), ATTN moves every ffn_ tensor (keeps 40); its moved part goes to overflow_to (the next device, or host).
KEEP = {"MOE": 50, "UP": 180, "GATE": 310, "ATTN": 40}
N_MOE = 8  # repeating layers of the MoE model; il 8 = the output layer (300 MiB)


def _moe_project(plan: Plan | None, nd: int) -> list[Use]:
    """Per device: its block (M1589-M1614) with the n_full full layers first and the n_part partial ones after
    (set_ngl_tensor_split_tbo, L558-L581; the output index matches no pattern and stays whole) + 100 MiB compute."""
    if plan is None:  # as asked: all layers, the default split of 9 on equal devices (5, 4)
        plan = Plan((Layers(5), Layers(4)) if nd == 2 else (Layers(9),), (None,) * nd)
    mib = [0] * nd
    il = N_MOE + 1 - plan.n_gpu_layers
    for d, x in enumerate(plan.layers):
        for j in range(x.n_layer):
            if il == N_MOE:
                mib[d] += 300
            elif j < x.n_full:
                mib[d] += 450
            else:
                kind = x.overflow if j == x.n_full else "MOE"
                mib[d] += KEEP[kind]
                to = plan.overflow_to[d] if j == x.n_full else None
                if to is not None:
                    mib[to] += 450 - KEEP[kind]
            il += 1
        mib[d] += 100 if x.n_layer else 0
    return [Use(0, m * MiB) for m in mib]


def test_moe_two_devices_experts_overflow():
    """2 devices, target T = 1520 MiB each, -c set by the user.
    Step 1 (5 | 3 + output): 2350 and 1750 MiB: changes needed. All experts in host memory (L616-L645): 5 x 50
    + 100 = 350 and 3 x 50 + 300 + 100 = 550, surplus (1520 - 350) + (1520 - 550) = 2140 > 0: step 4 runs.
    Step 3 (L675-L728): device 1 high = 9 layers, 8 partial: layer 0 full (450), 1-7 MoE-partial (350), output
    300, compute 100 = 1200 <= 1520: all; device 0 nothing left.
    Step 4 (L751-L860), device 0: high moves 8 whole layers = 3700 > 1520; false position: 8 x 1520 / 3700 = 3 ->
    3 whole (1450, fits; device 1 keeps 6 with 5 partial); 5 x 70 / 2250 = 0 -> 1 -> 4 whole (1900, high); delta 1.
    Part of one more layer (overflow to device 1, L823-L825): UP keeps 1350 + 180 + 100 = 1630 >= 1520, no;
    ATTN 1350 + 40 + 100 = 1490 < 1520 and device 1 (layers 4-8: 450 + 150 + 300 + 100 + the 410 moved) = 1410
    < 1520: taken -> device 0 = 4 layers (1 partial, ATTN, to device 1), device 1 = 5 (4 partial).
    Device 1: high (all 5 whole) = 1800 + 300 + 100 + 410 = 2610 > 1520; 4 x 110 / 1200 = 0 -> 1: 2 whole =
    1810 (high); delta 1. One more: UP 450 + 180 + 100 + 300 + 100 + 410 = 1540 >= 1520, no; ATTN 1400: taken."""
    frees = [1520 * MiB + MARGIN] * 2
    d = fit_devices(lambda ctx, plan: _moe_project(plan, 2), frees, [MARGIN] * 2, 8192, 131072, 4096, N_MOE,
                    moe=True, ngl_set=False)
    assert d.plan is not None and d.status == "layers"
    assert d.plan.layers == (Layers(4, 1, "ATTN"), Layers(5, 4, "ATTN")) and d.plan.overflow_to == (1, None)
    assert d.mem == (1490 * MiB, 1400 * MiB)
    assert d.plan.overrides(N_MOE) == [  # L560-L581: device 0's partial layer 3 to device 1, then 5-8 to host
        (r"blk\.3\.ffn_(gate|up|gate_up|down).*", 1), (r"blk\.5\.ffn_(gate|up|gate_up|down).*", None),
        *[(rf"blk\.{il}\.ffn_(up|down|gate_up|gate)_(ch|)exps", None) for il in (6, 7, 8)]]


def test_moe_one_device():
    """The same MoE model on one device, T = 1520 MiB. Step 3: 9 layers with 8 partial = 1200 <= 1520: all.
    Step 4 (surplus 1520 - (8 x 50 + 300 + 100) = 720 > 0): high all whole = 3600 + 400 = 4000 > 1520; false
    position on whole layers (n_full 1 -> 9): 8 x (1520 - 1200) / 2800 = 0 -> 1: 2 whole = 1200 + 400 = 1600
    (high); delta 1. Part of one more layer on the same device (overflow to host): UP 1200 + 130 = 1330 < 1520,
    taken; GATE 1200 + 260 = 1460 < 1520, taken: 9 layers, 8 partial, the first GATE."""
    frees = [1520 * MiB + MARGIN]
    d = fit_devices(lambda ctx, plan: _moe_project(plan, 1), frees, [MARGIN], 8192, 131072, 4096, N_MOE,
                    moe=True, ngl_set=False)
    assert d.plan is not None and d.plan.layers == (Layers(9, 8, "GATE"),) and d.mem == (1460 * MiB,)


def test_user_ngl_makes_fit_give_up_on_several_devices():
    """L463-L465: -ngl set by the user -> common_params_fit_exception, the load goes on as asked."""
    frees = [1000 * MiB + MARGIN] * 2
    project = _dense(100, 500, 200)
    d = fit_devices(lambda ctx, plan: project(ctx, plan, frees), frees, [MARGIN] * 2, 8192, 131072, 4096,
                    N_LAYER, moe=False, ngl_set=33)
    assert d.status == "failed" and d.plan is None


# --- the estimator, two devices ---

def _device(e: VramEstimate) -> tuple[int, int, int]:
    assert e.llamacpp is not None
    return tuple(sum(b.bytes for b in e.llamacpp.buffers if b.device == "gpu" and b.name == n)  # type: ignore
                 for n in ("model", "kv", "compute"))


@pytest.mark.parametrize("free_mib", [2048, 2560, 3072, 3584])
def test_llama_two_devices_last_device_is_the_largest_count_that_fits(catalog: Catalog, free_mib: int):
    """Llama-3.1-8B Q4_K_M, -c 8192, 2 devices. The last device holds the top k layers and the output layer, as
    one device with -ngl k does (same weights, KV and compute): k is the largest count with that memory <= free -
    1024 MiB (L675-L728). Device 0 holds the block below: its weights and KV are those of -ngl (k0 + k) less
    those of -ngl k (exact); its compute is the layer-only model."""
    spec = catalog.model("llama-3.1-8b-instruct")
    base = {"model": spec.slug, "runtime": "llama.cpp", "quantization": "q4_k_m", "n_ctx": 8192}
    n = spec.language_model.layers
    one = [_device(estimate(spec, VramRequest(**base, n_gpu_layers=k))) for k in range(n + 2)]
    target = free_mib * MiB - MARGIN
    fit = estimate(spec, VramRequest(**base, free_memory=free_mib * MiB, gpu_count=2)).llamacpp.fit
    assert fit is not None and fit.status == "layers" and len(fit.devices) == 2
    k1 = max(k for k in range(n + 2) if sum(one[k]) <= target)
    k0 = fit.devices[0].n_layer
    assert fit.tensor_split == [k0, k1] and fit.devices[1].n_layer == k1 and fit.n_gpu_layers == k0 + k1
    assert (fit.devices[1].model, fit.devices[1].context, fit.devices[1].compute) == one[k1]
    assert fit.devices[0].model == one[k0 + k1][0] - one[k1][0]
    assert fit.devices[0].context == one[k0 + k1][1] - one[k1][1]
    assert all(dv.projected <= target for dv in fit.devices)
    assert fit.projected == sum(dv.projected for dv in fit.devices)
    assert f"--tensor-split {k0},{k1} " in fit.command and f"-ngl {k0 + k1} " in fit.command
    assert [x.split()[0] for x in fit.fit_print] == ["CUDA0", "CUDA1", "Host"]


def test_two_devices_unchanged_keep_the_default_split(catalog: Catalog):
    """Free memory to spare on both: no change (L359-L370); the split is llama.cpp's default by free memory
    (17 | 16 of 33, see _even), which the command spells out."""
    spec = catalog.model("llama-3.1-8b-instruct")
    fit = estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="q4_k_m", n_ctx=8192,
                                     free_memory=24 * GiB, gpu_count=2)).llamacpp.fit
    assert fit is not None and fit.status == "unchanged" and fit.tensor_split == [17, 16]
    assert "--tensor-split 17,16 " in fit.command


def test_moe_two_devices_estimator(catalog: Catalog):
    """gpt-oss-120b MXFP4 on 2 x 24 GiB ROCm, -c 0: every layer placed, each device within its target, the
    experts of the later layers in host memory (-ot ...=CPU) and the split in the command."""
    spec = catalog.model("gpt-oss-120b")
    fit = estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="mxfp4_moe", backend="rocm",
                                     n_ctx=0, free_memory=24 * GiB, gpu_count=2)).llamacpp.fit
    assert fit is not None and fit.status == "layers" and fit.n_gpu_layers == spec.language_model.layers + 1
    assert all(dv.projected <= 23 * GiB for dv in fit.devices)
    assert sum(fit.tensor_split) == fit.n_gpu_layers and fit.n_cpu_moe_layers
    assert f"--tensor-split {','.join(map(str, fit.tensor_split))} " in fit.command and "=CPU" in fit.command
    assert [x.split()[0] for x in fit.fit_print] == ["ROCm0", "ROCm1", "Host"]


def test_api_two_devices(client):
    r = client.post("/api/vram", json={"model": "llama-3.1-8b-instruct", "runtime": "llama.cpp",
                                       "quantization": "q4_k_m", "n_ctx": 8192, "free_memory": 3 * GiB,
                                       "gpu_count": 2})
    assert r.status_code == 200
    fit = r.json()["llamacpp"]["fit"]
    assert len(fit["devices"]) == 2 and sum(fit["tensor_split"]) == fit["n_gpu_layers"]


def test_several_gpus_without_free_memory_say_the_split_is_not_modelled(catalog: Catalog):
    """Without free_memory the answer is one device's buffers plus a CUDA context per GPU (no layer split): it says
    so; with free_memory --fit's per-device split answers and the warning is gone."""
    spec = catalog.model("llama-3.1-8b")

    def warned(**kw) -> bool:
        e = estimate(spec, VramRequest(model=spec.slug, runtime="llama.cpp", quantization="q4_k_m", **kw), catalog.gpus)
        return any("GPUs without free_memory" in w for w in e.warnings)

    assert warned(gpu_count=2, gpu="rtx-4090")
    assert not warned(gpu_count=2, free_memory=12_000_000_000)
    assert not warned(gpu_count=1, gpu="rtx-4090")
