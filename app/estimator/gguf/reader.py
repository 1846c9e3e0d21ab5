"""A GGUF file's header (metadata + tensor table) -> architecture, every tensor's type and bytes.

Parsed with the `gguf` package's GGUFReader (llama.cpp's own gguf-py); tensor data is never needed:
the reader is given the header bytes only (the first MiB of the file, as the page's File.slice sends
them) and the tensor-data views it would build are skipped. Split files (`-00001-of-0000N`) are
several headers; all parts are needed for the weights to be exact.

Errors are InvalidRequest (-> 422) naming the field `file` and what was wrong.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from app.estimator.errors import InvalidRequest
from app.estimator.runtimes.llamacpp_buffers import TensorEntry

MAX_HEADER_BYTES = 64 << 20  # a 256k-token vocabulary with merges is ~10 MiB of metadata
MAGIC = b"GGUF"
SPLIT_COUNT, SPLIT_NO = "split.count", "split.no"


class _HeaderReader(GGUFReader):
    """GGUFReader that records each tensor's type, shape and offset but never maps its data."""

    def _build_tensors(self, start_offs: int, fields: list[Any]) -> None:
        self.header_tensors = []
        for field in fields:
            _n, name, _d, dims, raw_type, offset = field.parts
            self.header_tensors.append((bytes(name).decode("utf-8"), GGMLQuantizationType(int(raw_type[0])),
                                        [int(x) for x in dims], int(offset[0])))
        self.tensors = []


@dataclass(frozen=True, slots=True)
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


def _value(field: Any) -> Any:
    if not field.types:
        return None
    if field.types[0] == GGUFValueType.ARRAY:
        if field.types[-1] == GGUFValueType.STRING:
            return len(field.data)  # token lists: only their length matters here
        return [field.parts[i].tolist()[0] for i in field.data]
    part = field.parts[field.data[0]]
    if field.types[0] == GGUFValueType.STRING:
        return bytes(part).decode("utf-8", "replace")
    return part.tolist()[0]


