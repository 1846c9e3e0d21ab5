"""llama.cpp's --fit (on by default since 2026): fit layers and context to the free memory of the devices.

A transcription of `common_params_fit_impl` in common/fit.cpp of the llama.cpp that llama-cpp-python 0.3.36
vendors (0c1e57098bba43ac29e6e3b677cdceebdd22334f; `llama_params_fit_impl` in src/llama.cpp before it moved to
common/), for one device or several (layer split: llama.cpp's default split mode). llama.cpp asks its own memory
projection (a no_alloc load) for each candidate; here the candidate's memory comes from our buffers (`project`),
so the decisions are llama.cpp's rules applied to our figures. Line numbers below are fit.cpp's at that commit.
1. projected use per device = model + context + compute; if free - used >= margin (--fit-target, 1024 MiB) on
   every device, nothing changes (L352-L371);
2. if the sum over the devices misses the sum of the margins, the user gave no context (n_ctx 0 = the training
   context, x n_streams) and it exceeds --fit-ctx (4096): project at --fit-ctx and interpolate linearly to the
   context that uses sum(free - margin), rounded down to 256 x n_streams and not below --fit-ctx; with several
   devices the target first loses (nd + 1) x model-per-layer / 2 (dense) or / 6 (MoE) (L376-L456); on one
   device that is the answer, on several the layers are then placed at that context (L436-L440);
3. else (unless the user set -ngl; several devices: unless tensor_split was set or split mode is row) place
   layers device by device from the last one (which holds the output layer) to the first, each by the method of
   false position between "none" and "every unassigned layer", for a MoE model with every layer's expert tensors
   in host memory (`blk.N.ffn_(up|down|gate_up|gate)_(ch|)exps`), the output layer always whole (L488-L733);
   the result is -ngl = the sum and --tensor-split = the layers per device (L548-L586);
4. a MoE model whose dense part fits (the sum of the devices' surpluses with every expert in host memory is
   positive, L616-L645) then converts dense-only layers to whole layers front to back, device by device, and tries
   to keep part of one more layer on each device (LAYER_FRACTION_UP, then GATE; else ATTN), its overflow going to
   the next device instead of host memory (L736-L876).
Counts are uint32_t in the C++ and wrap as there (`_u32`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

MiB = 1 << 20
N_CTX_ROUND = 256  # "round down context for CUDA backend" (L428-L429: 256 x n_streams)
U32 = 1 << 32
MAX_TENSOR_BUFT_OVERRIDES = 4096  # llama_max_tensor_buft_overrides() (src/llama.cpp)

# common_layer_fraction_t (L17-L24): which tensors of the first partial layer overflow; get_overflow_pattern L493-L530
OVERFLOW_PATTERNS = {
    "ATTN": r"blk\.{il}\.ffn_(gate|up|gate_up|down).*",
    "UP": r"blk\.{il}\.ffn_(gate|gate_up|down).*",
    "GATE": r"blk\.{il}\.ffn_down.*",
    "MOE": r"blk\.{il}\.ffn_(up|down|gate_up|gate)_(ch|)exps",
}


def _u32(x: int) -> int:
    return x % U32


@dataclass(frozen=True, slots=True, repr=False)
class Layers:
    """ngl_t (L532-L543): layers on a device, of which n_part keep (part of) their FFN off it."""

    n_layer: int = 0
    n_part: int = 0
    overflow: str = "MOE"  # the first partial layer's overflow type

    @property
    def n_full(self) -> int:
        return _u32(self.n_layer - self.n_part)

    def overrides(self, hp_ngl: int) -> list[str]:
        """One device: the -ot patterns, first partial layer by its overflow type, the rest MOE."""
        return [p for p, _ in Plan((self,), (None,)).overrides(hp_ngl)]


@dataclass(frozen=True, slots=True, repr=False)
class Plan:
    """ngl_per_device and overflow_bufts: the layers of each device (the last holds the output layer) and where
    the first partial layer of each device overflows (None: host memory, else the index of a device)."""

    layers: tuple[Layers, ...]
    overflow_to: tuple[int | None, ...]

    @property
    def n_gpu_layers(self) -> int:  # L553-L555
        return sum(x.n_layer for x in self.layers)

    @property
    def tensor_split(self) -> tuple[int, ...]:  # L556: tensor_split[id] = n_layer
        return tuple(x.n_layer for x in self.layers)

    def overrides(self, hp_ngl: int) -> list[tuple[str, int | None]]:
        """set_ngl_tensor_split_tbo (L548-L586): (pattern, device or None = CPU) per partial layer, in order;
        uint32_t arithmetic as the C++ (a wrapped n_part makes an empty range there too)."""
        il0 = _u32(hp_ngl + 1 - self.n_gpu_layers)  # L560
        out: list[tuple[str, int | None]] = []
        for d, x in enumerate(self.layers):
            il0 = _u32(il0 + x.n_full)
            end = _u32(il0 + x.n_part)
            if end - il0 + len(out) + 1 >= MAX_TENSOR_BUFT_OVERRIDES:  # L568-L574
                raise FitAbort(f"llama_max_tensor_buft_overrides() == {MAX_TENSOR_BUFT_OVERRIDES} is insufficient")
            for il in range(il0, end):
                first = il == il0
                out.append((OVERFLOW_PATTERNS[x.overflow if first else "MOE"].format(il=il),
                            self.overflow_to[d] if first else None))
            il0 = end
        return out


class FitAbort(Exception):
    """common_params_fit_exception: --fit gives up (status FAILURE) and llama.cpp loads as asked."""


@dataclass(frozen=True, slots=True, repr=False)
class Use:
    """One device's projected memory (llama_device_memory_data.mb): model and the total with context + compute."""

    model: int
    total: int


