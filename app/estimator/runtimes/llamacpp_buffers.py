"""llama.cpp's model, KV and output buffers, per device, to the byte.

Sources (build vendored in llama-cpp-python 0.3.36):
- src/llama-model.cpp load_tensors: token_embd on the host (dev_input is always the CPU), blk.N on the
  device of layer N, output_norm/output on the output layer's device; a tied output duplicates
  token_embd onto that device (TENSOR_DUPLICATED); rope_freqs sits with layer 0.
- src/llama-model-loader.cpp: host weights are mmapped, the CPU_Mapped buffer spans the file range
  from the first to the last host tensor.
- ggml/src/ggml-cuda/ggml-cuda.cu: CUDA buffers align tensors to 128 B and pad a quantized tensor's
  last row to a multiple of MATRIX_ROW_PADDING (512) elements.
- src/llama-kv-cache.cpp / llama-kv-cache-iswa.cpp: one K and one V tensor per layer of
  n_embd_k_gqa x kv_size x n_stream; SWA layers get GGML_PAD(min(kv_size, n_swa*(unified ? n_seq : 1)
  + n_ubatch), 256) cells unless --swa-full.
- src/llama-context.cpp output_reserve: logits n_vocab x n_seq_max F32, in the output device's host buffer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from app.estimator import cache
from app.estimator.gguf import rules as gguf
from app.estimator.gguf.arch import GgufArch, is_swa_layer
from app.estimator.gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from app.estimator.memo import per_spec
from app.estimator.params import language_tensors
from app.estimator.runtimes.llamacpp_context import N_CTX_PAD, LlamaContext, pad
from app.estimator.spec import LanguageModel, ModelSpec

CUDA_ALIGN = 128  # ggml_backend_cuda_buffer_type_get_alignment
MATRIX_ROW_PADDING = 512  # ggml-cuda/common.cuh
F32 = 4
_LAYER = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True, slots=True, repr=False)
class TensorEntry:
    """One tensor as a GGUF file stores it."""

    name: str
    ggml_type: GGMLQuantizationType
    row: int  # ne[0]
    nbytes: int
    offset: int  # in the data section

    @property
    def layer(self) -> int | None:
        m = _LAYER.match(self.name)
        return int(m.group(1)) if m else None


def cuda_alloc_size(t: TensorEntry, align: int = CUDA_ALIGN, row_padding: int = MATRIX_ROW_PADDING) -> int:
    """ggml_backend_cuda_buffer_type_get_alloc_size, aligned as the buffer lays tensors out (other backends:
    their alignment, and no row padding where row_padding is 0)."""
    size = t.nbytes
    block, block_bytes = GGML_QUANT_SIZES[t.ggml_type]
    if row_padding and block > 1 and t.row % row_padding:
        size += block_bytes * (row_padding - t.row % row_padding) // block  # ggml_row_size
    return pad(size, align)


@dataclass(frozen=True, slots=True, repr=False)
class Weights:
    gpu: int  # CUDA model buffer
    host: int  # CPU_Mapped model buffer (mmap range)
    tensor_bytes: int  # every tensor once (llama_model_size)


@dataclass(frozen=True, slots=True, repr=False)
class _Group:
    """Tensors placed together: one repeating layer, the input (token_embd) or the output layer."""

    cuda: int  # CUDA buffer bytes (padded)
    lo: int  # first byte in the file
    hi: int  # end of the last byte


class _Groups(dict):
    """Group sums of one tensor table and layout, with the Weights of each placement already asked for."""

    tensor_bytes: int = 0

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.placed: dict[tuple[int, int, bool], Weights] = {}


_GROUPS: dict[tuple[int, int, int], tuple[tuple[TensorEntry, ...], _Groups]] = {}


def _key(t: TensorEntry) -> str | int:
    if t.name == "token_embd.weight":
        return "input"
    if t.name == "output.weight":
        return "output_weight"
    if t.name.startswith("rope_freqs"):
        return 0  # created with layer 0 (duplicated to the others)
    return "output" if t.layer is None else t.layer


tensor_group = _key  # the group a tensor is placed with: "input", "output", "output_weight" or its layer


def _groups(tensors: tuple[TensorEntry, ...], align: int = CUDA_ALIGN,
            row_padding: int = MATRIX_ROW_PADDING) -> _Groups:
    """Per-group sums, computed once per tensor table and layout (the table is cached per spec or per file)."""
    hit = _GROUPS.get((id(tensors), align, row_padding))
    if hit is not None and hit[0] is tensors:
        return hit[1]
    acc: dict[str | int, list[int]] = {}
    for t in tensors:
        g = acc.setdefault(_key(t), [0, t.offset, 0])
        g[0], g[1], g[2] = (g[0] + cuda_alloc_size(t, align, row_padding), min(g[1], t.offset),
                            max(g[2], t.offset + t.nbytes))
    out = _Groups({k: _Group(*v) for k, v in acc.items()})
    out.tensor_bytes = sum(t.nbytes for t in tensors)
    if len(_GROUPS) > 256:
        _GROUPS.clear()
    _GROUPS[(id(tensors), align, row_padding)] = (tensors, out)  # holding the table keeps its id from reuse
    return out


def _on_gpu(key: str | int, c: LlamaContext, n_layer: int) -> bool:
    if key == "input":
        return False  # dev_input is always the CPU
    if key in ("output", "output_weight"):
        return c.output_on_gpu
    return c.layer_on_gpu(int(key), n_layer)


def weights(tensors: tuple[TensorEntry, ...], c: LlamaContext, lm: LanguageModel, align: int = CUDA_ALIGN,
            row_padding: int = MATRIX_ROW_PADDING, to_host: Callable[[str], bool] | None = None) -> Weights:
    """Model buffers: the device's (every GPU tensor, padded as its backend pads) and the mmapped host range.

    `to_host`: tensors a --override-tensor (-ot) rule keeps in host memory although their layer is offloaded.
    """
    if to_host is not None:
        return _weights_overridden(tensors, c, lm, align, row_padding, to_host)
    groups = _groups(tensors, align, row_padding)
    # which groups sit on the device depends on the first offloaded layer and the output layer only
    placement = (lm.layers, max(lm.layers + 1 - c.n_gpu_layers, -1), c.output_on_gpu)
    hit = groups.placed.get(placement)
    if hit is not None:
        return hit
    gpu, lo, hi = 0, None, 0
    for key, g in groups.items():
        if _on_gpu(key, c, lm.layers):
            gpu += g.cuda
        else:
            lo, hi = (g.lo if lo is None else min(lo, g.lo)), max(hi, g.hi)
    if c.output_on_gpu and "output_weight" not in groups and "input" in groups:
        gpu += groups["input"].cuda  # tied: token_embd duplicated onto the output's device
    out = groups.placed[placement] = Weights(gpu, hi - (lo or 0), groups.tensor_bytes)
    return out


def _weights_overridden(tensors: tuple[TensorEntry, ...], c: LlamaContext, lm: LanguageModel, align: int,
                        row_padding: int, to_host: Callable[[str], bool]) -> Weights:
    """weights() with -ot overrides, tensor by tensor. The host figure is the host tensors' sum, as --fit
    measures it (common/fit.cpp loads with use_mmap false), not an mmap range: overridden experts interleave
    with device tensors in the file."""
    gpu = host = 0
    tied = not any(t.name == "output.weight" for t in tensors)
    for t in tensors:
        if _on_gpu(_key(t), c, lm.layers) and not to_host(t.name):
            gpu += cuda_alloc_size(t, align, row_padding)
        else:
            host += t.nbytes
        if tied and t.name == "token_embd.weight" and c.output_on_gpu:
            gpu += cuda_alloc_size(t, align, row_padding)
    return Weights(gpu, host, sum(t.nbytes for t in tensors))


def largest_host_tensor(tensors: tuple[TensorEntry, ...], c: LlamaContext, lm: LanguageModel) -> int:
    """The largest weight tensor of a repeating layer left in host memory (0 at full offload): the layers below
    n_layer + 1 - n_gpu_layers (LlamaContext.layer_on_gpu)."""
    if c.n_gpu_layers > lm.layers:
        return 0
    below = _largest_below(tensors)
    return below[min(max(0, lm.layers + 1 - c.n_gpu_layers), len(below) - 1)]


@per_spec  # a tensor table (catalog_tensors' or a GGUF file's) is immutable: walked once
def _largest_below(tensors: tuple[TensorEntry, ...]) -> tuple[int, ...]:
    """[k]: the largest tensor of the repeating layers il < k."""
    per_layer: dict[int, int] = {}
    for t in tensors:
        il = t.layer
        if il is not None:
            per_layer[il] = max(per_layer.get(il, 0), t.nbytes)
    out = [0]
    for il in range(max(per_layer, default=-1) + 1):
        out.append(max(out[-1], per_layer.get(il, 0)))
    return tuple(out)


WINDOWED = ("sliding", "chunked")  # layer kinds llama.cpp gives the iSWA cache's windowed half


@per_spec
def swa_layers(lm: LanguageModel, arch: GgufArch | None) -> frozenset[int]:
    """Layers llama.cpp treats as sliding-window: the spec's layer_types, the architecture's pattern, else the
    first N (only the count matters then, except for partial offload). Computed once per model and arch."""
    if lm.layer_types is not None:  # chunked layers too: llama.cpp's iSWA cache (LLAMA_SWA_TYPE_CHUNKED, llama4)
        return frozenset(il for il, kind in enumerate(lm.layer_types) if kind in WINDOWED)
    if arch is not None and arch.swa_pattern:
        return frozenset(il for il in range(lm.layers) if is_swa_layer(arch, il))
    return frozenset(range(lm.sliding_window_layers))


def kv_cells(lm: LanguageModel, c: LlamaContext, swa: bool) -> int:
    """Cells of one layer's cache over all streams (llama_kv_cache / llama_kv_cache_iswa)."""
    size = c.n_ctx_seq
    # n_swa: the sliding window, or llama4's attention chunk (src/models/llama4.cpp load_arch_hparams: n_swa = 8192,
    # LLAMA_SWA_TYPE_CHUNKED); llama_kv_cache_iswa sizes both alike: min(n_ctx_seq, n_swa x seqs + n_ubatch), padded
    window = lm.sliding_window or lm.attention_chunk_size
    if swa and window:
        seqs = c.n_parallel if c.kv_unified else 1
        size = pad(min(size, window * seqs + c.n_ubatch), N_CTX_PAD)
    return size * c.n_streams


