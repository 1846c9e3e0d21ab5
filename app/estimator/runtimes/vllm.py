"""vLLM: claims gpu_memory_utilization of the GPU and fills what is left after weights and the
profiled activation peak with KV blocks (shared/reference/quantization-and-runtimes.md s4).
"""

from __future__ import annotations

from app.estimator.kv_cache import kv_bytes
from app.estimator.quantization import Format
from app.estimator.runtimes.activations import compute_bytes, prefill_bytes, vision_pass_bytes
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, MiB, Runtime, RuntimeInput, RuntimeMemory
from app.estimator.spec import ModelSpec

GPU_MEMORY_UTILIZATION = 0.90  # default --gpu-memory-utilization
BLOCK_TOKENS = 16  # default --block-size
MAX_NUM_BATCHED_TOKENS = 8192  # profiling pass of `vllm serve` (V1 default on large GPUs)
MAX_NUM_SEQS = 256  # sampler profiled over this many sequences, fp32 logits
NON_TORCH_BYTES = 256 * MiB  # NCCL, cuBLAS workspaces beyond the CUDA context: to calibrate
CUDA_GRAPH_BYTES = 512 * MiB  # captured after the KV cache (reference: a few hundred MiB to ~1 GiB)


def memory(inp: RuntimeInput) -> RuntimeMemory:
    lm, spec = inp.spec.language_model, inp.spec
    e = compute_bytes(inp.fmt)
    text = prefill_bytes(lm, MAX_NUM_BATCHED_TOKENS, e) + MAX_NUM_SEQS * lm.vocab * 4
    vision = 0
    if spec.vision is not None:  # the encoder is profiled on one largest image whatever the request
        vision = vision_pass_bytes(spec.vision, 1, e)
    activations = max(text, vision)
    overhead = inp.gpu_count * (CUDA_CONTEXT_BYTES + NON_TORCH_BYTES + CUDA_GRAPH_BYTES)
    blocks = -(-inp.sequence // BLOCK_TOKENS)
    need_kv = inp.batch * kv_bytes(lm, inp.kv, blocks * BLOCK_TOKENS)
    fixed = inp.weights.total_bytes + activations + overhead
    notes = [
        f"vLLM claims gpu_memory_utilization {GPU_MEMORY_UTILIZATION:.2f} of each GPU and fills it with KV blocks "
        f"of {BLOCK_TOKENS} tokens",
        f"activation peak profiled over {MAX_NUM_BATCHED_TOKENS:,} batched tokens; CUDA graphs "
        f"{CUDA_GRAPH_BYTES // MiB} MiB per GPU",
    ]
    mem = RuntimeMemory(inp.weights.total_bytes, need_kv, activations, overhead, blocks * BLOCK_TOKENS,
                        usable_fraction=GPU_MEMORY_UTILIZATION, required=fixed + need_kv, assumptions=notes)
    if inp.gpu_memory is None:
        mem.warnings.append("vLLM takes 90% of the GPU whatever the request; name a GPU to see its KV capacity")
        return mem
    budget = int(inp.gpu_memory * GPU_MEMORY_UTILIZATION)
    per_token = kv_bytes(lm, inp.kv, BLOCK_TOKENS) // BLOCK_TOKENS
    capacity = max(0, (budget - fixed) // (per_token * BLOCK_TOKENS)) * BLOCK_TOKENS
    mem.kv_cache = capacity * per_token
    mem.kv_capacity_tokens = capacity
    mem.max_concurrency = round(capacity / inp.sequence, 2)
    if capacity < inp.batch * inp.sequence:
        mem.warnings.append(f"the KV budget holds {capacity:,} tokens, fewer than the "
                            f"{inp.batch * inp.sequence:,} requested: vLLM would refuse this length or queue")
    return mem


def _default_kv(spec: ModelSpec, fmt: Format) -> str:
    return "fp16" if fmt.slug == "fp16" else spec.dtype_slug


RUNTIME = Runtime(
    slug="vllm",
    label="vLLM (paged KV cache)",
    source="shared/reference/quantization-and-runtimes.md s4; vLLM gpu_worker determine_num_available_blocks",
    kv_types=("bf16", "fp16", "fp8"),
    default_kv=_default_kv,
    memory=memory,
)
