"""A GGUF file's header (metadata + tensor table) -> architecture, every tensor's type and bytes.

Read with the bounded walk of app/estimator/gguf/layout.py (the GGUF spec, ggml/docs/gguf.md), which
checks every count against the bytes actually sent before it loops or allocates; tensor data is never
needed: the reader is given the header bytes only (the first MiB of the file, as the page's File.slice
sends them). Split files (`-00001-of-0000N`) are several headers; all parts are needed for the weights
to be exact. Every value a spec takes from a header is held to the same LIMITS as a config.json.

Errors are InvalidRequest (-> 422) naming the field `file` and what was wrong.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from app.estimator.errors import InvalidRequest
from app.estimator.gguf.layout import STRING, BadGguf, GgufArray, NeedMore, layout
from app.estimator.limits import LIMITS
from app.estimator.runtimes.llamacpp_buffers import TensorEntry

MAX_HEADER_BYTES = 64 << 20  # a 256k-token vocabulary with merges is ~10 MiB of metadata
MAX_PARTS = 64  # parts of one split upload; llama.cpp's gguf-split numbers parts in 5 digits, releases use < 64
MAX_ARRAY_VALUES = 4 * LIMITS["layers"]  # arrays of numbers kept as values (per-layer keys); longer: their length
MAGIC = b"GGUF"
SPLIT_COUNT, SPLIT_NO = "split.count", "split.no"


@dataclass(frozen=True, slots=True, repr=False)
class GgufHeader:
    """One part of a GGUF file: its metadata and its tensors."""

    metadata: dict[str, Any]
    tensors: tuple[TensorEntry, ...]
    header_bytes: int  # where tensor data starts

    @property
    def arch(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def key(self, name: str, default: Any = None) -> Any:
        """`{arch}.name`, e.g. key("block_count")."""
        return self.metadata.get(f"{self.arch}.{name}", default)


def _value(v: Any) -> Any:
    """A walked value as the estimator reads it: arrays of strings (token lists) and long arrays as their
    length, short arrays of numbers (per-layer keys) as a list."""
    if not isinstance(v, GgufArray):
        return v
    if v.item_type == STRING or v.count > MAX_ARRAY_VALUES or not v.raw:
        return v.count
    return v.values()


def _entry(name: str, ty: GGMLQuantizationType, dims: tuple[int, ...], offset: int) -> TensorEntry:
    block, size = GGML_QUANT_SIZES[ty]
    n = 1
    for d in dims:
        n *= d
    if dims[0] % block:
        raise InvalidRequest("file", f"tensor {name[:80]!r}: row of {dims[0]} is not a multiple of {ty.name}'s "
                             "block")
    return TensorEntry(name, ty, dims[0], n // block * size, offset)


def read_header(data: bytes, filename: str = "upload") -> GgufHeader:
    """Parse the header bytes of one GGUF file (or one part of a split file).

    Raises:
        InvalidRequest: not a GGUF file, too large, or truncated before the tensor table ends.
    """
    filename = filename[:200]
    if len(data) > MAX_HEADER_BYTES:
        raise InvalidRequest("file", f"{filename}: more than {MAX_HEADER_BYTES >> 20} MiB of header; send only "
                             "the first bytes of the file (the metadata and tensor table)")
    if data[:4] != MAGIC:
        raise InvalidRequest("file", f"{filename}: not a GGUF file (it starts with {data[:4]!r}, not b'GGUF')")
    try:
        shape = layout(data, filename, "file")
    except NeedMore as need:
        raise InvalidRequest("file", f"{filename}: the GGUF header is truncated or corrupt (it needs at least "
                             f"{need.needed:,} bytes); {len(data):,} bytes were sent: send the whole header (up "
                             f"to {MAX_HEADER_BYTES >> 20} MiB)") from None
    except BadGguf as exc:
        raise InvalidRequest("file", exc.message) from None
    meta = {k: _value(v) for k, v in shape.metadata.items()}
    tensors = tuple(_entry(t.name, t.type, t.dims, t.offset) for t in shape.tensors)
    return GgufHeader(meta, tensors, shape.data_offset)


def _split_key(h: GgufHeader, key: str, default: int, high: int) -> int:
    """split.count / split.no as an int in [0, high] (a header's own word, so checked like any input)."""
    if key not in h.metadata:
        return default
    v = h.metadata[key]
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= high:
        raise InvalidRequest("file", f"{key}={str(v)[:40]} is not allowed; allowed: an integer 0 to {high}")
    return v


def merge_parts(parts: list[GgufHeader]) -> GgufHeader:
    """The parts of a split GGUF as one file (metadata of part 1, tensors of all).

    Raises:
        InvalidRequest: parts missing, repeated, or from different splits.
    """
    if len(parts) > MAX_PARTS:
        raise InvalidRequest("file", f"{len(parts)} parts; at most {MAX_PARTS} parts of a split GGUF")
    counts_ = [_split_key(p, SPLIT_COUNT, 0, MAX_PARTS) for p in parts]
    numbers_ = [_split_key(p, SPLIT_NO, -1 if len(parts) > 1 else 0, MAX_PARTS) for p in parts]
    if len(parts) == 1 and (counts_[0] or 1) == 1:
        return parts[0]
    counts = set(counts_)
    numbers = sorted(numbers_)
    if len(counts) != 1 or numbers != list(range(counts.pop())):
        raise InvalidRequest("file", f"a split GGUF needs the headers of all its parts "
                             f"(-00001-of-0000N ... ); got parts {[n + 1 for n in numbers]} of "
                             f"{max(counts_)}")
    first = parts[numbers_.index(0)]
    order = sorted(range(len(parts)), key=numbers_.__getitem__)
    tensors = tuple(t for i in order for t in parts[i].tensors)
    return GgufHeader(first.metadata, tensors, first.header_bytes)


def type_mix(tensors: tuple[TensorEntry, ...]) -> list[tuple[str, int, int]]:
    """(GGML type, tensors, bytes) per type, largest first: the file's type mix."""
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for t in tensors:
        count[t.ggml_type.name] += 1
        size[t.ggml_type.name] += t.nbytes
    return sorted(((k, count[k], size[k]) for k in count), key=lambda r: -r[2])


def _max(v: Any, default: int = 0) -> int:
    if isinstance(v, list):
        return max((int(x) for x in v), default=default)
    return default if v is None else int(v)


def _int(h: GgufHeader, name: str, high: int, default: int | None = None, low: int = 0) -> int | None:
    """`{arch}.name` as an int in [low, high] (the largest item of a per-layer array); `default` when absent.

    Raises InvalidRequest naming the key: a header is user input, held to the config importer's LIMITS."""
    v = h.key(name)
    if v is None or v == []:
        return default
    items = v if isinstance(v, list) else [v]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and x == x and abs(x) != float("inf")
               and x == int(x) for x in items):
        raise InvalidRequest("file", f"{h.arch}.{name}={str(v)[:40]} is not allowed; allowed: an integer")
    n = _max([int(x) for x in items], default or 0)
    if not low <= n <= high:
        raise InvalidRequest("file", f"{h.arch}.{name}={n} is not allowed; allowed: {low} to {high}")
    return n