def _row(kv, elements: int) -> int:
    return kv.bytes_for(elements)


@dataclass(slots=True)  # not frozen: one per estimate, and cheaper so
class KvSplit:
    gpu: int
    host: int
    k: int
    v: int
    cells_full: int  # cells of a full-attention layer, all streams
    cells_swa: int  # cells of a sliding-window layer (0 without SWA)
    # --- per-layer cache model: llama_memory_recurrent (r and s states), apart from the KV cache ---
    state_gpu: int = 0
    state_host: int = 0
    rs_cells: int = 0  # recurrent-state cells: max(1, n_seq_max)
    state_per_sequence: int = 0


# llama.cpp src/llama-model.cpp create_memory: a recurrent / hybrid model's llama_memory_recurrent gets
# recurrent_type_r = recurrent_type_s = GGML_TYPE_F32 and rs_size = max(1, n_seq_max) cells; per layer
# r = n_embd_r() = (ssm_d_conv - 1) x conv channels (LFM2: n_embd x (n_shortconv_l_cache - 1)) and
# s = n_embd_s() = ssm_d_state x ssm_d_inner (src/llama-hparams.cpp), i.e. kernel - 1 conv inputs in F32.
STATE_RULE = cache.StateRule(conv_bytes=F32, recurrent_bytes=F32, ssm_bytes=F32, conv_keeps_kernel=False,
                             source="llama.cpp llama_memory_recurrent (F32 r and s)")


