"""llama.cpp's compute buffers: the peak of ggml's graph allocator for one worst-case micro-batch.

llama_context reserves the graph for n_ubatch tokens (all of them outputs) attending to every KV cell
(src/llama-context.cpp graph_reserve) and ggml-alloc packs its tensors, reusing freed memory. The peak
is the largest of three moments of the graph, plus the inputs that live throughout:
- inputs: the KQ mask per cache (n_kv x n_ubatch, F32; F16 with flash attention; llama-graph.cpp
  build_attn_inp_kq_mask), token ids, positions, output ids;
- attention without flash attention: the F32 KQ scores n_kv x n_ubatch x n_head (softmax in place);
- the FFN: gate and up (n_ff x n_ubatch, F32) and their product;
- the output: logits n_vocab x n_ubatch (F32).
Each moment also holds a few n_embd x n_ubatch F32 activations (residual, normed input, ...): how
many is fitted to llama.cpp's printed CPU buffers on this project's grid (model_specs/llamacpp),
hence "calibrated".

With CUDA the graph is split: the embedding lookup runs on the host (token_embd lives there), so the
host compute buffer (CUDA_Host) holds the looked-up embeddings and the inputs the CPU fills in (the
masks), the GPU buffer the rest plus copies of those inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.estimator import cache
from app.estimator.gguf.arch import GgufArch
from app.estimator.memo import per_spec
from app.estimator.runtimes.activations import RESIDUAL_STREAMS
from app.estimator.runtimes.base import RuntimeInput
from app.estimator.runtimes.llamacpp_backends import BACKENDS, DEFAULT_BACKEND, Backend
from app.estimator.runtimes.llamacpp_buffers import kv_cells, swa_layers
from app.estimator.runtimes.llamacpp_context import LlamaContext
from app.estimator.spec import LanguageModel

F32 = 4
I64 = 8
INPUT_INTS = 5  # token ids, positions, output ids, ...: int32 per token (the grid's +0.01 MiB per 512)


@dataclass(frozen=True, slots=True, repr=False)
class ComputeFit:
    """n_embd x n_ubatch F32 rows (in quarters) that ggml-alloc's peak holds beyond our common model, per moment.

    A FIT, not derived: on the 2026 graphs the peak is the output moment (the logits, n_vocab x n_ubatch F32) in
    nearly every row, and where ggml-alloc (ggml/src/ggml-alloc.c, ggml_dyn_tallocr_alloc: best fit among the free
    blocks, else the end of the buffer) places the logits depends on the order and sizes of every tensor the graph
    freed before; we did not replay that allocator. The rows are the smallest quarter-row counts that leave no
    model_specs/llamacpp/grid.json row of the architecture under llama.cpp's printed CPU compute buffer
    (72 rows: n_ubatch 256/512/1024, n_ctx 4096/16384, n_parallel 1/2/4, flash attention on/off).
    """

    attention: float = 0  # at the attention moment (the KQ scores without flash attention)
    ffn: float = 0  # at the FFN moment
    output: float = 0  # beside the logits
    output_no_fa: float = 0  # more beside the logits without flash attention
    output_streams: float = 0  # more beside the logits with several KV streams (n_parallel > 1, split KV)

    def rows(self, moment: str, c: LlamaContext) -> float:
        if moment in ("attention", "ffn"):
            return self.attention if moment == "attention" else self.ffn
        return self.output + self.output_no_fa * (not c.flash_attention) + self.output_streams * (c.n_streams > 1)


# Fitted on the grid's CPU rows (llama.cpp 0c1e570, the commit llama-cpp-python 0.3.36 vendors); worst over-estimate
# per architecture in the comment. Graphs: src/models/<arch>.cpp of that commit.
COMPUTE_FIT: dict[str, ComputeFit] = {
    "qwen35": ComputeFit(output=1.75),  # qwen35.cpp (gated delta net + full attention): +1.2%
    "qwen35moe": ComputeFit(output=2.25, output_no_fa=0.5, output_streams=0.5),  # qwen35moe.cpp: +1.0%
    "nemotron_h": ComputeFit(output=1.5),  # nemotron-h.cpp (mamba2 + attention + FFN layers): +2.6%
    # lfm2.cpp (short conv + attention): 2 rows at n_ubatch 256/512 and n_ctx 4096, none at n_ubatch 1024 or
    # n_ctx 16384 (an allocator effect we do not model): +6.6% there
    "lfm2": ComputeFit(output=2.25),
    "gemma4": ComputeFit(output=3.75),  # gemma4.cpp: +2.1%
    "llama4": ComputeFit(output=1, output_streams=2.75),  # llama4.cpp (chunked iSWA, MoE): +1.2%
    "gpt-oss": ComputeFit(attention=1, output=2, output_no_fa=3.5, output_streams=0.25),  # openai-moe.cpp: +1.4%
    "step35": ComputeFit(attention=2.5, output=1.75),  # step35.cpp: +2.2%
    # older graphs, whose common model is fitted on the grid (compute_rows in gguf/arch.py), where a row was still
    # under: gemma2 at n_ctx 32768 without flash attention (-2 MiB at n_ubatch 512, -8 at 2048); llama (mistral's
    # rows) at the FFN moment with a q8_0 cache or n_parallel 3 (-0.08, -0.24 MiB); llama-3.1-8b and qwen2.5-7b at
    # n_parallel 3 (-0.01 MiB at the output moment)
    "gemma2": ComputeFit(attention=0.5),
    "llama": ComputeFit(output=0.25, ffn=0.25),
    "qwen2": ComputeFit(output=0.25),
}
NO_FIT = ComputeFit()


def _fit_bytes(arch: GgufArch | None, moment: str, lm: LanguageModel, c: LlamaContext, cpu: bool) -> int:
    """The fit's bytes on the CPU graph (where it was read); the split GPU graphs keep their own fits (L1-L4, G12/G13:
    G13's gpt-oss-120b prints 796 MiB on ROCm, which these rows would overshoot by 26 MiB)."""
    rows = COMPUTE_FIT.get(arch.name, NO_FIT).rows(moment, c) if arch and cpu else 0
    return round(rows * 4) * lm.hidden * c.n_ubatch * F32 // 4


