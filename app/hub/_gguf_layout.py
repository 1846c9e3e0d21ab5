"""Where a GGUF header ends, from its first bytes, and the header parsed by the `gguf` package.

The `gguf` package's GGUFReader is the parser (it is llama.cpp's own gguf-py). It needs a whole file
(it maps every tensor's data) and trusts the counts it reads, so before handing it bytes we walk the header
here, bounded by the bytes we hold: magic, version, counts, then every key/value and tensor info
(layout per the GGUF spec, ggml/docs/gguf.md; the walk is app/estimator/gguf/layout.py, shared with
uploads). The walk says how many bytes the header needs, where the tensor data starts (aligned to
`general.alignment`, default 32) and how many data bytes the tensor infos declare (ggml_nbytes via the
package's GGML_QUANT_SIZES). It also keeps what it read: every key's value (arrays summarized by item type
and length) and every tensor info, which is what an estimate needs, without GGUFReader's per-item cost on
a 100k+ token vocabulary (tests check both agree).
"""

from __future__ import annotations

import os
import tempfile

from gguf import GGUFReader

from app.estimator.gguf.layout import (  # the walk itself: pure, shared with the upload path
    MAX_DATA,
    BadGguf,
    GgufArray,
    Layout,
    NeedMore,
    TensorInfo,
)
from app.estimator.gguf.layout import layout as _layout
from app.hub._errors import HubBadFile

__all__ = ["MAX_DATA", "GgufArray", "Layout", "NeedMore", "TensorInfo", "layout", "parse_header"]


def layout(buf: bytes, what: str = "the file", field: str = "gguf") -> Layout:
    """Walk the header in `buf`. Raises NeedMore(n) if it continues past `buf`, HubBadFile if it is not GGUF."""
    try:
        return _layout(buf, what, field)
    except BadGguf as exc:
        raise HubBadFile(exc.field, exc.message) from None


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