# (n_ctx, plan) -> one Use per device; plan None: as asked (the user's -ngl, llama.cpp's default split)
Project = Callable[[int, Plan | None], Sequence[Use]]


@dataclass
class FitDecision:
    status: str
    n_ctx: int
    plan: Plan | None  # None: as asked
    mem: tuple[int, ...]  # projected per device
    notes: list[str] = field(default_factory=list)

    @property
    def layers(self) -> Layers | None:  # one device
        return self.plan.layers[0] if self.plan else None

    @property
    def projected(self) -> int:
        return sum(self.mem)


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def default_split(frees: Sequence[int], n_gpu_layers: int, n_layer: int) -> tuple[int, ...]:
    """Layers per device of llama.cpp's default split (no tensor_split): by free memory (src/llama-model.cpp
    L1557-L1597: cumulative float splits normalised to 1, layer il on the first device whose split point exceeds
    float(il - i_gpu_start) / act_gpu_layers)."""
    sums, acc = [], 0.0
    for f in frees:
        acc = _f32(acc + _f32(float(f)))
        sums.append(acc)
    splits = [_f32(s / acc) for s in sums] if acc else [1.0] * len(frees)
    act = min(n_gpu_layers, n_layer + 1)
    counts = [0] * len(frees)
    for k in range(act):
        x = _f32(_f32(float(k)) / _f32(float(act)))
        counts[next((i for i, s in enumerate(splits) if s > x), len(frees) - 1)] += 1
    return tuple(counts)


def _step(delta: int, target: int, mem: int, mem_high: int) -> int:
    """The false-position step as the C++ computes it (L694, L766): int64 division truncating toward zero,
    stored in a uint32_t (a negative step wraps around), then clamped to [1, delta - 1]."""
    num, den = delta * (target - mem), mem_high - mem
    q = abs(num) // abs(den) * (1 if (num >= 0) == (den > 0) else -1) if den else 0
    return min(max(q % U32, 1), delta - 1)


def fit(project: Callable[[int, Layers | None], int], free: int, margin: int, n_ctx: int, n_ctx_train: int,
        n_ctx_min: int, hp_ngl: int, moe: bool, ngl_set: bool, n_streams: int = 1) -> FitDecision:
    """common_params_fit_impl for one device: `project` gives the device's total for (n_ctx, layers)."""

    def one(ctx: int, plan: Plan | None) -> list[Use]:
        return [Use(0, project(ctx, plan.layers[0] if plan else None))]

    return fit_devices(one, [free], [margin], n_ctx, n_ctx_train, n_ctx_min, hp_ngl, moe, ngl_set, n_streams)