@dataclass(frozen=True, slots=True, repr=False)
class ComputeBuffers:
    gpu: int  # CUDA0 compute buffer
    host: int  # CUDA_Host compute buffer; nothing offloaded: the CPU backend's single compute buffer (the grid's)


def _mask_elements(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None) -> int:
    """KQ mask elements of every cache (one per KV cell and token; the SWA cache has its own)."""
    full = kv_cells(lm, c, False) // c.n_streams * c.n_ubatch
    return full + kv_cells(lm, c, True) // c.n_streams * c.n_ubatch if swa_layers(lm, arch) else full


def _phases(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None, backend: str,
            mask: int | None = None) -> dict[str, int]:
    """Peak bytes at the graph's three largest moments, for the CPU backend or the CUDA split graph.

    CPU (fitted to the grid): attention without FA holds the KQ scores, the F32 mask, Q, K, V and four
    n_embd rows per token; the output holds the logits and two n_embd rows.
    CUDA (fitted to field cases L1-L4): Q/K/V are not alive at the KQ peak (four n_embd rows beside the
    scores and mask), the output holds one n_embd row, and with FA the mask's F32 and F16 forms.
    """
    ub, hidden = c.n_ubatch, lm.hidden
    mask = _mask_elements(lm, c, arch) if mask is None else mask  # `mask`: _mask_elements, when the caller has it
    q, kv = lm.heads * lm.head_dim, lm.kv_heads * lm.head_dim
    kq = 0 if c.flash_attention else c.n_ctx_seq * ub * lm.heads * F32
    ffn_width = lm.moe.expert_ffn * lm.moe.experts_per_token if lm.moe else lm.ffn
    cpu = backend == "cpu"
    attn_extra, out_extra = ((r * hidden for r in arch.compute_rows) if arch else (0, 0))
    attn_rows = 4 * hidden + (q + 2 * kv if cpu else 0) + attn_extra
    attention = kq + (mask * F32 if not c.flash_attention else 0) + attn_rows * ub * F32 \
        + (_fit_bytes(arch, "attention", lm, c, cpu) if cpu else 0)
    fa_mask = mask * (2 if cpu else 2 + F32) if c.flash_attention else 0
    # a quantized cache under FA keeps one more n_embd row alive at the output (grid: q8_0/q4_0 rows)
    quantized = c.flash_attention and (c.type_k.block > 1 or c.type_v.block > 1)
    rows = (2 if cpu else 1) + quantized
    output = lm.vocab * ub * F32 + (rows * hidden + out_extra) * ub * F32 + (0 if cpu else fa_mask) \
        + (_fit_bytes(arch, "output", lm, c, cpu) if cpu else 0)
    # the FFN of a layer: gate, up, their product and four n_embd rows, beside the masks every layer reads
    # (with FA and a quantized cache the F16 mask was not alive there in the grid)
    masks = 0 if quantized else (mask * 2 if c.flash_attention else mask * F32)
    ffn = (3 * ffn_width + 4 * hidden) * ub * F32 + masks + (_fit_bytes(arch, "ffn", lm, c, cpu) if cpu else 0)
    return {"attention": attention, "output": output, "ffn": ffn}


