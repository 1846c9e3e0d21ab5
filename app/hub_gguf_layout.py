"""Where a GGUF header ends, from its first bytes, and the header parsed by the `gguf` package.

The `gguf` package's GGUFReader is the parser (it is llama.cpp's own gguf-py). It needs a whole file
(it maps every tensor's data) and trusts the counts it reads, so before handing it bytes we walk the header
here, bounded by the bytes we hold: magic, version, counts, then every key/value and tensor info
(layout per the GGUF spec, ggml/docs/gguf.md). The walk says how many bytes the header needs, where the
tensor data starts (aligned to `general.alignment`, default 32) and how many data bytes the tensor infos
declare (ggml_nbytes via the package's GGML_QUANT_SIZES).
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass

from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType

from app.hub_errors import HubBadFile

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # the versions GGUFReader reads (READER_SUPPORTED_VERSIONS)
MAX_DIMS = 4  # GGML_MAX_DIMS
SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUFValueType sizes
STRING, ARRAY, UINT32 = 8, 9, 4
MAX_DATA = 1 << 44  # 16 TiB of declared tensor data: far above any released GGUF (DeepSeek-V3 BF16 ~1.3 TB)


class NeedMore(Exception):  # noqa: N818 - a signal, not an error
    """The header continues past the bytes held; at least `needed` bytes are required."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


@dataclass(frozen=True)
class Layout:
    header_end: int  # end of the last tensor info
    data_offset: int  # header_end aligned up: where tensor data starts
    data_size: int  # bytes of tensor data the tensor infos declare (last tensor's offset + nbytes)
    tensor_count: int
    kv_count: int


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

    def value(self, vtype: int, depth: int = 0) -> None:
        if vtype in SCALAR_BYTES:
            self.skip(SCALAR_BYTES[vtype])
        elif vtype == STRING:
            self.skip(self.num("Q"))
        elif vtype == ARRAY and depth < 3:
            sub, count = self.num("I"), self.num("Q")
            if sub in SCALAR_BYTES:
                self.skip(SCALAR_BYTES[sub] * count)
            else:
                for _ in range(count):  # each item takes >= 8 bytes, so NeedMore bounds this loop
                    self.value(sub, depth + 1)
        else:
            raise self.bad(f"unknown value type {vtype} at byte {self.pos - 4}")

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

    def tensor(self) -> int:
        """One tensor info; returns where its data ends, relative to the data section."""
        name = self.string()
        n_dims = self.num("I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise self.bad(f"tensor {name[:80]!r} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
        dims = [self.num("Q") for _ in range(n_dims)]
        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.num("I"))]
        except ValueError:
            raise self.bad(f"tensor {name[:80]!r} has an unknown ggml type") from None
        elements = 1
        for d in dims:
            elements *= d
        return self.num("Q") + elements // block * size


def layout(buf: bytes, what: str = "the file", field: str = "gguf") -> Layout:
    """Walk the header in `buf`. Raises NeedMore(n) if it continues past `buf`, HubBadFile if it is not GGUF."""
    walk = _Walk(buf, what, field)
    tensor_count, kv_count = walk.start()
    alignment = GGUF_DEFAULT_ALIGNMENT
    for _ in range(kv_count):
        key, vtype = walk.string(), walk.num("I")
        if key == b"general.alignment" and vtype == UINT32:
            alignment = walk.num("I")
            if alignment == 0 or alignment & (alignment - 1):
                raise walk.bad(f"general.alignment {alignment} is not a power of two")
        else:
            walk.value(vtype)
    data_size = max((walk.tensor() for _ in range(tensor_count)), default=0)
    if data_size > MAX_DATA:
        raise walk.bad(f"its tensor infos declare {data_size:,} bytes of data (over {MAX_DATA:,})")
    end = walk.pos
    return Layout(end, -(-end // alignment) * alignment, data_size, tensor_count, kv_count)


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
