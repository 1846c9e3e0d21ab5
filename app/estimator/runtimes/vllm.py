"""vLLM: claims gpu_memory_utilization of each GPU and fills what is left after the weights, the profiled
activation peak and the non-torch memory with KV blocks; the CUDA context and the CUDA-graph pool land
above that budget (vllm/v1/worker/gpu_worker.py; shared/reference/quantization-and-runtimes.md s4).

The answer is per GPU, as vLLM prints it at startup (`VllmDetail`); the breakdown sums all GPUs.
Modules: vllm_flags (flags and defaults), vllm_profiles (constants per release), vllm_memory (per-stage
arithmetic), vllm_advice (does it start; the smallest fix).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

from app.estimator.gpus import Decide, FitRows
from app.estimator.memo import ByIdentity
from app.estimator.quantization import Format
from app.estimator.runtimes import vllm_advice, vllm_flags, vllm_kv, vllm_memory, vllm_profiles
from app.estimator.runtimes.base import RuntimeInput, RuntimeMemory
from app.estimator.runtimes.vllm_flags import VllmFlags
from app.estimator.runtimes.vllm_memory import Stage
from app.estimator.runtimes.vllm_profiles import NON_KV_MEASURES, GiB
from app.estimator.schema import GpuFit, VllmDetail, VllmStage, VramRequest
from app.estimator.spec import ModelSpec


def _flags(inp: RuntimeInput) -> tuple[VllmFlags, VllmFlags | None]:
    req = inp.request
    if req is None:  # callers that build RuntimeInput by hand: vLLM's defaults
        req = VramRequest(model=inp.spec.slug, runtime="vllm", gpu_count=inp.gpu_count)
    per_gpu = inp.gpu_memory // inp.gpu_count if inp.gpu_memory is not None else None
    return vllm_flags.resolve_kept(inp.spec, inp.fmt, inp.kv, req, inp.sequence, per_gpu, inp.gpu_slug)


def _binding(stages: Sequence[Stage], kv: list[int] | None) -> int:
    """Index of the stage with the fewest KV blocks (vLLM gives every worker the smallest count), else the first;
    `kv`: each stage's budget (vllm_advice.budgets), None without a GPU."""
    if kv is None:
        return 0
    return min(range(len(stages)), key=lambda i: kv[i] // stages[i].block_bytes)


def _write_notes(f: VllmFlags, s: Stage) -> list[str]:
    p = f.profile
    notes = [
        f"vLLM {p.name} ({p.engine} engine): gpu_memory_utilization {f.gpu_memory_utilization:.2f}, KV blocks of "
        f"{f.block_size} tokens, dtype {f.dtype}, KV {f.kv_name}",
        f"profiling pass: {f.max_num_batched_tokens:,} batched tokens, sampler over {f.max_num_seqs:,} sequences "
        f"({p.sampler_source})",
        f"non-torch {s.non_torch / GiB:.2f} GiB per GPU ({p.non_torch_source}; NCCL with tensor parallelism)",
        f"per GPU: tensor parallel {f.tp} x pipeline parallel {f.pp}; linears and KV heads split (KV heads "
        f"replicated when fewer than TP), embeddings vocab-parallel, norms, router, row-parallel biases and rotary "
        f"cache replicated ({s.replicated / GiB:.3f} GiB)",
        f"non-KV memory measured as {NON_KV_MEASURES[p.non_kv_measure]}",
    ]
    if f.dp > 1 or f.ep:
        moe = (f"whole experts, experts / {f.tp * f.dp} per GPU (--enable-expert-parallel)" if f.ep and f.tp * f.dp > 1
               else f"every expert's intermediate size split over {f.tp * f.dp} GPUs (tensor x data parallel)")
        notes.append(f"data parallel {f.dp}: {f.dp} engines of {f.tp * f.pp} GPUs, each with its own KV cache and its "
                     f"share of the requests; MoE layers: {moe} (FusedMoEParallelConfig.make)")
    if f.enforce_eager:
        notes.append("enforce_eager: no CUDA graphs; the CUDA context sits above the budget")
    elif f.graph_estimate:
        notes.append(f"CUDA-graph estimate {s.graph_estimate / GiB:.2f} GiB inside the budget "
                     f"(VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1; {p.graph_estimate_source}); the CUDA context "
                     "sits above it")
    else:
        notes.append("CUDA context and CUDA-graph pool sit above the budget (VLLM_MEMORY_PROFILER_ESTIMATE_"
                     "CUDAGRAPHS off)" if p.graph_estimate_switch else
                     "CUDA context and CUDA-graph pool sit above the budget")
    if f.extensible:
        notes.append("extensible KV cache (0.34): sized after warmup and graph capture from measured free memory, "
                     "min(requested - used, free - used - margin) - transient peak, margin max(1 GiB, 0.75 x "
                     "transient peak) (v1/worker/extensible_kv_cache.py:592)")
    if f.draft_layers:
        notes.append(f"speculative decoding, method mtp: the checkpoint's {f.draft_layers} MTP layer(s) loaded as the "
                     f"draft ({s_draft(f)}), {f.speculative_tokens} speculative token(s) per step; it shares the "
                     "target's embed_tokens and lm_head (llm_base_proposer.py load_model) and its attention layers "
                     "join the KV cache plan. Not modelled: the draft's share of the profiled activation peak and "
                     "CUDA graphs, the scheduler's lookahead slots")
    if p.checked_on:
        notes.append(f"vLLM {p.name} checked on: {p.checked_on}")
    if not p.calibrated:
        notes.append(f"vLLM {p.name} is not checked against a startup log: constants of a neighbouring release")
    return notes


def s_draft(f: VllmFlags) -> str:
    return f"{f.draft_layers} decoder layer(s) with their glue, weights on the last pipeline stage"


def _equivalent(f: VllmFlags, s: Stage, total: int | None) -> tuple[float | None, float | None]:
    """gpu_worker.py:810 (0.34): equivalent = util - estimate / total, suggested = min(util + estimate / total, 1)."""
    if total is None or not s.graph_estimate:
        return None, None
    delta = s.graph_estimate / total
    return round(f.gpu_memory_utilization - delta, 4), min(round(f.gpu_memory_utilization + delta, 4), 1.0)


class _AtTotal:
    """What an estimate takes from its flags but max_model_len, its stages and the per-GPU total (None: no GPU):
    the budgets verdict reads (vllm_advice.Budgets), each stage's KV budget, the binding stage (_binding), the CUDA
    context and graph pool, the equivalent utilization and the line vLLM prints about it, the sums over stages,
    and every VllmDetail figure none of max_model_len, the batch and the verdict changes (`fixed`)."""

    __slots__ = ("budgets", "kv", "binding", "rows", "context", "graphs", "equivalent", "printed", "weights",
                 "activation", "overhead", "block_bytes", "fixed")

    def __init__(self, f: VllmFlags, stages: Sequence[Stage], total: int | None) -> None:
        self.budgets = vllm_advice.Budgets(f, stages, total) if total is not None else None
        self.kv = self.budgets.kv if self.budgets is not None else None
        self.binding = _binding(stages, self.kv)
        self.rows = tuple(_stage(x, self.kv[i] if self.kv is not None else None) for i, x in enumerate(stages))
        s = stages[self.binding]
        self.context, self.graphs = vllm_memory.cuda_context(f), vllm_memory.graph_pool(f, s)
        self.equivalent = _equivalent(f, s, total)
        equivalent, suggested = self.equivalent
        self.printed = "" if equivalent is None else (
            f"vLLM prints: the current --gpu-memory-utilization={f.gpu_memory_utilization:.4f} is equivalent to "
            f"--gpu-memory-utilization={equivalent:.4f} without CUDA graph memory profiling; to keep the KV cache of "
            f"a release before 0.21, --gpu-memory-utilization={suggested:.4f} (gpu_worker.py, 0.21+)")
        self.weights = sum(x.weights for x in stages)
        self.activation = sum(x.activation for x in stages)
        self.overhead = sum(self.context + x.non_torch + vllm_memory.graph_pool(f, x) for x in stages)
        self.block_bytes = sum(x.block_bytes for x in stages)
        blocks = self.budgets.blocks if self.budgets is not None else None
        self.fixed = dict(
            version=f.profile.name, gpu_memory_utilization=f.gpu_memory_utilization, max_num_seqs=f.max_num_seqs,
            max_num_batched_tokens=f.max_num_batched_tokens, block_size=f.block_size, dtype=f.dtype,
            kv_cache_dtype=f.kv_name, quantization=f.method, tensor_parallel_size=f.tp, pipeline_parallel_size=f.pp,
            data_parallel_size=f.dp, enable_expert_parallel=f.ep, enforce_eager=f.enforce_eager,
            gpu_total_bytes=total, weights_bytes=s.weights, weights_replicated_bytes=s.replicated,
            activation_peak_bytes=s.activation, non_torch_bytes=s.non_torch,
            requested_bytes=self.budgets.requested if self.budgets is not None else None,
            kv_budget_bytes=self.kv[self.binding] if self.kv is not None else None, kv_block_bytes=s.block_bytes,
            kv_blocks=blocks, cuda_graph_bytes=self.graphs, cuda_context_bytes=self.context,
            process_bytes=(self.context + s.weights + s.activation + s.non_torch + blocks * s.block_bytes + self.graphs
                           if blocks is not None else None),
            cuda_graph_estimate_bytes=s.graph_estimate, equivalent_gpu_memory_utilization=equivalent,
            suggested_gpu_memory_utilization=suggested, extensible_kv_cache=f.extensible,
            calibrated=f.profile.calibrated, speculative_method="mtp" if f.draft_layers else None,
            num_speculative_tokens=f.speculative_tokens, draft_layers=f.draft_layers,
            draft_weights_bytes=stages[-1].draft_weights, draft_kv_bytes_per_token=stages[-1].draft_token_bytes,
            draft_kv_bytes=(blocks * f.block_size * stages[-1].draft_token_bytes
                            if f.draft_layers and blocks is not None and not _grouped(f) else None),
        )


class _Setup:
    """What every request answered from one kept flags object shares (vllm_flags.resolve_kept: one model, format,
    KV type, GPU batch class and set of request fields, any max_model_len; V0: and its batched tokens): the stages,
    the assumptions, the state rule, the recurrent state per sequence and its note, each stage's non-KV bytes, and,
    kept as they are asked, _AtTotal per GPU total and each fit-list GPU class's start-rule terms."""

    __slots__ = ("stages", "notes", "state_rule", "state_per_sequence", "state_note", "non_kv", "warning", "_at",
                 "_classes")

    def __init__(self, spec: ModelSpec, fmt: Format, f: VllmFlags, vllm_version: str | None) -> None:
        self.stages = stages = vllm_memory.stages(spec, fmt, f)
        self.notes = tuple(_write_notes(f, stages[0]))
        self.state_rule = vllm_memory.state_rule(spec.language_model, f)
        self.state_per_sequence, self.state_note = _state(f, stages)
        self.non_kv = [(s.non_kv(), s.block_bytes, s.state_bytes) for s in stages]
        self.warning = vllm_profiles.version_warning(vllm_version)
        self._at: dict[int | None, _AtTotal] = {}
        self._classes: dict[bool, tuple[list[tuple[int, int, int, int]], int | None]] = {}

    def at(self, f: VllmFlags, total: int | None) -> _AtTotal:
        """_AtTotal on GPUs of `total` bytes (the GPU totals asked of one setup are few: the catalog's)."""
        at = self._at.get(total)
        if at is None:
            if len(self._at) >= 64:
                self._at.clear()
            at = self._at[total] = _AtTotal(f, self.stages, total)
        return at

    def start_rule(self, spec: ModelSpec, fmt: Format, f: VllmFlags, req: VramRequest,
                   example: tuple[int, str, bool]) -> vllm_advice.StartRule:
        """StartRule.of the flags vllm_flags.for_gpu(f, batch) gives on the GPUs of `example`'s batch-default class
        (CUDA total, slug, large_batch_gpu), from f and the class's stage terms, kept per class: only the batch
        differs between classes (vllm_flags.batch_for: within one setup a function of the class alone), so only the
        stages (another activation peak) and windowed groups' in-flight tokens."""
        hit = self._classes.get(example[2])
        if hit is None:
            batch = vllm_flags.batch_for(f, req, example[0], example[1])
            stages = self.stages
            if batch != (f.max_num_seqs, f.max_num_batched_tokens):
                stages = vllm_memory.stages_at(spec, fmt, f, batch)
            in_flight = vllm_kv.in_flight_tokens(f.kv_release, batch[1]) if f.kv_release is not None else 0
            hit = self._classes[example[2]] = (vllm_advice.floor_rows(stages), in_flight)
        rows, in_flight = hit
        return vllm_advice.StartRule.of_rows(f, rows, vllm_advice.blocks_per_sequence(f, in_flight=in_flight))


_SETUPS = ByIdentity()


def _state(f: VllmFlags, stages: Sequence[Stage]) -> tuple[int, str]:
    """(recurrent state bytes per sequence on one GPU's share x TP, as the pool holds them; its note), (0, "")
    without recurrent layers."""
    per_seq = f.tp * sum(s.state_bytes for s in stages)
    state_blocks = _state_blocks(f)
    if per_seq and state_blocks:  # vLLM's plan: Mamba/GDN groups hold pages of the one pool
        real = per_seq
        per_seq = f.tp * state_blocks * stages[0].block_bytes
        groups = [g for g in f.kv_groups if g.kind == "mamba"]
        return per_seq, (
            f"recurrent states: vLLM keeps each Mamba/GDN layer's state ({real:,} bytes per sequence over all of "
            f"them, conv state in {f.dtype}, SSM/GDN state in mamba_ssm_cache_dtype) in a page padded to the "
            f"attention page: attention blocks raised to {f.block_size} tokens so one attention page holds a state "
            "(platforms/interface.py _align_hybrid_block_size); "
            f"{len(groups)} state groups of up to {max(g.layers for g in groups)} layers, {groups[0].state_blocks} "
            f"blocks each per request (mamba_cache_mode align: 2 + prefill checkpoint blocks), {per_seq:,} bytes of "
            "pool per sequence. Those blocks count in the block total and in the concurrency, but not in vLLM's "
            "\"GPU KV cache size: N tokens\", which is int(concurrency x max_model_len)")
    if per_seq:
        return per_seq, (
            f"recurrent states: {per_seq:,} bytes per sequence (conv state in {f.dtype}, SSM/GDN state in the "
            "config's mamba_ssm_dtype), for the batch's sequences; vLLM keeps them in pages of the same pool as the "
            "KV blocks. Its page-size unification and grouping of hybrid models (kv_cache_planning.py) are "
            "modelled for one pipeline stage only: KV blocks here count the attention layers' bytes only")
    return 0, ""


def _detail(f: VllmFlags, at: _AtTotal, sequence: int, verdict: vllm_advice.Verdict | None,
            fixes: list) -> VllmDetail:
    """The figures of the binding stage (at.binding): at.fixed, and those of max_model_len and the verdict."""
    blocks = at.fixed["kv_blocks"]
    tokens = concurrency = None
    if blocks is not None and f.kv_groups is not None:  # vLLM's own capacity formula of the release
        tokens, concurrency = vllm_kv.capacity(f.kv_release, f.kv_groups, blocks, f.block_size, sequence, f.in_flight)
        concurrency = round(concurrency, 2)
    elif blocks is not None:
        tokens, concurrency = blocks * f.block_size, round(blocks / ceil(sequence / f.block_size), 2)
    if verdict is None:
        return VllmDetail(**at.fixed, max_model_len=f.max_model_len, kv_tokens=tokens, max_concurrency=concurrency,
                          headroom_bytes=None, starts=None, shortfall_bytes=0, fixes=fixes, stages=list(at.rows))
    return VllmDetail(**at.fixed, max_model_len=f.max_model_len, kv_tokens=tokens, max_concurrency=concurrency,
                      headroom_bytes=verdict.headroom, starts=verdict.starts, shortfall_bytes=verdict.shortfall,
                      fixes=fixes, stages=list(at.rows))


def _stage(s: Stage, budget: int | None) -> VllmStage:
    return VllmStage(index=s.index, layers=s.layers, weights_bytes=s.weights, activation_peak_bytes=s.activation,
                     non_torch_bytes=s.non_torch, kv_budget_bytes=budget, kv_block_bytes=s.block_bytes,
                     kv_blocks=max(0, budget) // s.block_bytes if budget is not None else None)


def _grouped(f: VllmFlags) -> bool:
    """More than one KV cache group (sliding-window models): blocks are counted per group."""
    return f.kv_groups is not None and len(f.kv_groups) > 1


def _blocks(f: VllmFlags, sequence: int, batch: int) -> int:
    """Block ids `batch` sequences of `sequence` tokens hold."""
    if _grouped(f):
        return batch * vllm_advice.blocks_per_sequence(f, sequence)
    return ceil(batch * sequence / f.block_size)


def _state_blocks(f: VllmFlags) -> int:
    """Block ids one request's Mamba/GDN state takes over all state groups (0: no state groups planned)."""
    return sum(g.state_blocks for g in f.kv_groups or () if g.kind == "mamba")


def _fit_on(inp: RuntimeInput, asked: VllmFlags, setup: _Setup) -> Decide:
    """The verdict on every GPU of a fit list as its rows (starts, headroom of all GPUs), flags resolved for each GPU
    (from the asked GPU's: only the batch defaults differ), one start rule per batch-default class."""
    req = inp.request or VramRequest(model=inp.spec.slug, runtime="vllm", gpu_count=inp.gpu_count)

    def decide(rows: FitRows) -> list[GpuFit]:
        utilization, context = asked.gpu_memory_utilization, vllm_memory.cuda_context(asked)
        plan = _FIT_PLANS.get(rows, (utilization, context), lambda: _FitPlan(rows, utilization, context))
        return plan.fits([setup.start_rule(inp.spec, inp.fmt, asked, req, example) for example in plan.examples])

    return decide


class _FitPlan:
    """A fit list's GPUs for one utilization and CUDA context, kept per FitRows object: one GPU (CUDA total, slug,
    large or not) of each batch-default class (vllm_profiles.large_batch_gpu: resolve's flags differ between GPUs by
    it alone), and per GPU in the list's order (slug, name, memory of all, asked = int(utilization x total),
    free = total - context, class), the start rule's inputs (vllm_advice.StartRule.at)."""

    __slots__ = ("examples", "rows", "count")

    def __init__(self, rows: FitRows, utilization: float, context: int) -> None:
        classes: dict[bool, int] = {}
        self.examples: list[tuple[int, str, bool]] = []
        self.rows: list[tuple[str, str, int, int, int, int]] = []
        self.count = rows.count
        for (slug, name, memory), g in zip(rows.fixed, rows.gpus, strict=True):
            k = classes.get(large := vllm_profiles.large_batch_gpu(g.cuda_total, "a100" in g.slug))
            if k is None:
                k = classes[large] = len(self.examples)
                self.examples.append((g.cuda_total, g.slug, large))
            self.rows.append((slug, name, memory, int(utilization * g.cuda_total), g.cuda_total - context, k))

    def fits(self, rules: Sequence[vllm_advice.StartRule]) -> list[GpuFit]:
        """StartRule.at of each GPU's class rule (`rules`, one per example), as the list's rows: headroom x count."""
        if not rules:  # no GPU
            return []
        n = self.count
        floor, spare = [r.budget_floor for r in rules], [r.spare_floor for r in rules]
        if not rules[0].extensible:
            return [GpuFit(slug, name, n, memory, (f - a) * n, False) if a > f else
                    GpuFit(slug, name, n, memory, (a - spare[k]) * n, a > floor[k] and a >= spare[k])
                    for slug, name, memory, a, f, k in self.rows]
        free_floor, free_spare = [r.free_budget_floor for r in rules], [r.free_spare_floor for r in rules]
        return [GpuFit(slug, name, n, memory, (x if x < y else y) * n, x >= 0 and y >= 0 and a > floor[k] and
                       f > free_floor[k])
                for slug, name, memory, a, f, k in self.rows for x, y in [(a - spare[k], f - free_spare[k])]]


_FIT_PLANS = ByIdentity()


def memory(inp: RuntimeInput) -> RuntimeMemory:
    f, kept = _flags(inp)
    version = inp.request.vllm_version if inp.request else None
    if kept is None:  # a format outside the registry: nothing kept
        setup = _Setup(inp.spec, inp.fmt, f, version)
    else:  # V0's default batched tokens follow max_model_len: one setup per count
        setup = _SETUPS.get(kept, (f.max_num_batched_tokens,), lambda: _Setup(inp.spec, inp.fmt, f, version))

    def recompute(g: VllmFlags) -> list[Stage]:
        return vllm_memory.stages(inp.spec, inp.fmt, g)

    stages = setup.stages
    total = inp.gpu_memory // inp.gpu_count if inp.gpu_memory is not None else None
    at = setup.at(f, total)
    verdict = at.budgets.verdict(f, stages, vllm_advice.blocks_per_sequence(f)) if total is not None else None
    fixes = []
    if verdict is not None and not verdict.starts:
        fixes = vllm_advice.fixes(inp.spec, f, stages, total, inp.sequence, recompute, verdict)
    detail = _detail(f, at, inp.sequence, verdict, fixes)
    return _memory(inp, f, setup, detail, verdict, at)


def _memory(inp: RuntimeInput, f: VllmFlags, setup: _Setup, d: VllmDetail,
            verdict: vllm_advice.Verdict | None, at: _AtTotal) -> RuntimeMemory:
    # every figure of `d` is one GPU of one engine; data parallel engines each hold their own copy and take an
    # equal share of the sequences
    ranks, asked = f.tp * f.dp, inp.batch * inp.sequence
    batch = ceil(inp.batch / f.dp)
    kv_blocks = d.kv_blocks if d.kv_blocks is not None else _blocks(f, inp.sequence, batch)
    kv_tokens = f.dp * kv_blocks * f.block_size
    if _grouped(f):  # a block id is one page in one group's layers, not block_size tokens of every layer
        kv_tokens = f.dp * d.kv_tokens if d.kv_tokens is not None else asked
    # what the batch needs on each stage: its blocks, and recurrent states not planned as blocks of state groups
    needed, in_blocks = _blocks(f, inp.sequence, batch), _state_blocks(f) > 0
    mem = RuntimeMemory(
        weights=ranks * at.weights, kv_cache=ranks * kv_blocks * at.block_bytes,
        activations=ranks * at.activation, overhead=ranks * at.overhead,
        kv_cache_tokens=kv_tokens, usable_fraction=f.gpu_memory_utilization,
        required=inp.gpu_count * max(non_kv + needed * block_bytes + batch * (0 if in_blocks else state_bytes)
                                     for non_kv, block_bytes, state_bytes in setup.non_kv),
        kv_capacity_tokens=f.dp * d.kv_tokens if d.kv_tokens is not None else None,
        max_concurrency=round(f.dp * d.max_concurrency, 2) if d.max_concurrency is not None else None,
        assumptions=list(setup.notes), vllm=d, fit_on=_fit_on(inp, f, setup),
    )
    if setup.warning:
        mem.warnings.append(setup.warning)
    if at.printed:
        mem.assumptions.append(at.printed)
    mem.state_rule = setup.state_rule
    per_seq = setup.state_per_sequence
    if per_seq:  # the pool fills the budget: the batch's states take their share of it
        mem.state, mem.state_per_sequence = inp.batch * per_seq, per_seq
        if d.kv_blocks is not None:
            mem.state = min(mem.state, mem.kv_cache)
            mem.kv_cache -= mem.state
        mem.assumptions.append(setup.state_note)
    longest = inp.spec.language_model.max_context
    if f.max_model_len > longest:
        mem.warnings.append(f"max_model_len {f.max_model_len:,} exceeds the model's max_position_embeddings "
                            f"({longest:,}): vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1")
    if verdict is None:
        mem.warnings.append(f"vLLM takes {f.gpu_memory_utilization:.0%} of each GPU whatever the request; name a "
                            "GPU to see its KV capacity and whether it starts")
    elif not verdict.starts:
        change = "; ".join(f"{x.flag}={x.value}" for x in d.fixes) or "none of one flag"
        mem.warnings.append(f"vLLM does not start: {verdict.reason} (short by {verdict.shortfall / GiB:.2f} GiB "
                            f"per GPU). Changes that fix it: {change}")
    elif d.kv_tokens is not None and d.kv_tokens < asked:
        mem.warnings.append(f"the KV cache holds {d.kv_tokens:,} tokens, fewer than the {asked:,} of {inp.batch} "
                            "sequences: vLLM queues the rest")
    return mem
