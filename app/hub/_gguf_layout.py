"""Where a GGUF header ends, from its first bytes, and the header parsed by the `gguf` package.

The `gguf` package's GGUFReader is the parser (it is llama.cpp's own gguf-py). It needs a whole file
(it maps every tensor's data) and trusts the counts it reads, so before handing it bytes we walk the header
here, bounded by the bytes we hold: magic, version, counts, then every key/value and tensor info
(layout per the GGUF spec, ggml/docs/gguf.md). The walk says how many bytes the header needs, where the
tensor data starts (aligned to `general.alignment`, default 32) and how many data bytes the tensor infos
declare (ggml_nbytes via the package's GGML_QUANT_SIZES). It also keeps what it read: every key's value
(arrays summarized by item type and length) and every tensor info, which is what an estimate needs,
without GGUFReader's per-item cost on a 100k+ token vocabulary (tests check both agree).
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from typing import Any

from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType

from app.hub._errors import HubBadFile

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # the versions GGUFReader reads (READER_SUPPORTED_VERSIONS)
MAX_DIMS = 4  # GGML_MAX_DIMS
SCALAR_FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
SCALAR_BYTES = {t: struct.calcsize(f) for t, f in SCALAR_FMT.items()}  # GGUFValueType -> bytes
STRING, ARRAY = 8, 9
MAX_DATA = 1 << 44  # 16 TiB of declared tensor data: far above any released GGUF (DeepSeek-V3 BF16 ~1.3 TB)


class NeedMore(Exception):  # noqa: N818 - a signal, not an error
    """The header continues past the bytes held; at least `needed` bytes are required."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


@dataclass(frozen=True)
class GgufArray:
    """An array value, summarized: its item type (GGUFValueType) and length (read it through GGUFReader)."""

    item_type: int
    count: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # ne0 first, as GGUF stores them (GGUFReader's `shape`)
    type: GGMLQuantizationType
    offset: int  # in the data section
    n_bytes: int  # ggml_nbytes: elements / block elements * block bytes


@dataclass(frozen=True)
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

    def bad(self, why: str) -> HubBadFile:
        return HubBadFile(self.field, f"{self.what} is not a readable GGUF header: {why}")

    def skip(self, n: int) -> int:
        start, self.pos = self.pos, self.pos + n
        if self.pos > len(self.buf):
            raise NeedMore(self.pos)
        return start

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
        if vtype == ARRAY and depth < 3:
            sub, count = self.num("I"), self.num("Q")
            if sub in SCALAR_BYTES:
                self.skip(SCALAR_BYTES[sub] * count)
            else:
                for _ in range(count):  # each item takes >= 8 bytes, so NeedMore bounds this loop
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
        block, size = GGML_QUANT_SIZES[ggml_type]
        elements = 1
        for d in dims:
            elements *= d
        return TensorInfo(name, dims, ggml_type, self.num("Q"), elements // block * size)


def layout(buf: bytes, what: str = "the file", field: str = "gguf") -> Layout:
    """Walk the header in `buf`. Raises NeedMore(n) if it continues past `buf`, HubBadFile if it is not GGUF."""
    walk = _Walk(buf, what, field)
    tensor_count, kv_count = walk.start()
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = walk.string().decode("utf-8", "replace")
        metadata[key] = walk.value(walk.num("I"))
    alignment = metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise walk.bad(f"general.alignment {alignment!r} is not a power of two")
    tensors = tuple(walk.tensor() for _ in range(tensor_count))
    data_size = max((t.offset + t.n_bytes for t in tensors), default=0)
    if data_size > MAX_DATA:
        raise walk.bad(f"its tensor infos declare {data_size:,} bytes of data (over {MAX_DATA:,})")
    end = walk.pos
    return Layout(end, -(-end // alignment) * alignment, data_size, tensor_count, kv_count, metadata, tensors)


def parse_header(header: bytes, what: str = "the file", field: str = "gguf") -> GGUFReader:
    """The `gguf` package's reader over a header (tensor data never read; a sparse hole stands for it).

    `header`: the file's first bytes, at least through the last tensor info (an upload's `File.slice`,
    or GgufHeader.header). Raises HubBadFile (422) for a non-GGUF or truncated header.
    """
    try:
        shape = layout(header, what, field)
    except NeedMore as need:
        raise HubBadFile(field, f"{what} is a truncated GGUF header: it needs at least {need.needed:,} bytes, "
                                f"{len(header):,} were given") from None
    with tempfile.NamedTemporaryFile(prefix="vram-gguf-", suffix=".gguf") as tmp:
        tmp.write(header[:shape.data_offset])
        tmp.flush()
        os.truncate(tmp.name, shape.data_offset + shape.data_size)  # sparse: nothing written
        try:
            return GGUFReader(tmp.name)  # np.memmap keeps the mapping after the file is removed
        except (ValueError, KeyError, IndexError, TypeError, OverflowError) as exc:
            raise HubBadFile(field, f"{what}: the gguf package could not read its header: {exc}") from None
