"""A GGUF header walked from its bytes, bounded by the bytes held: the one parser both the upload and the Hub use.

Layout per the GGUF spec (ggml/docs/gguf.md): magic, version, tensor and key/value counts, every key/value,
then every tensor info. Every count is checked against the bytes actually present before anything is
allocated or looped over (an item takes at least 1 byte, a string at least 8), so a header that lies about
its counts ends in `NeedMore` (more bytes needed) or a `BadGguf`, in time linear in the bytes held. Arrays
are summarized (item type, length); arrays of numbers keep their raw bytes (read with numpy on demand).

The `gguf` package's GGUFReader trusts the counts it reads (an array claiming 2^40 items makes it allocate
until memory runs out), so it is only ever handed bytes this walk has accepted, and the estimator reads
the walk itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType

from app.estimator.errors import InvalidRequest

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # the versions GGUFReader reads (gguf-py gguf_reader.py READER_SUPPORTED_VERSIONS)
MAX_DIMS = 4  # GGML_MAX_DIMS (ggml/include/ggml.h)
SCALAR_FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
SCALAR_BYTES = {t: struct.calcsize(f) for t, f in SCALAR_FMT.items()}  # GGUFValueType -> bytes
STRING, ARRAY = 8, 9
MAX_DATA = 1 << 44  # 16 TiB of declared tensor data: far above any released GGUF (DeepSeek-V3 BF16 ~1.3 TB)
MAX_NESTING = 3  # arrays of arrays of arrays; GGUF writers produce at most one level
MAX_TENSORS = 1 << 20  # tensor infos; DeepSeek-V3 (61 layers x 256 experts, merged) has ~1.2k


class NeedMore(Exception):  # noqa: N818 - a signal, not an error
    """The header continues past the bytes held; at least `needed` bytes are required."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class BadGguf(InvalidRequest):
    """Not a readable GGUF header; `message` says why."""


@dataclass(frozen=True, repr=False)
class GgufArray:
    """An array value, summarized: its item type (GGUFValueType) and length.

    `raw` holds the little/big-endian bytes of an array of numbers (`values()` reads them); not compared."""

    item_type: int
    count: int
    raw: bytes = field(default=b"", repr=False, compare=False)
    order: str = field(default="<", repr=False, compare=False)

    def values(self) -> list[Any]:
        """The numbers of an array of scalars (empty for strings and nested arrays)."""
        if self.item_type not in SCALAR_FMT or not self.raw:
            return []
        return np.frombuffer(self.raw, dtype=np.dtype(self.order + SCALAR_FMT[self.item_type])).tolist()


@dataclass(frozen=True, repr=False)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # ne0 first, as GGUF stores them (GGUFReader's `shape`)
    type: GGMLQuantizationType
    offset: int  # in the data section
    n_bytes: int  # ggml_nbytes: elements / block elements * block bytes


@dataclass(frozen=True, repr=False)
class Layout:
    header_end: int  # end of the last tensor info
    data_offset: int  # header_end aligned up: where tensor data starts
    data_size: int  # bytes of tensor data the tensor infos declare (last tensor's offset + nbytes)
    tensor_count: int
    kv_count: int
    metadata: dict[str, Any]  # key -> number, bool, str, or GgufArray
    tensors: tuple[TensorInfo, ...]


