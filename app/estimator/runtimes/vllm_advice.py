"""Will vLLM start, and if not, the smallest changes that make it start.

vLLM refuses to start when the requested share exceeds the memory free at start
("Free memory on device ... is less than desired GPU memory utilization"), when nothing is left for the
KV cache ("No available memory for the cache blocks"), or when one max_model_len sequence does not fit
("To serve at least one request with the models's max seq len ... the estimated maximum model length
is N"): vllm/v1/worker/gpu_worker.py, vllm/v1/core/kv_cache_utils.py check_enough_kv_cache_memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from math import ceil

from app.estimator.io import VllmFix
from app.estimator.kv_cache import KV_TYPES
from app.estimator.runtimes import vllm_kv
from app.estimator.runtimes.vllm_flags import VllmFlags, tp_allowed
from app.estimator.runtimes.vllm_memory import Stage, cuda_context
from app.estimator.spec import ModelSpec

GiB = 1 << 30
MAX_TP = 64  # largest gpu_count the API accepts (io.MAX_GPUS)


@dataclass(frozen=True, slots=True)
class Verdict:
    starts: bool
    shortfall: int  # bytes missing (0 when it starts)
    reason: str
    blocks: int  # KV blocks on every GPU (the smallest stage's count)


def blocks_per_sequence(f: VllmFlags, tokens: int | None = None) -> int:
    """Block ids one sequence of `tokens` (default max_model_len) holds, summed over the KV cache groups."""
    tokens = f.max_model_len if tokens is None else tokens
    if f.kv_groups is None:
        return ceil(tokens / f.block_size)
    return sum(vllm_kv.blocks_per_request(g, f.block_size, tokens, f.in_flight) for g in f.kv_groups)


def verdict(f: VllmFlags, stages: list[Stage], total: int) -> Verdict:
    """Startup outcome on GPUs of `total` bytes each (as torch.cuda.mem_get_info reports them)."""
    requested = int(f.gpu_memory_utilization * total)
    free = total - cuda_context(f)
    budgets = [s.budget(requested) for s in stages]
    blocks = min(max(0, b) // s.block_bytes for b, s in zip(budgets, stages, strict=True))
    if requested > free:
        return Verdict(False, requested - free, f"gpu_memory_utilization asks for {requested / GiB:.2f} GiB "
                       f"but only {free / GiB:.2f} GiB are free once the CUDA context exists", 0)
    short = max(blocks_per_sequence(f) * s.block_bytes - b for b, s in zip(budgets, stages, strict=True))
    if min(budgets) <= 0:
        return Verdict(False, short, f"nothing is left for the KV cache ({min(budgets) / GiB:.2f} GiB)", 0)
    if short > 0:
        return Verdict(False, short, f"one sequence of max_model_len {f.max_model_len:,} tokens needs "
                       f"{short / GiB:.2f} GiB more KV cache than the budget holds", blocks)
    return Verdict(True, 0, "", blocks)


Recompute = Callable[[VllmFlags], list[Stage]]


def _utilization(f: VllmFlags, stages: list[Stage], total: int) -> VllmFix | None:
    need = max(s.weights + s.activation + s.non_torch + blocks_per_sequence(f) * s.block_bytes for s in stages)
    u = ceil(100 * need / total) / 100
    if u > 1 or u * total > total - cuda_context(f) or u <= f.gpu_memory_utilization:
        return None
    return VllmFix(flag="gpu_memory_utilization", value=f"{u:.2f}",
                   note=f"the CUDA context ({cuda_context(f) / GiB:.2f} GiB) still fits beside it")


def _lower_utilization(f: VllmFlags, total: int) -> VllmFix | None:
    u = (total - cuda_context(f)) * 100 // total / 100
    if u <= 0 or u >= f.gpu_memory_utilization:
        return None
    return VllmFix(flag="gpu_memory_utilization", value=f"{u:.2f}", note="at most the memory free at start")


def _max_model_len(f: VllmFlags, stages: list[Stage], total: int, sequence: int) -> VllmFix | None:
    requested = int(f.gpu_memory_utilization * total)
    blocks = min(s.budget(requested) // s.block_bytes for s in stages)
    if blocks < 1:
        return None
    longest = blocks * f.block_size
    note = "what vLLM suggests" if longest >= sequence else f"shorter than the requested {sequence:,} tokens"
    return VllmFix(flag="max_model_len", value=str(longest), note=note)


def _fp8(f: VllmFlags, recompute: Recompute, total: int) -> VllmFix | None:
    if f.kv.slug == "fp8":
        return None
    g = replace(f, kv=KV_TYPES["fp8"], kv_name="fp8")
    if not verdict(g, recompute(g), total).starts:
        return None
    return VllmFix(flag="kv_cache_dtype", value="fp8", note="halves KV bytes per token (fp32: quarters)")


def _more_gpus(spec: ModelSpec, f: VllmFlags, recompute: Recompute, total: int) -> VllmFix | None:
    heads = spec.language_model.heads
    for tp in range(f.tp + 1, min(heads, MAX_TP // f.pp) + 1):
        if not tp_allowed(spec.language_model, tp):
            continue
        g = replace(f, tp=tp)
        if verdict(g, recompute(g), total).starts:
            return VllmFix(flag="tensor_parallel_size", value=str(tp),
                           note=f"{tp * f.pp} GPUs of this kind (gpu_count {tp * f.pp})")
    return None


def fixes(spec: ModelSpec, f: VllmFlags, stages: list[Stage], total: int, sequence: int,
          recompute: Recompute) -> list[VllmFix]:
    """Each single change that lets vLLM start, cheapest first."""
    found = [
        _lower_utilization(f, total) if int(f.gpu_memory_utilization * total) > total - cuda_context(f)
        else _utilization(f, stages, total),
        _fp8(f, recompute, total),
        _max_model_len(f, stages, total, sequence),
        _more_gpus(spec, f, recompute, total),
    ]
    return [x for x in found if x is not None]