def _layer_kv(layer: cache.LayerCache, c: LlamaContext, lm: LanguageModel, v_width: int = 0) -> tuple[int, int]:
    """Bytes per cell of one layer's K and V tensors (K = V and MLA latents: one tensor, in type_k).

    `v_width`: the V row every layer gets instead of its own (the transposed V cache of varying widths)."""
    if layer.kind == "mla":  # unchanged from before the per-layer model: n_embd_k_gqa = n_embd_v_gqa
        width = lm.kv_heads * lm.head_dim
        return _row(c.type_k, width), _row(c.type_v, width)
    k = sum(_row(c.type_k, r.elements) for r in layer.rows if r.name != "v")
    v_rows = [r.elements for r in layer.rows if r.name == "v"]
    v = _row(c.type_v, v_width) if v_width and v_rows else sum(_row(c.type_v, e) for e in v_rows)
    return k, v


def _padded_v_width(layers: list[cache.LayerCache], v_trans: bool) -> int:
    """src/llama-kv-cache.cpp [TAG_V_CACHE_VARIABLE]: without flash attention the V cache is stored transposed and,
    when n_embd_v_gqa varies across layers, every layer's V is n_embd_v_gqa_max() wide (0: each its own)."""
    if not v_trans:
        return 0
    widths = {sum(r.elements for r in layer.rows if r.name == "v") for layer in layers
              if layer.kind != "mla" and any(r.name == "v" for r in layer.rows)}
    return max(widths) if len(widths) > 1 else 0


