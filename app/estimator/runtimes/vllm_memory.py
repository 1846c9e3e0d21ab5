"""What one vLLM worker holds, per pipeline stage and per GPU: weights share, profiled activation peak,
non-torch memory, KV budget and blocks (vllm/v1/worker/gpu_worker.py determine_available_memory,
vllm/v1/core/kv_cache_utils.py).

Exact parts: weight bytes per GPU (tensor by tensor; linears split by tensor parallelism, embeddings
and lm_head vocab-parallel, norms and the rotary cache replicated), KV block bytes, blocks and tokens.
Calibrated parts (vllm_profiles.py): the sampler's bytes per logit, non-torch and CUDA-graph memory.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache as cache_by_size
from operator import attrgetter

from app.estimator import cache
from app.estimator.memo import per_spec
from app.estimator.params import Tensor, model_tensors
from app.estimator.quantization import COMPUTE_BYTES, FORMATS, Format, tensor_stored
from app.estimator.runtimes import vllm_mtp
from app.estimator.runtimes.activations import vision_pass_bytes
from app.estimator.runtimes.vllm_flags import VllmFlags, for_gpu, padded_vocab
from app.estimator.runtimes.vllm_profiles import (
    CUDA_CONTEXT_BYTES,
    NCCL_BYTES,
    by_size,
    extensible_margin,
    graph_estimate_bytes,
    graph_pool_bytes,
)
from app.estimator.runtimes.vllm_shards import Placement, rank_shape, replicated
from app.estimator.spec import LanguageModel, ModelSpec

# Hidden-size streams alive at a decoder layer's MLP peak: residual, layer input, normed input and the
# down-projection output (vLLM fuses SiLU-and-mul, so the MLP adds gate_up 2F + product F = 3F).
# Not fitted: held-out logs (CodeLlama-7B 0.77 GiB, Granite-3.1-8B 0.85 GiB) agree within 2%.
FORWARD_STREAMS = 4
PP_BUFFERS = 2  # hidden states + residual sent between pipeline stages (IntermediateTensors)
DEQUANT_METHODS = frozenset({"bitsandbytes"})  # dequantize one weight to the compute dtype per matmul


@dataclass(frozen=True, slots=True, repr=False)
class Stage:
    """One pipeline stage as each of its tensor-parallel GPUs holds it."""

    index: int
    layers: int
    weights: int
    replicated: int
    activation: int
    non_torch: int
    block_bytes: int  # one KV block of block_size tokens over this stage's layers on one GPU
    graph_estimate: int = 0  # CUDA-graph estimate inside the budget (0.20+; 0 when not applied)
    graph_pool: int = 0  # the CUDA-graph pool once captured (0 with enforce_eager)
    state_bytes: int = 0  # recurrent state of one sequence over this stage's layers on one GPU
    draft_weights: int = 0  # of `weights`: the MTP draft's own parameters (vllm_mtp; the last stage)
    draft_token_bytes: int = 0  # KV bytes per token of the draft's attention layers on one GPU

    def non_kv(self) -> int:
        """Non-KV memory the estimate-based budget subtracts: weights, activation peak, non-torch, estimate."""
        return self.weights + self.activation + self.non_torch + self.graph_estimate

    def budget(self, requested: int, free: int | None = None) -> int:
        """KV bytes: available_kv_cache_memory = requested - non-KV (gpu_worker.py determine_available_memory).

        `free` (0.34's extensible KV cache): the memory free at start. The cache is then also capped by what
        warmup leaves: min(requested - used, free - used - margin) - transient peak, where used = weights +
        non-torch + the captured graph pool (extensible_kv_cache.py:592 measure_kv_cache_bytes); vLLM keeps
        the smaller of that and the estimate-based capacity (kv_cache_planning.py:1864).
        """
        capacity = requested - self.non_kv()
        if free is None:
            return capacity
        used = self.weights + self.non_torch + self.graph_pool
        measured = min(requested - used, free - used - extensible_margin(self.activation)) - self.activation
        return min(capacity, measured)


def stage_layers(layers: int, pp: int) -> list[int]:
    """Layers per stage as vLLM splits them (vllm/distributed/utils.py get_pp_indices: the remainder
    goes one each to the stages before the last)."""
    parts = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        parts[-i] += 1
    return parts


def _tensor_bytes(spec: ModelSpec, fmt: Format, t: Tensor) -> int:
    """Bytes of one tensor as `fmt` stores it (the rule of quantization.stored_weights)."""
    if fmt.element_bytes:
        return t.numel * fmt.element_bytes
    if fmt.is_gguf:  # not a vLLM format (vllm_flags refuses it); the plain rule
        return t.numel * COMPUTE_BYTES
    return tensor_stored(spec, fmt, t)[1]


def _vocab_share(size: int, rows: int, tp: int) -> int:
    return size * -(-padded_vocab(rows) // tp) // rows


def _on_stage(t: Tensor, lo: int, hi: int, first: bool, last: bool) -> bool:
    if t.layer is not None and t.part == "language":
        return lo <= t.layer < hi
    if t.kind == "output" or t.name.startswith("output_norm"):
        return last
    return first  # token embedding, vision tower and projector


def _share(spec: ModelSpec, fmt: Format, t: Tensor, p: Placement) -> tuple[int, int]:
    """(bytes on one GPU, of which replicated) for tensor `t` on rank 0 of placement `p` (vllm_shards: the shape
    vLLM's layer creates there; tensors no rule names: linears and biases split evenly by TP, the rest whole)."""
    shape = rank_shape(spec.language_model, t, p, fmt.slug)
    if shape is not None:
        size = _tensor_bytes(spec, fmt, Tensor(t.name, shape, t.part, t.kind, t.layer))
        return size, size if replicated(t) else 0
    size = _tensor_bytes(spec, fmt, t)
    if t.kind in ("embedding", "output") and t.part == "language":
        return _vocab_share(size, t.shape[0], p.tp), 0
    if t.kind in ("linear", "bias"):
        return -(-size // p.tp), 0
    return size, size


# Families whose rotary cache vLLM keeps in float32 whatever the model dtype: gpt-oss (vllm 0.34.0
# model_executor/models/gpt_oss.py:111-114 get_rope(..., dtype=torch.float32); the table's cos_sin_cache buffer).
ROPE_CACHE_FP32_FAMILIES = frozenset({"gpt-oss"})


def rope_cache_bytes(lm: LanguageModel, compute_bytes: int) -> int:
    """Rotary cos/sin cache, one per stage: max_position_embeddings x rotary dim in the compute dtype
    (V1: 14.99 GiB = 14.957 GiB of bf16 parameters + 131072 x 128 x 2 B)."""
    rot = lm.mla.qk_rope_head_dim if lm.mla is not None else lm.head_dim
    return lm.max_context * rot * compute_bytes


def spec_rope_cache_bytes(spec: ModelSpec, compute_bytes: int) -> int:
    return rope_cache_bytes(spec.language_model, 4 if spec.family in ROPE_CACHE_FP32_FAMILIES else compute_bytes)


def stage_weights(spec: ModelSpec, fmt: Format, f: VllmFlags, lo: int, hi: int) -> tuple[int, int]:
    p = Placement(f.tp, f.dp, f.ep)
    if FORMATS.get(fmt.slug) is fmt:  # a registry format: walk the tensors once per spec and layout
        return _stage_weights(spec, fmt.slug, f.compute_bytes, p, lo, hi)
    return _walk_stage_weights(spec, fmt, f.compute_bytes, p, lo, hi)


@per_spec
def _stage_weights(spec: ModelSpec, fmt: str, compute_bytes: int, p: Placement, lo: int, hi: int) -> tuple[int, int]:
    return _walk_stage_weights(spec, FORMATS[fmt], compute_bytes, p, lo, hi)


def rank_parameter_bytes(spec: ModelSpec, fmt: Format, p: Placement, lo: int = 0, hi: int | None = None) -> int:
    """Parameter bytes on rank 0 of placement `p` for layers lo .. hi (no rotary cache: a buffer)."""
    hi = spec.language_model.layers if hi is None else hi
    first, last = lo == 0, hi == spec.language_model.layers
    total = sum(_share(spec, fmt, t, p)[0] for t in model_tensors(spec)
                if not t.gguf_only and _on_stage(t, lo, hi, first, last))
    if last and not first and spec.language_model.tied_embeddings:  # the last stage keeps its own lm_head
        emb = next(t for t in model_tensors(spec) if t.kind == "embedding" and t.part == "language")
        total += _share(spec, fmt, emb, p)[0]
    return total


def _walk_stage_weights(spec: ModelSpec, fmt: Format, compute_bytes: int, p: Placement, lo: int,
                        hi: int) -> tuple[int, int]:
    first, last = lo == 0, hi == spec.language_model.layers
    total = replicated = spec_rope_cache_bytes(spec, compute_bytes)
    for t in model_tensors(spec):
        if t.gguf_only or not _on_stage(t, lo, hi, first, last):
            continue
        size, rep = _share(spec, fmt, t, p)
        total, replicated = total + size, replicated + rep
    if last and not first and spec.language_model.tied_embeddings:  # the last stage keeps its own lm_head
        emb = next(t for t in model_tensors(spec) if t.kind == "embedding" and t.part == "language")
        total += _share(spec, fmt, emb, p)[0]
    return total, replicated


def _dense_width(lm: LanguageModel) -> int:
    """FFN width outside the fused-MoE kernel: the dense FFN, or an MoE layer's shared experts."""
    if lm.moe is None:
        return lm.ffn
    return lm.moe.shared_experts * (lm.moe.shared_expert_ffn or lm.moe.expert_ffn)


def moe_workspace(lm: LanguageModel, f: VllmFlags) -> int:
    """Fused-MoE intermediate caches for max_num_batched_tokens tokens, T x top-k x (2N + N + hidden) in
    the compute dtype (vllm/model_executor/layers/fused_moe: intermediate_cache1..3; N = expert FFN / TP).
    Counted on top of the sampler pass: the held-out MoE logs (Qwen3-30B-A3B 2.68 GiB, DeepSeek-V2-Lite
    1.93, Qwen1.5-MoE 2.47, Mixtral TP2 1.21) exceed the sampler alone by about this much. Not fitted."""
    if lm.moe is None:
        return 0
    n = lm.moe.expert_ffn // f.tp
    return f.max_num_batched_tokens * lm.moe.experts_per_token * (3 * n + lm.hidden) * f.compute_bytes


def forward_peak(lm: LanguageModel, f: VllmFlags) -> int:
    """Profiling forward pass of max_num_batched_tokens tokens: one decoder layer's peak on one GPU
    (routed MoE experts: see moe_workspace)."""
    mlp = (2 if lm.ffn_kind == "gelu" else 3) * _dense_width(lm) // f.tp
    q, kv = lm.heads * lm.head_dim // f.tp, max(1, lm.kv_heads // f.tp) * lm.head_dim
    attention = 2 * q + 2 * kv  # qkv output + attention output
    return f.max_num_batched_tokens * f.compute_bytes * (FORWARD_STREAMS * lm.hidden + max(mlp, attention))


def sampler_peak(lm: LanguageModel, f: VllmFlags) -> int:
    """Sampler pass on the last stage: the hidden states of the batch stay alive, and max_num_seqs rows
    of full-vocabulary logits (gathered on every TP rank) with their fp32 temporaries."""
    hidden = f.max_num_batched_tokens * lm.hidden * f.compute_bytes
    per_logit = f.compute_bytes + f.profile.sampler_extra_bytes
    return hidden + int(f.max_num_seqs * lm.vocab * per_logit)


def _dequant_bytes(spec: ModelSpec, f: VllmFlags) -> int:
    if f.method not in DEQUANT_METHODS:
        return 0
    linears = [t for t in model_tensors(spec) if t.kind == "linear" and t.part == "language"]
    return max(t.numel for t in linears) * f.compute_bytes // f.tp


def _vision_peak(spec: ModelSpec, f: VllmFlags) -> int:
    """Encoder profiling pass on as many largest images as the encoder budget (max_num_batched_tokens
    embeddings) holds, plus their output embeddings. Not calibrated: no multimodal log checked."""
    v = spec.vision
    if v is None:
        return 0
    items = max(1, f.max_num_batched_tokens // v.embeddings_per_image)
    held = items * v.embeddings_per_image * spec.language_model.hidden * f.compute_bytes
    return vision_pass_bytes(v, items, f.compute_bytes) + held


def stage_activation(spec: ModelSpec, f: VllmFlags, first: bool, last: bool) -> int:
    lm = spec.language_model
    peak = forward_peak(lm, f) + _dequant_bytes(spec, f)
    if last:
        peak = max(peak, sampler_peak(lm, f))
    if first:
        peak = max(peak, _vision_peak(spec, f))
    buffers = PP_BUFFERS * f.max_num_batched_tokens * lm.hidden * f.compute_bytes if f.pp > 1 else 0
    return peak + buffers + moe_workspace(lm, f)


def block_bytes(lm: LanguageModel, f: VllmFlags, layers: int, first: int = 0) -> int:
    """One KV block on one GPU: block_size tokens x the rows of layers first .. first + layers - 1 that own KV
    (app.estimator.cache: K and V of this GPU's KV heads, split across TP ranks and replicated when fewer than
    TP; an MLA latent or indexer key is not split). Recurrent layers hold no KV (their state: `state_bytes`).
    With KV cache groups (full/sliding models, vllm_kv) one block id spans one page in every layer of one
    group, so a block is the widest group's layers (vllm/v1/core/kv_cache_utils.py
    get_kv_cache_config_from_groups); for Mamba/GDN hybrids f.block_size is the raised attention block, whose
    page every state page is padded to (vllm_kv.unify), so the widest page x the widest group is the block."""
    widest = max(g.layers for g in f.kv_groups) if f.kv_groups is not None else None
    return _block_bytes(lm, f.kv, f.tp, f.block_size, widest, layers, first)


@per_spec
def _block_bytes(lm: LanguageModel, kv, tp: int, block_size: int, widest: int | None, layers: int, first: int) -> int:
    per_layer = []
    for layer in cache.layer_caches(lm)[first:first + layers]:
        row = sum(kv.bytes_for(max(1, r.heads // tp) * r.head_dim if r.name in ("k", "v", "kv") else r.elements)
                  for r in layer.rows)
        if row:
            per_layer.append(row)
    if widest is not None and per_layer:
        return max(per_layer) * block_size * widest
    return max(1, sum(per_layer) * block_size)


def state_rule(lm: LanguageModel, f: VllmFlags) -> cache.StateRule:
    """vLLM MambaStateDtypeCalculator: conv state in the model dtype (--mamba-cache-dtype auto), SSM / GDN
    state in --mamba-ssm-cache-dtype, whose auto takes the config's mamba_ssm_dtype (Qwen3.5) or
    mamba_ssm_cache_dtype (Nemotron-H) (vllm/model_executor/models/config.py), else the model dtype; conv
    state shape (conv_kernel - 1, channels) (vllm/model_executor/layers/mamba/mamba_utils.py)."""
    return _state_rule(lm, f.compute_bytes, f.speculative_tokens)


@per_spec  # one rule per model, dtype and draft: the estimate and the per-layer report read it
def _state_rule(lm: LanguageModel, compute_bytes: int, speculative_tokens: int) -> cache.StateRule:
    state = cache.state_dtype_bytes(lm, compute_bytes)
    return cache.StateRule(conv_bytes=compute_bytes, recurrent_bytes=state, ssm_bytes=state,
                           source="vLLM MambaStateDtypeCalculator", conv_extra=speculative_tokens)


def state_bytes(lm: LanguageModel, f: VllmFlags, layers: int, first: int = 0) -> int:
    """Recurrent state of one sequence on one GPU over this stage's layers (heads / channels split by TP)."""
    return _state_bytes(lm, state_rule(lm, f), f.tp, layers, first)


@per_spec
def _state_bytes(lm: LanguageModel, rule: cache.StateRule, tp: int, layers: int, first: int) -> int:
    total = 0
    for layer in cache.layer_caches(lm)[first:first + layers]:
        for st in layer.states:
            total += rule.bytes(st) // tp if st.heads % tp == 0 else rule.bytes(st)
    return total


def stages(spec: ModelSpec, fmt: Format, f: VllmFlags) -> tuple[Stage, ...]:
    """What each pipeline stage holds on one of its GPUs. Built once per model, format and flags: no stage figure
    depends on max_model_len or gpu_memory_utilization (they size the KV budget's use, vllm_advice), so a
    request's stages are those of its flags with both zeroed, which _stages is given."""
    if FORMATS.get(fmt.slug) is not fmt:  # not a registry format: nothing to key it by
        return _stages(spec, fmt, f)
    return _stages_for(spec, fmt.slug, _STAGE_KEY(f))


# Every VllmFlags field but the two the stages do not read, in declaration order
_STAGE_FIELDS = tuple(x.name for x in fields(VllmFlags) if x.name not in ("max_model_len", "gpu_memory_utilization"))
_STAGE_KEY = attrgetter(*_STAGE_FIELDS)
_SEQS, _TOKENS = _STAGE_FIELDS.index("max_num_seqs"), _STAGE_FIELDS.index("max_num_batched_tokens")


def stages_at(spec: ModelSpec, fmt: Format, f: VllmFlags, batch: tuple[int, int]) -> tuple[Stage, ...]:
    """stages(spec, fmt, f) with (max_num_seqs, max_num_batched_tokens) = `batch` (the request on another GPU
    class, vllm_flags.for_gpu), without building those flags."""
    if batch == (f.max_num_seqs, f.max_num_batched_tokens):
        return stages(spec, fmt, f)
    if FORMATS.get(fmt.slug) is not fmt:
        return _stages(spec, fmt, for_gpu(f, batch))
    key = list(_STAGE_KEY(f))
    key[_SEQS], key[_TOKENS] = batch
    return _stages_for(spec, fmt.slug, tuple(key))


@per_spec(bound=4096)  # the key holds request flags (max_num_seqs, max_num_batched_tokens, block_size)
def _stages_for(spec: ModelSpec, fmt: str, key: tuple) -> tuple[Stage, ...]:
    flags = VllmFlags(**dict(zip(_STAGE_FIELDS, key, strict=True)), max_model_len=0, gpu_memory_utilization=0.0)
    return _stages(spec, FORMATS[fmt], flags)


def _stages(spec: ModelSpec, fmt: Format, f: VllmFlags) -> tuple[Stage, ...]:
    lm, out, lo = spec.language_model, [], 0
    kv_lm = vllm_mtp.with_draft(lm, f.draft_layers) if f.draft_layers else lm  # the draft's layers come last
    for i, n in enumerate(stage_layers(lm.layers, f.pp)):
        weights, replicated = stage_weights(spec, fmt, f, lo, lo + n)
        draft = draft_tokens = 0
        kv_n = n
        if f.draft_layers and i == f.pp - 1:  # the draft runs with the last stage (it needs the final hidden states)
            draft, rep = vllm_mtp.draft_weights(spec, fmt, Placement(f.tp, f.dp, f.ep), f.compute_bytes)
            weights, replicated, kv_n = weights + draft, replicated + rep, n + f.draft_layers
            draft_tokens = token_bytes(kv_lm, f, lm.layers, f.draft_layers)
        activation = stage_activation(spec, f, first=i == 0, last=i == f.pp - 1)
        non_torch = f.profile.non_torch_bytes + by_size(NCCL_BYTES, f.tp)
        estimate = graph_estimate_bytes(n) if f.graph_estimate else 0
        pool = 0 if f.enforce_eager else estimate or graph_pool_bytes(n)
        out.append(Stage(i, n, weights, replicated, activation, non_torch, block_bytes(kv_lm, f, kv_n, lo), estimate,
                         pool, state_bytes(lm, f, n, lo), draft, draft_tokens))
        lo += n
    return tuple(out)


def token_bytes(lm: LanguageModel, f: VllmFlags, first: int, layers: int) -> int:
    """KV bytes of one token over layers first .. first + layers - 1 on one GPU (as block_bytes counts them)."""
    return sum(f.kv.bytes_for(max(1, r.heads // f.tp) * r.head_dim if r.name in ("k", "v", "kv") else r.elements)
               for layer in cache.layer_caches(lm)[first:first + layers] for r in layer.rows)


def cuda_context(f: VllmFlags) -> int:
    return _cuda_context(f.tp * f.pp)


@cache_by_size
def _cuda_context(gpus: int) -> int:  # asked once per GPU of every fit list: looked up once per size
    return by_size(CUDA_CONTEXT_BYTES, gpus)


def graph_pool(f: VllmFlags, stage: Stage) -> int:
    """The CUDA-graph pool once captured: the estimate where one is inside the budget, else the 0.19 fit."""
    return stage.graph_pool