def _phases_2026(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None, backend: Backend) -> dict[str, int]:
    """The device's peak moments in the 2026 graph (llama-graph.cpp at 00395eb): the KQ mask is an F16 input with
    flash attention (F32 without), copied into the device buffer unless the GPU reads host memory in place
    (Metal); by the output moment the mask copies are freed, leaving the logits and one n_embd row (G12: 517 MiB
    = 512.1 + 5.0; G13: 796 MiB = 785.5 + 11.25). Attention and FFN moments as the CUDA model's."""
    ub, hidden = c.n_ubatch, lm.hidden
    mask = 0 if backend.unified_memory else _mask_elements(lm, c, arch) * (2 if c.flash_attention else F32)
    kq = 0 if c.flash_attention else c.n_ctx_seq * ub * lm.heads * F32
    ffn_width = lm.moe.expert_ffn * lm.moe.experts_per_token if lm.moe else lm.ffn
    attn_extra, out_extra = ((r * hidden for r in arch.compute_rows) if arch else (0, 0))
    quantized = c.flash_attention and (c.type_k.block > 1 or c.type_v.block > 1)
    attention = kq + mask + (4 * hidden + attn_extra) * ub * F32
    output = lm.vocab * ub * F32 + ((1 + quantized) * hidden + out_extra) * ub * F32
    ffn = (3 * ffn_width + 4 * hidden) * ub * F32 + mask
    return {"attention": attention, "output": output, "ffn": ffn}


def _host_2026(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None, backend: Backend) -> int:
    """Host compute buffer of the 2026 graph: the masks the CPU fills (F16 with FA) and the looked-up embeddings,
    times the backend's input copies (host_rows and host_copies are fitted on G13/G12, see llamacpp_backends)."""
    mask = _mask_elements(lm, c, arch) * (2 if c.flash_attention else F32)
    return backend.host_copies * (mask + backend.host_rows * lm.hidden * c.n_ubatch * F32) \
        + INPUT_INTS * c.n_ubatch * 4


@dataclass(frozen=True, slots=True, repr=False)
class SplitFit:
    """n_embd x n_ubatch F32 rows (in quarters) the device's peak holds beyond `_split_device`'s moments, per moment.

    A FIT, like ComputeFit: read off model_specs/llamacpp/grid-vulkan.json's full-offload rows (llama.cpp 0c1e570 on
    lavapipe), the smallest quarter-row counts that leave no row of the architecture under; where ggml-alloc puts the
    logits depends on every tensor freed before them, which we do not replay."""

    output: float = 0
    output_streams: float = 0  # more with several KV streams (n_parallel > 1, split KV)
    attention: float = 0  # more at the attention moment (the KQ scores without flash attention)
    second_chunk: float = 0  # more in the second allocator chunk when the logits fill one (VK_MAX_CHUNK)