@dataclass(frozen=True, slots=True, repr=False)
class _KvTable:
    """Per-layer bytes of one model in one (type_k, type_v), as prefix sums over layer index: a request's split
    between host and device is then a few subtractions, whatever the layer count."""

    k_full: tuple[int, ...]  # K bytes per cell of layers 0 .. i-1 that keep every position
    v_full: tuple[int, ...]
    k_swa: tuple[int, ...]  # the same over sliding-window layers
    v_swa: tuple[int, ...]
    state: tuple[int, ...]  # recurrent r + s bytes of one cell
    windowed: bool  # any sliding-window layer
    state_per_sequence: int  # cache.state_bytes_per_sequence in llama.cpp's state rule


@dataclass(frozen=True, slots=True, repr=False)
class _Types:
    """The KV types _layer_kv reads from a LlamaContext."""

    type_k: object
    type_v: object


@per_spec
def _kv_table(lm: LanguageModel, arch: GgufArch | None, type_k, type_v, v_trans: bool = False) -> _KvTable:
    windowed = swa_layers(lm, arch)
    c = _Types(type_k, type_v)
    acc = [[0] for _ in range(5)]
    layers = cache.layer_caches(lm)
    by_index = {layer.index: layer for layer in layers}
    v_width = _padded_v_width(layers, v_trans)
    for il in range(lm.layers):
        k = v = kw = vw = st = 0
        layer = by_index.get(il)
        if layer is not None:
            if layer.states:
                st = layer.state_bytes(STATE_RULE)
            if layer.rows:
                k_row, v_row = _layer_kv(layer, c, lm, v_width)
                if il in windowed:
                    kw, vw = k_row, v_row
                else:
                    k, v = k_row, v_row
        for column, x in zip(acc, (k, v, kw, vw, st), strict=True):
            column.append(column[-1] + x)
    return _KvTable(*(tuple(column) for column in acc), windowed=bool(windowed),
                    state_per_sequence=cache.state_bytes_per_sequence(lm, STATE_RULE))


def kv_cache(lm: LanguageModel, c: LlamaContext, arch: GgufArch | None) -> KvSplit:
    """K and V of every layer that owns a cache, on the device of its layer (offload_kqv, the default); the
    recurrent layers' r/s states likewise (llama_memory_hybrid = KV cache + llama_memory_recurrent)."""
    t = _kv_table(lm, arch, c.type_k, c.type_v, not c.flash_attention)  # v_trans = !flash_attn
    n = lm.layers
    first_gpu = min(max(n + 1 - c.n_gpu_layers, 0), n)  # layer_on_gpu: il >= n_layer + 1 - n_gpu_layers
    rs_cells = max(1, c.n_parallel)
    full, swa = kv_cells(lm, c, False), kv_cells(lm, c, True)

    def split(column: tuple[int, ...]) -> tuple[int, int]:  # (device, host)
        return column[n] - column[first_gpu], column[first_gpu]

    (kf_gpu, kf_host), (vf_gpu, vf_host) = split(t.k_full), split(t.v_full)
    (ks_gpu, ks_host), (vs_gpu, vs_host) = split(t.k_swa), split(t.v_swa)
    st_gpu, st_host = split(t.state)
    gpu = (kf_gpu + vf_gpu) * full + (ks_gpu + vs_gpu) * swa
    host = (kf_host + vf_host) * full + (ks_host + vs_host) * swa
    k_all, v_all = t.k_full[n] * full + t.k_swa[n] * swa, t.v_full[n] * full + t.v_swa[n] * swa
    per_seq = t.state_per_sequence
    rows = rs_cells * (1 + c.n_rs_seq)  # llama_memory_recurrent: mem_size x (1 + n_rs_seq) rows per layer
    return KvSplit(gpu, host, k_all, v_all, full, swa if t.windowed else 0, st_gpu * rows,
                   st_host * rows, rs_cells if per_seq else 0, per_seq)


def output_buffer(lm: LanguageModel, c: LlamaContext) -> int:
    """Logits (and, with --embeddings, n_embd floats) for n_seq_max outputs (output_reserve at creation)."""
    return (lm.vocab + (lm.hidden if c.embeddings else 0)) * c.n_parallel * F32


GGUF_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT: each tensor's data starts on a 32-byte boundary


@per_spec
def catalog_tensors(spec: ModelSpec, file_type: str) -> tuple[TensorEntry, ...]:
    """The language model's tensors as llama-quantize writes `file_type`, in convert_hf_to_gguf's order."""
    lm = spec.language_model
    tensors = language_tensors(lm)
    out, offset = [], 0
    for t, ty in zip(tensors, gguf.language_types(lm, tensors, gguf.FILE_TYPES[file_type]), strict=True):
        n = gguf.tensor_bytes(ty, t)
        out.append(TensorEntry(t.name, ty, t.row, n, offset))
        offset += pad(n, GGUF_ALIGNMENT)
    return tuple(out)