def _entry(name: str, ty: GGMLQuantizationType, dims: list[int], offset: int) -> TensorEntry:
    if ty not in GGML_QUANT_SIZES:
        raise InvalidRequest("file", f"tensor {name!r} has GGML type {ty.name}, which has no known size")
    block, size = GGML_QUANT_SIZES[ty]
    n = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if dims[0] % block:
        raise InvalidRequest("file", f"tensor {name!r}: row of {dims[0]} is not a multiple of {ty.name}'s block")
    return TensorEntry(name, ty, dims[0], n // block * size, offset)


def read_header(data: bytes, filename: str = "upload") -> GgufHeader:
    """Parse the header bytes of one GGUF file (or one part of a split file).

    Raises:
        InvalidRequest: not a GGUF file, too large, or truncated before the tensor table ends.
    """
    if len(data) > MAX_HEADER_BYTES:
        raise InvalidRequest("file", f"{filename}: more than {MAX_HEADER_BYTES >> 20} MiB of header; send only "
                             "the first bytes of the file (the metadata and tensor table)")
    if data[:4] != MAGIC:
        raise InvalidRequest("file", f"{filename}: not a GGUF file (it starts with {data[:4]!r}, not b'GGUF')")
    with tempfile.NamedTemporaryFile(suffix=".gguf") as f:
        f.write(data)
        f.flush()
        try:
            r = _HeaderReader(f.name)
        except (ValueError, IndexError, KeyError, UnicodeDecodeError, OverflowError, TypeError) as exc:
            raise InvalidRequest("file", f"{filename}: the GGUF header is truncated or corrupt ({exc}); "
                                 f"{len(data):,} bytes were sent: send the whole header (up to "
                                 f"{MAX_HEADER_BYTES >> 20} MiB)") from exc
    meta = {k: _value(v) for k, v in r.fields.items() if not k.startswith("GGUF.")}
    tensors = tuple(_entry(*t) for t in r.header_tensors)
    return GgufHeader(meta, tensors, int(r.data_offset))


def merge_parts(parts: list[GgufHeader]) -> GgufHeader:
    """The parts of a split GGUF as one file (metadata of part 1, tensors of all).

    Raises:
        InvalidRequest: parts missing, repeated, or from different splits.
    """
    if len(parts) == 1 and int(parts[0].metadata.get(SPLIT_COUNT, 1) or 1) == 1:
        return parts[0]
    counts = {int(p.metadata.get(SPLIT_COUNT, 0)) for p in parts}
    numbers = sorted(int(p.metadata.get(SPLIT_NO, -1)) for p in parts)
    if len(counts) != 1 or numbers != list(range(counts.pop())):
        raise InvalidRequest("file", f"a split GGUF needs the headers of all its parts "
                             f"(-00001-of-0000N ... ); got parts {[n + 1 for n in numbers]} of "
                             f"{sorted(int(p.metadata.get(SPLIT_COUNT, 0)) for p in parts)[-1]}")
    first = next(p for p in parts if int(p.metadata.get(SPLIT_NO, 0)) == 0)
    tensors = tuple(t for p in sorted(parts, key=lambda p: int(p.metadata[SPLIT_NO])) for t in p.tensors)
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


def _has(names: set[str], *candidates: str) -> bool:
    return any(c in names for c in candidates)


def language_model(h: GgufHeader, source: str) -> dict[str, Any]:
    """LanguageModel fields from the `{arch}.*` keys and the tensor table (llama.cpp's own sources of truth).

    Raises:
        InvalidRequest: the keys llama.cpp requires (block_count, embedding_length, head_count) are missing.
    """
    from app.estimator.gguf.arch import ARCHS, is_swa_layer

    names = {t.name for t in h.tensors}
    layers, hidden, heads = h.key("block_count"), h.key("embedding_length"), _max(h.key("attention.head_count"))
    if not (layers and hidden and heads):
        raise InvalidRequest("file", f"architecture {h.arch!r}: the header lacks {h.arch}.block_count, "
                             f"embedding_length or attention.head_count")
    embd = next((t for t in h.tensors if t.name == "token_embd.weight"), None)
    vocab = h.key("vocab_size") or h.metadata.get("tokenizer.ggml.tokens")
    if not vocab and embd is not None:
        vocab = _vocab_from_shape(embd)
    kv_heads = _max(h.key("attention.head_count_kv"), heads) or heads
    head_dim = int(h.key("attention.key_length") or hidden // heads)
    ffn = _max(h.key("feed_forward_length"), 1) or 1
    arch = ARCHS.get(h.arch)
    window = h.key("attention.sliding_window")
    swa = sum(is_swa_layer(arch, il) for il in range(int(layers))) if arch and window else 0
    experts = h.key("expert_count")
    fused_up = "blk.0.ffn_up.weight" in names and "blk.0.ffn_gate.weight" not in names
    return {
        "source": source, "layers": int(layers), "hidden": int(hidden), "heads": heads,
        "kv_heads": kv_heads if heads % kv_heads == 0 else heads, "head_dim": head_dim, "ffn": ffn,
        "ffn_kind": "swiglu" if _has(names, "blk.0.ffn_gate.weight", "blk.0.ffn_gate_exps.weight") or fused_up
        else "gelu",
        "vocab": int(vocab or 1), "tied_embeddings": "output.weight" not in names,
        "qkv_bias": _has(names, "blk.0.attn_q.bias", "blk.0.attn_qkv.bias"),
        "linear_bias": "blk.0.attn_output.bias" in names,
        "norm": "layernorm" if "blk.0.attn_norm.bias" in names else "rmsnorm",
        "max_context": int(h.key("context_length") or 4096),
        "fused_qkv": "blk.0.attn_qkv.weight" in names, "fused_gate_up": fused_up,
        "sliding_window": int(window) if swa else None, "sliding_window_layers": swa,
        "moe": {"experts": int(experts), "experts_per_token": int(h.key("expert_used_count") or 1),
                "expert_ffn": int(h.key("expert_feed_forward_length") or ffn)} if experts and experts > 1 else None,
        "dtype": "float16", "qk_norm": "blk.0.attn_q_norm.weight" in names,
        "layer_types": tuple("sliding" if arch and is_swa_layer(arch, il) else "full" for il in range(int(layers)))
        if swa else None,
    }


def _vocab_from_shape(embd: TensorEntry) -> int:
    block, size = GGML_QUANT_SIZES[embd.ggml_type]
    return embd.nbytes // (embd.row // block * size)
