"""Will vLLM start, and if not, the smallest changes that make it start.

vLLM refuses to start when the requested share exceeds the memory free at start
("Free memory on device ... is less than desired GPU memory utilization"), when nothing is left for the
KV cache ("No available memory for the cache blocks"), or when one max_model_len sequence does not fit
("To serve at least one request with the models's max seq len ... the estimated maximum model length
is N"): vllm/v1/worker/gpu_worker.py, vllm/v1/core/kv_cache_utils.py check_enough_kv_cache_memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import ceil

from app.estimator.kv_cache import KV_TYPES
from app.estimator.memo import ByIdentity
from app.estimator.runtimes import vllm_kv
from app.estimator.runtimes.vllm_flags import VllmFlags, evolve, tp_allowed
from app.estimator.runtimes.vllm_memory import Stage, cuda_context
from app.estimator.runtimes.vllm_profiles import extensible_margin
from app.estimator.schema import VllmFix
from app.estimator.spec import ModelSpec

GiB = 1 << 30
MAX_TP = 64  # largest gpu_count the API accepts (io.MAX_GPUS)


@dataclass(slots=True)  # not frozen: one or more per vLLM estimate (a frozen __init__ costs about twice)
class Verdict:
    """The one decision on whether vLLM starts; every fit/does-not-fit figure of the answer derives from it."""

    starts: bool
    shortfall: int  # bytes missing per GPU (0 when it starts)
    reason: str
    blocks: int  # KV blocks every GPU allocates (the smallest stage's count), whether or not it starts
    requested: int = 0  # bytes per GPU the KV budget is taken from (0.34 extensible: capped by the free memory)
    headroom: int = 0  # per GPU: KV budget beyond one max_model_len sequence when it starts, else -shortfall


def blocks_per_sequence(f: VllmFlags, tokens: int | None = None, in_flight: int | None = None) -> int:
    """Block ids one sequence of `tokens` (default max_model_len) holds, summed over the KV cache groups;
    `in_flight`: windowed groups' in-flight tokens for another max_num_batched_tokens than f's (default f.in_flight)."""
    tokens = f.max_model_len if tokens is None else tokens
    if f.kv_groups is None:
        return ceil(tokens / f.block_size)
    in_flight = f.in_flight if in_flight is None else in_flight
    return sum(vllm_kv.blocks_per_request(g, f.block_size, tokens, in_flight) for g in f.kv_groups)


def budgets(f: VllmFlags, stages: list[Stage], total: int) -> list[int]:
    """Each stage's KV budget on GPUs of `total` bytes."""
    requested = int(f.gpu_memory_utilization * total)
    free = total - cuda_context(f) if f.extensible else None
    return [s.budget(requested, free) for s in stages]