def _has(names: set[str], *candidates: str) -> bool:
    return any(c in names for c in candidates)


def language_model(h: GgufHeader, source: str) -> dict[str, Any]:
    """LanguageModel fields from the `{arch}.*` keys and the tensor table (llama.cpp's own sources of truth).

    Raises:
        InvalidRequest: the keys llama.cpp requires (block_count, embedding_length, head_count) are missing.
    """
    from app.estimator.gguf.arch import ARCHS, is_swa_layer

    names = {t.name for t in h.tensors}
    width = LIMITS["width"]
    layers, hidden = _int(h, "block_count", LIMITS["layers"], low=1), _int(h, "embedding_length", width, low=1)
    heads = _int(h, "attention.head_count", width // 8, 0)
    if not (layers and hidden and heads):
        raise InvalidRequest("file", f"architecture {h.arch!r}: the header lacks {h.arch}.block_count, "
                             f"embedding_length or attention.head_count")
    embd = next((t for t in h.tensors if t.name == "token_embd.weight"), None)
    vocab = _int(h, "vocab_size", LIMITS["vocab"]) or h.metadata.get("tokenizer.ggml.tokens")
    if not vocab and embd is not None:
        vocab = _vocab_from_shape(embd)
    if not isinstance(vocab, int | None) or (vocab or 0) > LIMITS["vocab"]:
        raise InvalidRequest("file", f"a vocabulary of {str(vocab)[:40]} tokens is not allowed; allowed: 1 to "
                             f"{LIMITS['vocab']}")
    kv_heads = _int(h, "attention.head_count_kv", width // 8, heads) or heads
    head_dim = _int(h, "attention.key_length", width) or hidden // heads
    if head_dim < 1:
        raise InvalidRequest("file", f"{h.arch}.embedding_length {hidden} over {heads} heads leaves a head of 0; "
                             f"set {h.arch}.attention.key_length")
    ffn = _int(h, "feed_forward_length", width, 1) or 1
    arch = ARCHS.get(h.arch)
    window = _int(h, "attention.sliding_window", LIMITS["context"])
    swa = sum(is_swa_layer(arch, il) for il in range(layers)) if arch and window else 0
    experts = _int(h, "expert_count", LIMITS["experts"])
    used = _int(h, "expert_used_count", experts or 1) or 1
    expert_ffn = _int(h, "expert_feed_forward_length", width) or ffn
    context = _int(h, "context_length", LIMITS["context"]) or 4096
    fused_up = "blk.0.ffn_up.weight" in names and "blk.0.ffn_gate.weight" not in names
    return {
        "source": source, "layers": layers, "hidden": hidden, "heads": heads,
        "kv_heads": kv_heads if heads % kv_heads == 0 else heads, "head_dim": head_dim, "ffn": ffn,
        "ffn_kind": "swiglu" if _has(names, "blk.0.ffn_gate.weight", "blk.0.ffn_gate_exps.weight") or fused_up
        else "gelu",
        "vocab": int(vocab or 1), "tied_embeddings": "output.weight" not in names,
        "qkv_bias": _has(names, "blk.0.attn_q.bias", "blk.0.attn_qkv.bias"),
        "linear_bias": "blk.0.attn_output.bias" in names,
        "norm": "layernorm" if "blk.0.attn_norm.bias" in names else "rmsnorm",
        "max_context": context,
        "fused_qkv": "blk.0.attn_qkv.weight" in names, "fused_gate_up": fused_up,
        "sliding_window": int(window) if swa else None, "sliding_window_layers": swa,
        "moe": {"experts": experts, "experts_per_token": used, "expert_ffn": expert_ffn}
        if experts and experts > 1 else None,
        "dtype": "float16", "qk_norm": "blk.0.attn_q_norm.weight" in names,
        "layer_types": tuple("sliding" if arch and is_swa_layer(arch, il) else "full" for il in range(layers))
        if swa else None,
    }


def _vocab_from_shape(embd: TensorEntry) -> int:
    block, size = GGML_QUANT_SIZES[embd.ggml_type]
    return embd.nbytes // max(1, embd.row // block * size)