def fit_devices(project: Project, frees: Sequence[int], margins: Sequence[int], n_ctx: int, n_ctx_train: int,
                n_ctx_min: int, hp_ngl: int, moe: bool, ngl_set: bool | int, n_streams: int = 1) -> FitDecision:
    """common_params_fit_impl for len(frees) devices. `n_ctx` as asked (0: the training context); `ngl_set`:
    the user's -ngl (True/int) or False."""
    nd = len(frees)
    n_ctx_max = min(n_ctx_train * n_streams, U32 - 1)  # L267
    n_ctx_min_total = min(n_ctx_min * n_streams, U32 - 1)  # L268
    n_ctx_auto = n_ctx == 0  # L198
    if n_ctx_auto:
        n_ctx = n_ctx_max  # L271-L272
    full = project(n_ctx, None)
    used = [u.total for u in full]
    free_after = [f - u for f, u in zip(frees, used, strict=True)]
    if all(a >= m for a, m in zip(free_after, margins, strict=True)):  # L352-L371
        return FitDecision("unchanged", n_ctx, None, tuple(used),
                           [f"projected {sum(used) // MiB} MiB leaves >= {margins[0] // MiB} MiB free"
                            f"{' on every device' if nd > 1 else ''}: no changes"])
    sum_free, sum_used, sum_margin = sum(frees), sum(used), sum(margins)
    notes = [f"projected {sum_used // MiB} MiB of {sum_free // MiB} MiB free"
             + (f" on {nd} devices" if nd > 1 else "")
             + (f": needs {(sum_used + sum_margin - sum_free) // MiB} MiB less" if sum_used + sum_margin > sum_free
                else ": a device misses its --fit-target")]
    lowered = False
    if sum_free - sum_used - sum_margin < 0:  # L376-L383: global_surplus < 0
        if not n_ctx_auto:
            notes.append(f"context set by the user to {n_ctx}: no change")
        elif n_ctx_max <= n_ctx_min_total:
            notes.append(f"training context {n_ctx_max} <= --fit-ctx {n_ctx_min_total}: no change")
        else:
            target_sum = sum_free - sum_margin  # L395-L402
            if nd > 1:  # L403-L411: whole layers (dense) or tensors (~1/3 layer, MoE) waste ~0.5 per device
                ngl_req = hp_ngl if ngl_set is False or ngl_set is True else min(int(ngl_set), hp_ngl)
                per_layer = sum(u.model for u in full) // max(ngl_req, 1)  # (the C++ divides by zero at -ngl 0)
                target_sum -= (nd + 1) * per_layer // (6 if moe else 2)
            n_ctx = n_ctx_min_total  # L414
            used_min = sum(u.total for u in project(n_ctx, None))
            if target_sum > used_min:  # L424-L440
                n_ctx += (n_ctx_max - n_ctx_min_total) * (target_sum - used_min) // (sum_used - used_min)
                align = N_CTX_ROUND * n_streams
                n_ctx = max(n_ctx - n_ctx % align, n_ctx_min_total)
                notes.append(f"context reduced from {n_ctx_max} to {n_ctx}")
                if nd <= 1:
                    return FitDecision("context", n_ctx, None, tuple(u.total for u in project(n_ctx, None)), notes)
                lowered = True  # several devices: the layers are placed at this context (L439)
            else:
                notes.append(f"context reduced to {n_ctx}: not enough alone")
    if ngl_set is not False:  # L463-L465
        notes.append("n_gpu_layers already set by the user: --fit gives up and loads as asked")
        return FitDecision("failed", n_ctx, None, tuple(u.total for u in project(n_ctx, None)), notes)
    try:
        plan, mem = _place(project, frees, margins, n_ctx, hp_ngl, moe)
    except FitAbort as e:
        notes.append(f"--fit gives up ({e}) and loads as asked")
        return FitDecision("failed", n_ctx, None, tuple(u.total for u in project(n_ctx, None)), notes)
    targets = [f - m for f, m in zip(frees, margins, strict=True)]
    fits = all(m <= t for m, t in zip(mem, targets, strict=True))
    whole = plan.n_gpu_layers == hp_ngl + 1 and not any(x.n_part for x in plan.layers)
    status = "failed" if not fits else "context" if lowered and whole else "layers"
    for d, x in enumerate(plan.layers):
        notes.append(f"{'device ' + str(d) + ': ' if nd > 1 else ''}{x.n_layer} layers "
                     f"({x.n_part} with experts in host memory), {mem[d] // MiB} MiB projected")
    return FitDecision(status, n_ctx, plan, tuple(mem), notes)


