"""llama.cpp (llama-server / llama-cli, CUDA backend, all layers offloaded).

Sources: shared/reference/quantization-and-runtimes.md s2; llama.cpp src/llama-context.cpp
(graph_reserve for n_ubatch tokens) and src/llama-kv-cache.cpp (cache allocated up front).
"""

from __future__ import annotations

from app.estimator.errors import InvalidRequest
from app.estimator.kv_cache import kv_bytes
from app.estimator.runtimes.activations import RESIDUAL_STREAMS
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, MiB, Runtime, RuntimeInput, RuntimeMemory

N_UBATCH = 512  # default --ubatch-size
KV_PAD = 256  # n_ctx is padded to a multiple of 256
F32 = 4  # the compute graph runs in F32


def _pad(n: int, to: int) -> int:
    return -(-n // to) * to


def compute_buffer(inp: RuntimeInput, n_ctx: int) -> int:
    """Worst-case graph for n_ubatch tokens over n_ctx cells: the largest of attention, FFN and output.

    Without flash attention the F32 KQ tensor (n_ctx x n_ubatch x n_head x 4) dominates; the reference's
    example (32 heads, n_ctx 32768: 2048 MiB of 2144) fixes the mask (F32 without FA, F16 with) and
    the per-token terms below.
    """
    lm, ub = inp.spec.language_model, N_UBATCH
    resid = ub * F32 * RESIDUAL_STREAMS * lm.hidden
    qkv = ub * F32 * (lm.heads + 2 * lm.kv_heads) * lm.head_dim
    mask = n_ctx * ub * (2 if inp.flash_attention else 4)
    kq = 0 if inp.flash_attention else n_ctx * ub * lm.heads * F32
    attention = kq + mask + qkv + resid
    ffn = ub * F32 * 3 * lm.ffn + resid  # up (2F, or gate + up) and the SwiGLU product (F)
    output = ub * F32 * lm.vocab + resid
    return max(attention, ffn, output)


def vision_buffer(inp: RuntimeInput) -> int:
    """mtmd/clip graph for one image: ViT activations, plus the KQ scores without flash attention."""
    v = inp.spec.vision
    if v is None or not inp.images:
        return 0
    t = v.encoder_tokens
    scores = 0 if inp.flash_attention else v.heads * t * t * F32
    return t * F32 * (RESIDUAL_STREAMS * v.hidden + 2 * v.mlp) + scores


def memory(inp: RuntimeInput) -> RuntimeMemory:
    if inp.kv.block > 1 and not inp.flash_attention:
        raise InvalidRequest("flash_attention", f"llama.cpp needs flash attention for a quantized V cache "
                             f"({inp.kv.slug}); set flash_attention=true or kv_cache to fp16, bf16 or fp32")
    lm, w = inp.spec.language_model, inp.weights
    cells = _pad(inp.batch * inp.sequence, KV_PAD)
    kv = kv_bytes(lm, inp.kv, cells)
    vision_weights = w.vision_bytes if inp.images else 0
    weights = w.language_bytes - w.token_embd_bytes + vision_weights
    activations = compute_buffer(inp, cells) + vision_buffer(inp)
    overhead = inp.gpu_count * CUDA_CONTEXT_BYTES
    notes = [
        f"llama.cpp: all layers offloaded, KV cache allocated up front for {cells:,} cells "
        f"(n_ctx padded to {KV_PAD})",
        f"compute buffer for n_ubatch {N_UBATCH}, flash attention {'on' if inp.flash_attention else 'off'}",
        f"token_embd ({w.token_embd_bytes / MiB:,.0f} MiB) stays in host RAM",
        f"CUDA context {CUDA_CONTEXT_BYTES // MiB} MiB per GPU",
    ]
    if inp.spec.vision is not None:
        notes.append("vision projector (mmproj, F16) loaded on the GPU" if inp.images
                     else "no image: the mmproj file is not loaded")
    return RuntimeMemory(weights, kv, activations, overhead, cells, weights_host=w.token_embd_bytes,
                         assumptions=notes)


RUNTIME = Runtime(
    slug="llama.cpp",
    label="llama.cpp (CUDA, all layers on GPU)",
    source="shared/reference/quantization-and-runtimes.md s2; llama.cpp src/llama-context.cpp",
    kv_types=("fp16", "bf16", "fp32", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"),
    default_kv=lambda spec, fmt: "fp16",
    memory=memory,
)
