"""llama.cpp's --fit (on by default since 2026): fit layers and context to the free memory of the device.

A transcription, for one device, of `common_params_fit_impl` in ggml-org/llama.cpp common/fit.cpp (commit
6d0892b; `llama_params_fit_impl` in src/llama.cpp before it moved to common/). llama.cpp asks its own memory
projection (a no_alloc load) for each candidate; here the candidate's memory comes from our buffers
(`project`), so the decisions are llama.cpp's rules applied to our figures:
1. projected use = model + context + compute on the device; if free - used >= margin (--fit-target,
   1024 MiB), nothing changes;
2. if the user gave no context (n_ctx 0 = the training context) and n_ctx_train > --fit-ctx (4096): project
   at n_ctx = --fit-ctx and interpolate linearly to the context that uses free - margin, rounded down to a
   multiple of 256 and not below --fit-ctx; on one device that is the answer;
3. else (unless the user set -ngl) place layers back to front by the method of false position, for a MoE
   model with every layer's expert tensors in host memory (the pattern `blk.N.ffn_(up|down|gate_up|gate)_
   (ch|)exps`), the output layer always whole;
4. a MoE model whose dense part fits then converts dense-only layers to whole layers front to back, and tries
   to keep part of one more layer (LAYER_FRACTION_UP, then GATE; else ATTN).
Multi-device splits (tensor_split) are not modelled: one device only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MiB = 1 << 20
N_CTX_ROUND = 256  # "round down context for CUDA backend"

# common_layer_fraction_t: which tensors of the first partial layer overflow to host memory
OVERFLOW_PATTERNS = {
    "ATTN": r"blk\.{il}\.ffn_(gate|up|gate_up|down).*",
    "UP": r"blk\.{il}\.ffn_(gate|gate_up|down).*",
    "GATE": r"blk\.{il}\.ffn_down.*",
    "MOE": r"blk\.{il}\.ffn_(up|down|gate_up|gate)_(ch|)exps",
}


@dataclass(frozen=True, slots=True)
class Layers:
    """ngl_t: layers on the device, of which n_part keep (part of) their FFN in host memory."""

    n_layer: int = 0
    n_part: int = 0
    overflow: str = "MOE"  # the first partial layer's overflow type

    @property
    def n_full(self) -> int:
        return self.n_layer - self.n_part

    def overrides(self, hp_ngl: int) -> list[str]:
        """set_ngl_tensor_split_tbo: the -ot patterns, first partial layer by its overflow type, the rest MOE."""
        il0 = hp_ngl + 1 - self.n_layer + self.n_full
        return [OVERFLOW_PATTERNS[self.overflow if il == il0 else "MOE"].format(il=il)
                for il in range(il0, il0 + self.n_part)]


@dataclass
class FitDecision:
    status: str
    n_ctx: int
    layers: Layers | None  # None: -ngl as asked
    projected: int
    notes: list[str] = field(default_factory=list)


Project = Callable[[int, Layers | None], int]  # (n_ctx, layers) -> device bytes (model + context + compute)


def fit(project: Project, free: int, margin: int, n_ctx: int, n_ctx_train: int, n_ctx_min: int, hp_ngl: int,
        moe: bool, ngl_set: bool) -> FitDecision:
    """common_params_fit_impl for one device. `n_ctx` as asked (0: the training context)."""
    full = project(n_ctx, None)
    if free - full >= margin:
        return FitDecision("unchanged", n_ctx or n_ctx_train, None, full,
                           [f"projected {full // MiB} MiB leaves >= {margin // MiB} MiB free: no changes"])
    notes = [f"projected {full // MiB} MiB of {free // MiB} MiB free: "
             f"needs {(full + margin - free) // MiB} MiB less"]
    target = free - margin
    if n_ctx == 0 and n_ctx_train > n_ctx_min:
        used_min = project(n_ctx_min, None)
        if target > used_min:
            ctx = n_ctx_min + (n_ctx_train - n_ctx_min) * (target - used_min) // (full - used_min)
            ctx = max(ctx - ctx % N_CTX_ROUND, n_ctx_min)
            notes.append(f"context reduced from {n_ctx_train} to {ctx}")
            return FitDecision("context", ctx, None, project(ctx, None), notes)
        notes.append(f"context reduced to {n_ctx_min}: not enough alone")
        n_ctx = n_ctx_min
    elif n_ctx:
        notes.append(f"context set by the user to {n_ctx}: no change")
    if ngl_set:
        notes.append("n_gpu_layers already set by the user: --fit gives up and loads as asked")
        return FitDecision("failed", n_ctx or n_ctx_train, None, project(n_ctx, None), notes)
    layers, mem = _fill(project, n_ctx, target, hp_ngl, moe)
    # global_surplus_cpu_moe > 0: every layer offloaded with all expert tensors in host memory fits
    if moe and layers.n_layer > 0 and project(n_ctx, Layers(hp_ngl + 1, hp_ngl + 1)) < target:
        layers, mem = _convert(project, n_ctx, target, hp_ngl, layers, mem)
    status = "layers" if mem <= target else "failed"
    notes.append(f"{layers.n_layer} layers on the device ({layers.n_part} with experts in host memory), "
                 f"{mem // MiB} MiB projected")
    return FitDecision(status, n_ctx or n_ctx_train, layers, mem, notes)


def _step(delta: int, target: int, mem: int, mem_high: int) -> int:
    """The false-position step as the C++ computes it: int64 division truncating toward zero, stored in a
    uint32_t (a negative step wraps around), then clamped to [1, delta - 1]."""
    num, den = delta * (target - mem), mem_high - mem
    q = abs(num) // abs(den) * (1 if (num >= 0) == (den > 0) else -1) if den else 0
    return min(max(q % (1 << 32), 1), delta - 1)


def _fill(project: Project, n_ctx: int, target: int, hp_ngl: int, moe: bool) -> tuple[Layers, int]:
    """Step 3: dense (or dense-only) layers back to front, by false position between low and high."""
    low, mem = Layers(), project(n_ctx, Layers())
    n = hp_ngl + 1
    high = Layers(n, n - 1 if moe else 0)
    mem_high = project(n_ctx, high)
    if mem_high <= target:
        return high, mem_high
    delta = high.n_layer - low.n_layer
    while delta > 1:
        step = _step(delta, target, mem, mem_high)
        n_part = low.n_part + ((step - 1 if low.n_part == 0 else step) if moe else 0)
        test = Layers(low.n_layer + step, n_part)
        mem_test = project(n_ctx, test)
        if mem_test <= target:
            low, mem = test, mem_test
        else:
            high, mem_high = test, mem_test
        delta = high.n_layer - low.n_layer
    return low, mem


def _convert(project: Project, n_ctx: int, target: int, hp_ngl: int, low: Layers, mem: int) -> tuple[Layers, int]:
    """Step 4 (one device): turn dense-only layers into whole ones, then try part of one more layer."""
    high = Layers(low.n_layer, 0)
    mem_high = project(n_ctx, high)
    if mem_high <= target:
        low, mem = high, mem_high
    else:
        delta = high.n_full - low.n_full
        while delta > 1:
            step = _step(delta, target, mem, mem_high)
            test = Layers(low.n_layer, low.n_part - min(step, low.n_part))
            mem_test = project(n_ctx, test)
            if mem_test <= target:
                low, mem = test, mem_test
            else:
                high, mem_high = test, mem_test
            delta = high.n_full - low.n_full
    if low.n_part > 0 and low.n_layer > 1:  # part of one more layer: UP, then GATE; else ATTN
        for kinds in (("UP", "GATE"), ("ATTN",)):
            best = None
            for kind in kinds:
                test = Layers(low.n_layer, low.n_part, kind)
                mem_test = project(n_ctx, test)
                if mem_test >= target:
                    break
                best = (test, mem_test)
            if best:
                return best
    return low, mem