class _Walk:
    def __init__(self, buf: bytes, what: str, field: str) -> None:
        self.buf, self.pos, self.what, self.field, self.order = buf, 0, what, field, "<"

    def bad(self, why: str) -> BadGguf:
        return BadGguf(self.field, f"{self.what} is not a readable GGUF header: {why}")

    def skip(self, n: int) -> int:
        start, self.pos = self.pos, self.pos + n
        if self.pos > len(self.buf):
            raise NeedMore(self.pos)
        return start

    def need(self, count: int, each: int) -> None:
        """`count` items of at least `each` bytes must fit in the bytes held: checked before any loop."""
        if count * each > len(self.buf) - self.pos:
            raise NeedMore(self.pos + count * each)

    def num(self, fmt: str) -> int:
        start = self.skip(struct.calcsize(fmt))
        return struct.unpack_from(self.order + fmt, self.buf, start)[0]

    def string(self) -> bytes:
        n = self.num("Q")
        return self.buf[self.skip(n):self.pos]

    def value(self, vtype: int, depth: int = 0) -> Any:
        """The value (arrays summarized as GgufArray), advancing past it."""
        if vtype in SCALAR_FMT:
            return self.num(SCALAR_FMT[vtype])
        if vtype == STRING:
            return self.string().decode("utf-8", "replace")
        if vtype == ARRAY and depth < MAX_NESTING:
            sub, count = self.num("I"), self.num("Q")
            if sub in SCALAR_BYTES:
                start = self.skip(SCALAR_BYTES[sub] * count)
                return GgufArray(sub, count, bytes(self.buf[start:self.pos]), self.order)
            self.need(count, 8 if sub == STRING else 12)  # a string: its length; an array: type + length
            for _ in range(count):
                self.skip_value(sub, depth + 1)
            return GgufArray(sub, count)
        raise self.bad(f"unknown value type {vtype} at byte {self.pos - 4}")

    def skip_value(self, vtype: int, depth: int) -> None:
        if vtype == STRING:
            self.skip(self.num("Q"))
        else:
            self.value(vtype, depth)

    def start(self) -> tuple[int, int]:
        if len(self.buf) >= 4 and self.buf[:4] != MAGIC:
            raise self.bad(f"it starts with {bytes(self.buf[:4])!r}, not the magic b'GGUF'")
        self.skip(4)
        version = self.num("I")
        if version & 0xFFFF == 0:  # written on a big-endian machine
            self.order, version = ">", struct.unpack(">I", struct.pack("<I", version))[0]
        if version not in VERSIONS:
            raise self.bad(f"version {version}; readable versions: {', '.join(map(str, VERSIONS))}")
        return self.num("Q"), self.num("Q")

    def tensor(self) -> TensorInfo:
        name = self.string().decode("utf-8", "replace")
        n_dims = self.num("I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise self.bad(f"tensor {name[:80]!r} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
        dims = tuple(self.num("Q") for _ in range(n_dims))
        try:
            ggml_type = GGMLQuantizationType(self.num("I"))
        except ValueError:
            raise self.bad(f"tensor {name[:80]!r} has an unknown ggml type") from None
        if ggml_type not in GGML_QUANT_SIZES:
            raise self.bad(f"tensor {name[:80]!r} has GGML type {ggml_type.name}, which has no known size")
        block, size = GGML_QUANT_SIZES[ggml_type]
        elements = 1
        for d in dims:
            elements *= d
        return TensorInfo(name, dims, ggml_type, self.num("Q"), elements // block * size)


def layout(buf: bytes, what: str = "the file", field: str = "gguf") -> Layout:
    """Walk the header in `buf`. Raises NeedMore(n) if it continues past `buf`, BadGguf if it is not GGUF."""
    walk = _Walk(buf, what, field)
    tensor_count, kv_count = walk.start()
    walk.need(kv_count, 12)  # a key/value: key length (8) + value type (4), at least
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = walk.string().decode("utf-8", "replace")
        metadata[key] = walk.value(walk.num("I"))
    alignment = metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0 or alignment & (alignment - 1):
        raise walk.bad(f"general.alignment {alignment!r} is not a power of two")
    if tensor_count > MAX_TENSORS:
        raise walk.bad(f"it declares {tensor_count:,} tensors (at most {MAX_TENSORS:,})")
    walk.need(tensor_count, 32)  # a tensor info: name length 8, n_dims 4, one dim 8, type 4, offset 8
    tensors = tuple(walk.tensor() for _ in range(tensor_count))
    data_size = max((t.offset + t.n_bytes for t in tensors), default=0)
    if data_size > MAX_DATA:
        raise walk.bad(f"its tensor infos declare {data_size:,} bytes of data (over {MAX_DATA:,})")
    end = walk.pos
    return Layout(end, -(-end // alignment) * alignment, data_size, tensor_count, kv_count, metadata, tensors)