@dataclass(slots=True)  # not frozen: two per vLLM estimate, and a frozen __init__ costs about twice as much
class StartRule:
    """`verdict`'s (starts, headroom) alone, without its message, in closed form over the GPU's total: the fit
    list asks it for every catalog GPU (tests/test_estimate_cache.py holds it equal to `verdict` on each GPU and
    on a sweep of totals).

    With budget_i = requested - non_kv_i (Stage.budget) and need_i = one max_model_len sequence's blocks:
    min_i budget_i = requested - max non_kv_i and min_i (budget_i - need_i) = requested - max (non_kv_i + need_i).
    The extensible cache (0.34) caps budget_i by min(requested - used_i, free - used_i - margin_i) - peak_i, so
    both minima also take free - max (used_i + margin_i + peak_i [+ need_i]); all integers, no rounding moved."""

    utilization: float
    context: int  # cuda_context: total - context is the memory free at start
    extensible: bool
    budget_floor: int  # the KV budget is requested - budget_floor (no stage: the widest of them)
    spare_floor: int  # ... and what is left after one sequence, requested - spare_floor
    free_budget_floor: int = 0  # extensible: also capped by free - free_budget_floor ...
    free_spare_floor: int = 0  # ... and free - free_spare_floor after one sequence

    @classmethod
    def of(cls, f: VllmFlags, stages: Sequence[Stage], per_sequence: int) -> StartRule:
        """`per_sequence`: blocks_per_sequence(f). Only f's utilization, CUDA context and extensible switch are
        read: the flags of the same request on another GPU class give the same (vllm_flags.for_gpu)."""
        return cls.of_rows(f, floor_rows(stages), per_sequence)

    @classmethod
    def of_rows(cls, f: VllmFlags, rows: Sequence[tuple[int, int, int, int]], per_sequence: int) -> StartRule:
        """`of` from the stages' floor_rows (the fit list keeps them per GPU class, vllm._Setup)."""
        if len(rows) == 1:  # one pipeline stage: the maxima are its terms
            (nk, a, b, bb), = rows
            need = per_sequence * bb
            if not f.extensible:
                return cls(f.gpu_memory_utilization, cuda_context(f), False, nk, nk + need)
            return cls(f.gpu_memory_utilization, cuda_context(f), True, a, a + need, b, b + need)
        if not f.extensible:
            return cls(f.gpu_memory_utilization, cuda_context(f), False, max(nk for nk, _, _, _ in rows),
                       max(nk + per_sequence * bb for nk, _, _, bb in rows))
        return cls(f.gpu_memory_utilization, cuda_context(f), True, max(a for _, a, _, _ in rows),
                   max(a + per_sequence * bb for _, a, _, bb in rows), max(b for _, _, b, _ in rows),
                   max(b + per_sequence * bb for _, _, b, bb in rows))

    def many(self, totals: Sequence[int]) -> list[tuple[bool, int]]:
        """__call__ on each total."""
        u, context = self.utilization, self.context
        return self.at([int(u * t) for t in totals], [t - context for t in totals])

    def at(self, asked: Sequence[int], free: Sequence[int]) -> list[tuple[bool, int]]:
        """`many` from each GPU's asked = int(utilization x total) and free = total - context (the fit list keeps
        both per GPU class): one comprehension, no call per GPU. It starts when both budgets are positive and both
        spares >= 0 (min(x, y) > 0 is x > 0 and y > 0); the headroom is the smaller spare."""
        floor, spare_floor = self.budget_floor, self.spare_floor
        if not self.extensible:
            return [(False, f - a) if a > f else (a > floor and a >= spare_floor, a - spare_floor)
                    for a, f in zip(asked, free, strict=True)]
        free_floor, free_spare_floor = self.free_budget_floor, self.free_spare_floor
        return [(a >= spare_floor and f >= free_spare_floor and a > floor and f > free_floor,
                 a - spare_floor if a - spare_floor < f - free_spare_floor else f - free_spare_floor)
                for a, f in zip(asked, free, strict=True)]

    def __call__(self, total: int) -> tuple[bool, int]:
        return self.many((total,))[0]


def floor_rows(stages: Sequence[Stage]) -> list[tuple[int, int, int, int]]:
    """Per stage: non_kv, max(non_kv, used + peak), used + margin + peak (used: weights + non-torch + graph pool,
    peak: the activation) and block bytes, StartRule's stage terms."""
    rows = []
    for s in stages:
        nk, used = s.non_kv(), s.weights + s.non_torch + s.graph_pool
        rows.append((nk, max(nk, used + s.activation), used + extensible_margin(s.activation) + s.activation,
                     s.block_bytes))
    return rows