def _place(project: Project, frees: Sequence[int], margins: Sequence[int], n_ctx: int, hp_ngl: int,
           moe: bool) -> tuple[Plan, list[int]]:
    """Steps 3 and 4 (L485-L876)."""
    nd = len(frees)

    def mem_of(layers: list[Layers], overflow: list[int | None]) -> list[int]:  # get_memory_for_layers L589-L614
        plan = Plan(tuple(layers), tuple(overflow))
        plan.overrides(hp_ngl)  # raises FitAbort as set_ngl_tensor_split_tbo throws
        return [u.total for u in project(n_ctx, plan)]

    surplus_cpu_moe = 0
    if moe:  # L616-L645: every expert tensor in host memory, layers as asked (all, default split)
        split = default_split(frees, hp_ngl + 1, hp_ngl)
        cpu_moe = [u.total for u in project(n_ctx, Plan(tuple(Layers(c, c) for c in split), (None,) * nd))]
        surplus_cpu_moe = sum(f - u - m for f, u, m in zip(frees, cpu_moe, margins, strict=True))
    targets = [f - m for f, m in zip(frees, margins, strict=True)]  # L648-L652
    overflow: list[int | None] = [None] * nd  # L654-L658
    ngl = [Layers()] * nd
    mem = mem_of(ngl, overflow)  # L660-L661
    for d in reversed(range(nd)):  # step 3, L675-L728: back to front
        n_unassigned = _u32(hp_ngl + 1 - sum(ngl[j].n_layer for j in range(d + 1, nd)))
        high = list(ngl)
        n_part = (n_unassigned if d < nd - 1 else _u32(n_unassigned - 1)) if moe else ngl[d].n_part  # L684-L686
        high[d] = replace(ngl[d], n_layer=n_unassigned, n_part=n_part)
        if high[d].n_layer == 0:
            continue
        mem_high = mem_of(high, overflow)
        if mem_high[d] <= targets[d]:  # L719-L724
            ngl, mem = high, mem_high
            continue
        delta = high[d].n_layer - ngl[d].n_layer
        while delta > 1:  # L693-L716
            step = _step(delta, targets[d], mem[d], mem_high[d])
            cur = ngl[d]
            add = (step - 1 if d == nd - 1 and cur.n_part == 0 else step) if moe else 0  # L700-L703
            test = list(ngl)
            test[d] = replace(cur, n_layer=cur.n_layer + step, n_part=_u32(cur.n_part + add))
            mem_test = mem_of(test, overflow)
            if mem_test[d] <= targets[d]:
                ngl, mem = test, mem_test
            else:
                high, mem_high = test, mem_test
            delta = high[d].n_layer - ngl[d].n_layer
    if not moe or surplus_cpu_moe <= 0:  # L730-L733
        return Plan(tuple(ngl), tuple(overflow)), mem
    # step 4, L740-L876
    dense_start = nd
    for d in reversed(range(nd)):  # L741-L747
        if ngl[d].n_layer > 0:
            dense_start = d
            continue
        break
    d = 0
    while d <= dense_start and dense_start < nd:  # L751
        high = list(ngl)
        for j in range(dense_start, nd):  # L753-L758
            move = high[j].n_layer if j < nd - 1 else _u32(high[j].n_layer - 1)
            high[d] = replace(high[d], n_layer=_u32(high[d].n_layer + move))
            high[j] = replace(high[j], n_layer=_u32(high[j].n_layer - move), n_part=0)
        dense_start_high = nd - 1  # L759
        mem_high = mem_of(high, overflow)
        if mem_high[d] > targets[d]:  # L762-L800
            delta = high[d].n_full - ngl[d].n_full
            while delta > 1:
                step = _step(delta, targets[d], mem[d], mem_high[d])
                test, start_test, converted = list(ngl), dense_start, 0
                while start_test < nd:  # L773-L784
                    conv = min(step - converted, test[start_test].n_part)
                    test[start_test] = replace(test[start_test], n_layer=_u32(test[start_test].n_layer - conv),
                                               n_part=_u32(test[start_test].n_part - conv))
                    test[d] = replace(test[d], n_layer=_u32(test[d].n_layer + conv))
                    converted += conv
                    if test[start_test].n_part > 0:
                        break
                    start_test += 1
                mem_test = mem_of(test, overflow)
                if mem_test[d] <= targets[d]:
                    ngl, mem, dense_start = test, mem_test, start_test
                else:
                    high, mem_high, dense_start_high = test, mem_test, start_test
                delta = high[d].n_full - ngl[d].n_full
        else:  # L801-L808
            ngl, mem, dense_start = high, mem_high, dense_start_high

        def fits(m: list[int], d: int = d) -> bool:  # L828, L839, L851
            return m[d] < targets[d] and (d + 1 == nd or m[d + 1] < targets[d + 1])

        if ngl[dense_start].n_layer > (0 if d < nd - 1 else 1):  # L811-L860: part of one more layer
            test, start_test = list(ngl), dense_start
            test[start_test] = replace(test[start_test], n_layer=_u32(test[start_test].n_layer - 1),
                                       n_part=_u32(test[start_test].n_part - 1))
            test[d] = replace(test[d], n_layer=_u32(test[d].n_layer + 1), n_part=_u32(test[d].n_part + 1))
            if test[start_test].n_part == 0:
                start_test += 1
            overflow_test = list(overflow)
            if d < nd - 1:
                overflow_test[d] = d + 1  # L823-L825: overflow to the next device, not host memory
            test[d] = replace(test[d], overflow="UP")
            mem_test = mem_of(test, overflow_test)
            if fits(mem_test):
                ngl, overflow, mem, dense_start = list(test), overflow_test, mem_test, start_test
                test[d] = replace(test[d], overflow="GATE")
                mem_test = mem_of(test, overflow_test)
                if fits(mem_test):
                    ngl, overflow, mem, dense_start = list(test), overflow_test, mem_test, start_test
            else:
                test[d] = replace(test[d], overflow="ATTN")
                mem_test = mem_of(test, overflow_test)
                if fits(mem_test):
                    ngl, overflow, mem, dense_start = list(test), overflow_test, mem_test, start_test
        d += 1
    return Plan(tuple(ngl), tuple(overflow)), mem