# Fitted (scripts/fit_split_compute.py) on grid-vulkan.json's full-offload rows: 80 dry runs of 10 models, n_ubatch
# 256/512/1024, n_ctx 4096/16384, n_parallel 1/2/4, flash attention on/off. Graphs: src/models/<arch>.cpp at 0c1e570.
SPLIT_FIT: dict[str, SplitFit] = {
    "qwen35": SplitFit(output=0.75),
    "qwen35moe": SplitFit(output=2.25),
    "nemotron_h": SplitFit(output=3.25, attention=0.25),
    "lfm2": SplitFit(output_streams=1.75),
    "gemma4": SplitFit(output=3.5, output_streams=3.25, second_chunk=7.5),  # second_chunk: its n_ubatch 1024 row
    "llama4": SplitFit(output_streams=2.5),
    "gpt-oss": SplitFit(output_streams=0.5, attention=1.25),
    "step35": SplitFit(output_streams=1.5, attention=3.25),
}
# ggml-vulkan.cpp: suballocation_block_size = 1 GiB unless GGML_VK_SUBALLOCATION_BLOCK_SIZE (and at most the device's
# maxMemoryAllocationSize) is the buffer type's max_size; ggml-alloc.c (ggml_dyn_tallocr) then packs the compute graph
# into chunks of at most that size, so a tensor that fills a chunk (the logits at n_vocab x n_ubatch x 4 >= 1 GiB)
# pushes everything alive beside it into another chunk, and the buffer is the chunks' sum
VK_MAX_CHUNK = 1 << 30
SPLIT_INPUT_BYTES = 64  # per token: tokens, output ids (I32), positions (I32, 4 with M-RoPE), K and V indices (I64)
# per KV cache (build_input_k_idxs / v_idxs), ggml-alloc's alignment on top: 41-61 B per token on the Vulkan grid


@per_spec
def _v_width_max(lm: LanguageModel) -> int:
    """hparams.n_embd_v_gqa_max(): the widest V row of any layer (src/llama-hparams.cpp)."""
    widths = [sum(r.elements for r in layer.rows if r.name == "v") for layer in cache.layer_caches(lm)]
    return max(widths, default=0) or lm.kv_heads * lm.head_dim


def _kv_caches(lm: LanguageModel, arch: GgufArch | None) -> int:
    """KV caches the graph builds inputs for: one, two with iSWA (llama_kv_cache_iswa: base and SWA)."""
    return 1 + bool(swa_layers(lm, arch))


def _split_inputs(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None) -> tuple[int, int]:
    """(KQ masks, V indices) in bytes: graph inputs the CPU fills and the device reads (a copy on each side).

    Masks: llama-graph.cpp build_attn_inp_kq_mask, F16 with flash attention, else F32, one per cache. V indices:
    llama-kv-cache.cpp build_input_v_idxs, I64, n_ubatch x n_embd_v_gqa_max per cache when the V cache is
    transposed (no flash attention), n_ubatch otherwise (counted with the small ints)."""
    mask = _mask_elements(lm, c, arch) * (2 if c.flash_attention else F32)
    v_idxs = 0 if c.flash_attention else _kv_caches(lm, arch) * c.n_ubatch * _v_width_max(lm) * I64
    return mask, v_idxs


def _split_host(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None) -> int:
    """Host compute buffer of the split graph (ggml-backend.cpp ggml_backend_sched_backend_id_from_cur: graph inputs
    go to the last backend, the CPU, and the embedding lookup stays there as ggml-vulkan does not offload GET_ROWS,
    ggml_vk_get_op_batch_size 0): the inp_embd input and the looked-up rows (llama-graph.cpp build_inp_embd, two
    n_embd x n_ubatch F32), the masks, the V indices, the small int inputs."""
    mask, v_idxs = _split_inputs(lm, c, arch)
    return 2 * lm.hidden * c.n_ubatch * F32 + mask + v_idxs + SPLIT_INPUT_BYTES * c.n_ubatch


def _split_device(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None) -> dict[str, int]:
    """The device's moments in the split graph: the copies of the masks and V indices live throughout; the KQ
    scores without flash attention beside four n_embd rows; the FFN (gate, up, product, four rows); the logits
    (n_vocab x n_ubatch F32, all outputs reserved) beside two rows; plus SPLIT_FIT's fitted rows."""
    ub, hidden = c.n_ubatch, lm.hidden
    mask, v_idxs = _split_inputs(lm, c, arch)
    fit = SPLIT_FIT.get(arch.name, SplitFit()) if arch else SplitFit()
    kq = 0 if c.flash_attention else c.n_ctx_seq * ub * lm.heads * F32
    ffn_width = lm.moe.expert_ffn * lm.moe.experts_per_token if lm.moe else lm.ffn

    def rows(n: float) -> int:
        return round(n * 4) * hidden * ub * F32 // 4

    logits = lm.vocab * ub * F32
    moments = {"attention": kq + mask + v_idxs + rows(4 + fit.attention),
               "ffn": (3 * ffn_width + 4 * hidden) * ub * F32 + mask + v_idxs,
               "output": logits + rows(2 + fit.output + fit.output_streams * (c.n_streams > 1))}
    if moments["output"] > VK_MAX_CHUNK:  # the logits take a chunk; the rest of the graph peaks in another one
        others = max(moments["attention"], moments["ffn"], moments["output"] - logits) + rows(fit.second_chunk)
        moments["output"] = logits + others
    return moments


