"""Hugging Face transformers + PyTorch: eager load of every tensor, DynamicCache, SDPA attention.

Calibration against measured GPUs (issue "Run the cross-check on the CUDA machine") changes the
constants below, not the structure.
"""

from __future__ import annotations

from app.estimator.kv_cache import kv_bytes
from app.estimator.quantization import Format
from app.estimator.runtimes.activations import compute_bytes, prefill_bytes, vision_pass_bytes
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, MiB, Runtime, RuntimeInput, RuntimeMemory
from app.estimator.spec import ModelSpec

# PyTorch's cuBLAS + cuBLASLt workspaces on Hopper (CUDABlasHandlePool: 32 MiB each on sm90+).
CUBLAS_WORKSPACE_BYTES = 2 * 32 * MiB
# generate() keeps logits of the last position only and upcasts them to fp32 (reference s5).
LOGITS_BYTES_PER_VOCAB = 2 + 4
# The caching allocator reserves in 2 MiB blocks and keeps freed blocks: reserved/allocated - 1.
ALLOCATOR_SLACK = 0.0  # not yet measured


def memory(inp: RuntimeInput) -> RuntimeMemory:
    lm = inp.spec.language_model
    e = compute_bytes(inp.fmt)
    text = prefill_bytes(lm, inp.batch * inp.sequence, e) + inp.batch * lm.vocab * LOGITS_BYTES_PER_VOCAB
    vision = 0
    if inp.spec.vision is not None and inp.images:
        vision = vision_pass_bytes(inp.spec.vision, inp.batch * inp.images, e)
    activations = max(text, vision)
    kv = inp.batch * kv_bytes(lm, inp.kv, inp.sequence)
    slack = int(ALLOCATOR_SLACK * (inp.weights.total_bytes + kv + activations))
    overhead = inp.gpu_count * (CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES) + slack
    notes = [
        "transformers: every tensor on the GPU, DynamicCache, SDPA attention (linear in length)",
        "peak at prefill of the whole prompt; logits of the last position only (fp32)",
        f"CUDA context {CUDA_CONTEXT_BYTES // MiB} MiB + cuBLAS workspaces {CUBLAS_WORKSPACE_BYTES // MiB} MiB per GPU",
    ]
    if vision:
        notes.append(f"vision encoder runs over {inp.spec.vision.encoder_tokens:,} tokens per image before prefill")
    return RuntimeMemory(inp.weights.total_bytes, kv, activations, overhead, inp.sequence, assumptions=notes)


def _default_kv(spec: ModelSpec, fmt: Format) -> str:
    return fmt.slug if fmt.slug in ("fp32", "fp16", "bf16") else spec.dtype_slug


RUNTIME = Runtime(
    slug="transformers",
    label="Hugging Face transformers (PyTorch)",
    source=("transformers generate() with DynamicCache (src/transformers/cache_utils.py); PyTorch CUDA caching "
            "allocator"),  # shared/reference/quantization-and-runtimes.md s5
    kv_types=("bf16", "fp16", "fp32"),
    default_kv=_default_kv,
    memory=memory,
)
