"""What one vLLM worker holds, per pipeline stage and per GPU: weights share, profiled activation peak,
non-torch memory, KV budget and blocks (vllm/v1/worker/gpu_worker.py determine_available_memory,
vllm/v1/core/kv_cache_utils.py).

Exact parts: weight bytes per GPU (tensor by tensor; linears split by tensor parallelism, embeddings
and lm_head vocab-parallel, norms and the rotary cache replicated), KV block bytes, blocks and tokens.
Calibrated parts (vllm_profiles.py): the sampler's bytes per logit, non-torch and CUDA-graph memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.estimator.kv_cache import kv_row_elements
from app.estimator.params import Tensor, model_tensors
from app.estimator.quantization import COMPUTE_BYTES, Format
from app.estimator.runtimes.activations import vision_pass_bytes
from app.estimator.runtimes.vllm_flags import VllmFlags, padded_vocab
from app.estimator.runtimes.vllm_profiles import (
    CUDA_CONTEXT_BYTES,
    NCCL_BYTES,
    by_size,
    graph_pool_bytes,
)
from app.estimator.spec import LanguageModel, ModelSpec

# Hidden-size streams alive at a decoder layer's MLP peak: residual, layer input, normed input and the
# down-projection output (vLLM fuses SiLU-and-mul, so the MLP adds gate_up 2F + product F = 3F).
# Not fitted: held-out logs (CodeLlama-7B 0.77 GiB, Granite-3.1-8B 0.85 GiB) agree within 2%.
FORWARD_STREAMS = 4
PP_BUFFERS = 2  # hidden states + residual sent between pipeline stages (IntermediateTensors)
DEQUANT_METHODS = frozenset({"bitsandbytes"})  # dequantize one weight to the compute dtype per matmul


@dataclass(frozen=True, slots=True)
class Stage:
    """One pipeline stage as each of its tensor-parallel GPUs holds it."""

    index: int
    layers: int
    weights: int
    replicated: int
    activation: int
    non_torch: int
    block_bytes: int  # one KV block of block_size tokens over this stage's layers on one GPU

    def budget(self, requested: int) -> int:
        return requested - self.weights - self.activation - self.non_torch


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
    if fmt.linear_size is not None and fmt.quantizes(t):
        return fmt.linear_size(t)
    return t.numel * COMPUTE_BYTES


def _vocab_share(size: int, rows: int, tp: int) -> int:
    return size * -(-padded_vocab(rows) // tp) // rows


def _on_stage(t: Tensor, lo: int, hi: int, first: bool, last: bool) -> bool:
    if t.layer is not None and t.part == "language":
        return lo <= t.layer < hi
    if t.kind == "output" or t.name.startswith("output_norm"):
        return last
    return first  # token embedding, vision tower and projector


def _share(spec: ModelSpec, fmt: Format, t: Tensor, tp: int) -> tuple[int, int]:
    """(bytes on one GPU, of which replicated) for tensor `t` under tensor parallelism `tp`."""
    size = _tensor_bytes(spec, fmt, t)
    if t.kind in ("embedding", "output") and t.part == "language":
        return _vocab_share(size, t.shape[0], tp), 0
    if t.kind in ("linear", "bias"):
        return -(-size // tp), 0
    return size, size


def rope_cache_bytes(lm: LanguageModel, compute_bytes: int) -> int:
    """Rotary cos/sin cache, one per stage: max_position_embeddings x rotary dim in the compute dtype
    (V1: 14.99 GiB = 14.957 GiB of bf16 parameters + 131072 x 128 x 2 B)."""
    rot = lm.mla.qk_rope_head_dim if lm.mla is not None else lm.head_dim
    return lm.max_context * rot * compute_bytes


def stage_weights(spec: ModelSpec, fmt: Format, f: VllmFlags, lo: int, hi: int) -> tuple[int, int]:
    first, last = lo == 0, hi == spec.language_model.layers
    total = replicated = rope_cache_bytes(spec.language_model, f.compute_bytes)
    for t in model_tensors(spec):
        if t.gguf_only or not _on_stage(t, lo, hi, first, last):
            continue
        size, rep = _share(spec, fmt, t, f.tp)
        total, replicated = total + size, replicated + rep
    if last and not first and spec.language_model.tied_embeddings:  # the last stage keeps its own lm_head
        emb = next(t for t in model_tensors(spec) if t.kind == "embedding" and t.part == "language")
        total += _share(spec, fmt, emb, f.tp)[0]
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


def block_bytes(lm: LanguageModel, f: VllmFlags, layers: int) -> int:
    """One KV block on one GPU: block_size tokens x K and V rows of this GPU's KV heads x layers.
    KV heads split across TP ranks (replicated when fewer than TP); an MLA latent is not split.
    With KV cache groups (sliding-window models) one block id spans one page in every layer of one group,
    so a block is the widest group's layers (vllm/v1/core/kv_cache_utils.py get_kv_cache_config_from_groups)."""
    if f.kv_groups is not None:
        layers = max(g.layers for g in f.kv_groups)
    row = kv_row_elements(lm)
    if lm.mla is None:
        row = 2 * max(1, lm.kv_heads // f.tp) * lm.head_dim
    return f.kv.bytes_for(row) * f.block_size * layers


def stages(spec: ModelSpec, fmt: Format, f: VllmFlags) -> list[Stage]:
    lm, out, lo = spec.language_model, [], 0
    for i, n in enumerate(stage_layers(lm.layers, f.pp)):
        weights, replicated = stage_weights(spec, fmt, f, lo, lo + n)
        activation = stage_activation(spec, f, first=i == 0, last=i == f.pp - 1)
        non_torch = f.profile.non_torch_bytes + by_size(NCCL_BYTES, f.tp)
        out.append(Stage(i, n, weights, replicated, activation, non_torch, block_bytes(lm, f, n)))
        lo += n
    return out


def cuda_context(f: VllmFlags) -> int:
    return by_size(CUDA_CONTEXT_BYTES, f.tp * f.pp)


def graph_pool(f: VllmFlags, stage: Stage) -> int:
    return 0 if f.enforce_eager else graph_pool_bytes(stage.layers)
