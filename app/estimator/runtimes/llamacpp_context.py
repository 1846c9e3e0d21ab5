"""llama.cpp's context parameters as the runtime resolves them from the flags (llama-server semantics).

Sources (build vendored in llama-cpp-python 0.3.36): src/llama-context.cpp (llama_context ctor:
n_ctx padded to 256, n_ctx_seq per stream, n_batch/n_ubatch caps), src/llama-model.cpp
(n_gpu_layers: i_gpu_start = n_layer + 1 - ngl; the output layer is on the GPU when ngl >= 1),
common/common.h (defaults: n_batch 2048, n_ubatch 512, f16 cache, swa_full false).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.estimator.errors import InvalidRequest
from app.estimator.kv_cache import KV_TYPES, KvType
from app.estimator.schema import VramRequest
from app.estimator.spec import LanguageModel

N_CTX_PAD = 256  # cparams.n_ctx = GGML_PAD(n_ctx, 256) (llama-context.cpp, PR 17046)
# llama.cpp cache-type names -> our KV type slugs (kv_cache.KV_TYPES)
CACHE_TYPES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "q8_0": "q8_0", "q4_0": "q4_0", "q4_1": "q4_1",
               "iq4_nl": "iq4_nl", "q5_0": "q5_0", "q5_1": "q5_1"}
LLAMA_NAME = {v: k for k, v in CACHE_TYPES.items()}


def pad(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(slots=True)  # not frozen: built per estimate (changed with dataclasses.replace), and cheaper so
class LlamaContext:
    n_ctx: int  # KV cells of all streams together
    n_ctx_seq: int  # cells per stream (kv_size)
    n_streams: int  # 1 with a unified KV cache, else n_parallel
    n_batch: int
    n_ubatch: int
    n_parallel: int
    kv_unified: bool
    flash_attention: bool
    type_k: KvType
    type_v: KvType
    n_gpu_layers: int  # as llama.cpp counts: n_layer + 1 = every layer and the output layer
    mmproj: bool
    embeddings: bool = False
    n_rs_seq: int = 0  # extra recurrent-state rows per cell (speculative rollback; llama-memory-recurrent.cpp L101)

    def layer_on_gpu(self, il: int, n_layer: int) -> bool:
        """Repeating layer il sits on the GPU when il >= n_layer + 1 - n_gpu_layers."""
        return il >= n_layer + 1 - self.n_gpu_layers

    @property
    def output_on_gpu(self) -> bool:
        return self.n_gpu_layers >= 1


def _cache_type(name: str | None, fallback: str) -> KvType:
    return KV_TYPES[CACHE_TYPES[name] if name else fallback]


def resolve_context(lm: LanguageModel, req: VramRequest, sequence: int, kv: KvType,
                    flash_attention: bool, images: int) -> LlamaContext:
    """Apply llama.cpp's rules to the request.

    `sequence` is the positions one sequence needs (text + image positions); `kv` the cache type that
    `kv_cache` resolved to (the default of both -ctk and -ctv).

    Raises:
        InvalidRequest: a quantized V cache without flash attention, or mmproj=false with images.
    """
    n_parallel = req.n_parallel or req.batch
    wanted = req.n_ctx if req.n_ctx is not None else sequence * n_parallel
    requested = wanted or lm.max_context  # -c 0: the training context
    n_ctx = pad(requested, N_CTX_PAD)
    if req.kv_unified:
        n_ctx_seq, streams = n_ctx, 1
    else:
        n_ctx_seq, streams = pad(n_ctx // n_parallel, N_CTX_PAD), n_parallel
        n_ctx = n_ctx_seq * n_parallel
    n_batch = min(requested, req.n_batch)  # causal attention; capped before n_ctx is padded
    n_ubatch = min(n_batch, req.n_ubatch)
    type_k, type_v = _cache_type(req.cache_type_k, kv.slug), _cache_type(req.cache_type_v, kv.slug)
    if type_v.block > 1 and not flash_attention:
        raise InvalidRequest("flash_attention", f"llama.cpp needs flash attention for a quantized V cache "
                             f"({LLAMA_NAME[type_v.slug]}); set flash_attention=true, or cache_type_v "
                             f"(or kv_cache) to f16, bf16 or f32")
    if req.mmproj is False and images:
        raise InvalidRequest("mmproj", "images need the projector: set mmproj=true (llama-server --mmproj) "
                             "or images=0")
    ngl = lm.layers + 1 if req.n_gpu_layers is None else min(req.n_gpu_layers, lm.layers + 1)
    mmproj = bool(images) if req.mmproj is None else req.mmproj
    return LlamaContext(n_ctx, n_ctx_seq, streams, n_batch, n_ubatch, n_parallel, req.kv_unified,
                        flash_attention, type_k, type_v, ngl, mmproj, req.embeddings)