def _partial(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None, host_tensor_max: int) -> tuple[int, int]:
    """(device, host) peaks when some repeating layers stay on the host (n_gpu_layers <= n_layer).

    Device: llama.cpp's op offload (cparams.op_offload, on by default; ggml-backend.cpp
    ggml_backend_sched_backend_id_from_cur "1.off") runs a host layer's matrix products with >= 32 rows on the GPU,
    the scheduler copying their weights into the device's compute buffer. A BOUND read from the grid, not derived
    (which weights share a split we did not replay): two copies of the largest host tensor beside the FFN's
    activations (step-3.7-flash: 2063 MiB printed for 1181 + 607 MiB of expert copies). Host: the ops without a
    weight of the host layers stay on the CPU. With recurrent layers (their scans and convolutions) bounded by our CPU
    graph's attention and FFN moments (nemotron-h prints 152 MiB more than at full offload, this gives 256); else
    one n_embd row (the norms and residual adds; gemma-4 prints 2.5 MiB more, a row is 5.5): bounds read off the grid's
    partial-offload rows, not derived."""
    if c.n_gpu_layers > lm.layers:
        return 0, 0
    ffn_width = lm.moe.expert_ffn * lm.moe.experts_per_token if lm.moe else lm.ffn
    device = 2 * host_tensor_max + (3 * ffn_width + 4 * lm.hidden) * c.n_ubatch * F32
    if cache.has_state(lm):
        phases = _phases(lm, c, arch, "cpu")
        return device, max(phases["attention"], phases["ffn"])
    return device, lm.hidden * c.n_ubatch * F32


def compute_buffers(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None,
                    backend: Backend | None = None, host_tensor_max: int = 0) -> ComputeBuffers:
    """Compute buffers in bytes for the resolved context (the backend's split graph, and the CPU-only figure).

    `host_tensor_max`: the largest weight tensor of a repeating layer left on the host (partial offload)."""
    backend = backend or BACKENDS[DEFAULT_BACKEND]
    ints = INPUT_INTS * c.n_ubatch * 4
    if c.n_gpu_layers == 0 or not backend.gpu:
        return ComputeBuffers(0, max(_phases(lm, c, arch, "cpu").values()) + ints)
    if backend.graph == "2026":
        return ComputeBuffers(max(_phases_2026(lm, c, arch, backend).values()), _host_2026(lm, c, arch, backend))
    mask = _mask_elements(lm, c, arch)
    gpu = max(_phases(lm, c, arch, "cuda", mask).values())
    host = lm.hidden * c.n_ubatch * F32 + mask * F32 + ints  # embeddings + F32 masks
    if backend.split_grid:  # the split-graph rules of this backend's grid; the larger figure per side
        device_partial, host_partial = _partial(lm, c, arch, host_tensor_max)
        gpu = max(gpu, *_split_device(lm, c, arch).values(), device_partial)
        host = max(host, _split_host(lm, c, arch) + host_partial)
    return ComputeBuffers(gpu=gpu, host=host)


def layer_compute(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None, backend: Backend) -> int:
    """A device holding repeating layers but not the output layer (several devices, layer split): the larger of
    the attention and FFN moments of the backend's graph, no logits. A model (ggml_backend_sched gives every
    backend its own compute buffer, sized by the graph splits it runs), not measured on several devices."""
    phases = _phases_2026(lm, c, arch, backend) if backend.graph == "2026" else _phases(lm, c, arch, "cuda")
    return max(phases["attention"], phases["ffn"])


def vision_buffer(inp: RuntimeInput) -> int:
    """mtmd/clip graph for one image: ViT activations, plus the KQ scores without flash attention."""
    v = inp.spec.vision
    if v is None or not inp.images:
        return 0
    t = v.encoder_tokens
    scores = 0 if inp.flash_attention else v.heads * t * t * F32
    return t * F32 * (RESIDUAL_STREAMS * v.hidden + 2 * v.mlp) + scores