class Budgets:
    """What `verdict` takes from the stages, the GPU's total and the flags' utilization, extensible switch and CUDA
    context, none of which max_model_len changes: the memory asked for (capped by the free memory with the
    extensible cache) and free at start, each stage's KV budget, the smallest of them and the KV blocks every GPU
    allocates (the smallest stage's count). The caller keeps one per stages, utilization and total."""

    __slots__ = ("requested", "free", "kv", "least", "blocks")

    def __init__(self, f: VllmFlags, stages: Sequence[Stage], total: int) -> None:
        asked = int(f.gpu_memory_utilization * total)  # vllm/v1/worker/utils.py request_memory
        self.free = total - cuda_context(f)
        self.requested = min(asked, self.free) if f.extensible else asked  # 0.34's extensible KV cache: a cap
        self.kv = budgets(f, stages, total)
        self.least = min(self.kv)
        self.blocks = min(max(0, b) // s.block_bytes for b, s in zip(self.kv, stages, strict=True))

    def verdict(self, f: VllmFlags, stages: Sequence[Stage], per_sequence: int) -> Verdict:
        """The startup outcome for flags `f` (max_model_len included) whose one sequence holds `per_sequence` block
        ids (blocks_per_sequence(f))."""
        kv, requested, free, blocks = self.kv, self.requested, self.free, self.blocks
        if len(stages) == 1:  # one pipeline stage: its own figures
            spare = kv[0] - per_sequence * stages[0].block_bytes
        else:
            spare = min(b - per_sequence * s.block_bytes for b, s in zip(kv, stages, strict=True))
        if requested > free:  # request_memory raises (not with the extensible cache: requested is capped)
            short = requested - free
            return Verdict(False, short, f"gpu_memory_utilization asks for {requested / GiB:.2f} GiB but only "
                           f"{free / GiB:.2f} GiB are free once the CUDA context exists", blocks, requested, -short)
        if self.least <= 0:
            return Verdict(False, -spare, f"nothing is left for the KV cache ({self.least / GiB:.2f} GiB)", blocks,
                           requested, spare)
        if spare < 0:
            return Verdict(False, -spare, f"one sequence of max_model_len {f.max_model_len:,} tokens needs "
                           f"{-spare / GiB:.2f} GiB more KV cache than the budget holds", blocks, requested, spare)
        return Verdict(True, 0, "", blocks, requested, spare)


def verdict(f: VllmFlags, stages: Sequence[Stage], total: int, kept: Budgets | None = None) -> Verdict:
    """Startup outcome on GPUs of `total` bytes each (as torch.cuda.mem_get_info reports them); `kept`:
    Budgets(f, stages, total), when the caller keeps it."""
    return (kept or Budgets(f, stages, total)).verdict(f, stages, blocks_per_sequence(f))


Recompute = Callable[[VllmFlags], list[Stage]]


_BUDGETS = ByIdentity()


def _starts(f: VllmFlags, recompute: Recompute, total: int) -> bool:
    """Whether flags `f` (a fix's) start on GPUs of `total`; their Budgets, which max_model_len leaves alone, kept per
    stages tuple (vllm_memory.stages keeps those per model, format and flags but max_model_len and the utilization),
    utilization and total."""
    stages = recompute(f)
    if type(stages) is not tuple:
        return verdict(f, stages, total).starts
    kept = _BUDGETS.get(stages, (f.gpu_memory_utilization, total), lambda: Budgets(f, stages, total))
    return verdict(f, stages, total, kept).starts


def _utilization(f: VllmFlags, recompute: Recompute, total: int, v: Verdict) -> VllmFix | None:
    """The nearest utilization that starts: lower when it asks for more than is free, higher when the KV
    budget is short; checked by the same verdict."""
    if f.extensible and v.requested < int(f.gpu_memory_utilization * total):
        return None  # capped by the free memory already: more utilization changes nothing
    free = total - cuda_context(f)
    if int(f.gpu_memory_utilization * total) > free:
        u = free * 100 // total / 100
        note = "at most the memory free at start"
    else:
        need = v.shortfall + int(f.gpu_memory_utilization * total)
        u = ceil(100 * need / total) / 100
        note = f"the CUDA context ({cuda_context(f) / GiB:.2f} GiB) still fits beside it"
    if not 0 < u <= 1 or u == f.gpu_memory_utilization:
        return None
    if not _starts(evolve(f, gpu_memory_utilization=u), recompute, total):
        return None
    return VllmFix(flag="gpu_memory_utilization", value=f"{u:.2f}", note=note)


def _fp8(f: VllmFlags, recompute: Recompute, total: int) -> VllmFix | None:
    if f.kv.slug == "fp8":
        return None
    if not _starts(evolve(f, kv=KV_TYPES["fp8"], kv_name="fp8"), recompute, total):
        return None
    return VllmFix(flag="kv_cache_dtype", value="fp8", note="halves KV bytes per token (fp32: quarters)")


def _max_model_len(f: VllmFlags, recompute: Recompute, total: int, sequence: int, v: Verdict) -> VllmFix | None:
    """A shorter max_model_len, only when the KV budget is what falls short; never longer than asked and
    never shorter than the request's own sequence (the request would not be served)."""
    longest = v.blocks * f.block_size
    if v.blocks < 1 or not sequence <= longest < f.max_model_len:
        return None
    if not _starts(evolve(f, max_model_len=longest), recompute, total):
        return None
    return VllmFix(flag="max_model_len", value=str(longest),
                   note=f"the longest sequence the KV budget holds (asked: {f.max_model_len:,})")


def _more_gpus(spec: ModelSpec, f: VllmFlags, recompute: Recompute, total: int) -> VllmFix | None:
    heads = spec.language_model.heads
    for tp in range(f.tp + 1, min(heads, MAX_TP // f.pp) + 1):
        if not tp_allowed(spec.language_model, tp):
            continue
        if _starts(evolve(f, tp=tp), recompute, total):
            return VllmFix(flag="tensor_parallel_size", value=str(tp),
                           note=f"{tp * f.pp} GPUs of this kind (gpu_count {tp * f.pp})")
    return None


def fixes(spec: ModelSpec, f: VllmFlags, stages: list[Stage], total: int, sequence: int,
          recompute: Recompute, v: Verdict | None = None) -> list[VllmFix]:
    """Each single change that makes the verdict say it starts, smallest first (each one checked); `v`: the
    verdict on `stages` at `total`, when the caller has it."""
    v = verdict(f, stages, total) if v is None else v
    if v.starts:
        return []
    found = [
        _utilization(f, recompute, total, v),
        _fp8(f, recompute, total),
        _max_model_len(f, recompute, total, sequence, v),
        _more_gpus(spec, f, recompute, total),
    ]
    return [x for x in found if x is not None]
