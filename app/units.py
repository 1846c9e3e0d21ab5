"""Bytes for people: GiB (2^30) with two decimals, and memory sizes typed by people parsed to bytes.

No web imports: the pages (as a Jinja filter) and the `vram` command share these.
"""

from __future__ import annotations

import re

GIB = 2**30
# IEC binary units (KiB = 2^10 ...) and SI decimal units (KB = 10^3 ...), as GPU vendors mix them; a bare
# number is GiB, as the pages' memory box reads it ("24" on a 24 GB card), and "B" says bytes
UNITS = {"": 2**30, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
         "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def gib(n: int) -> str:
    """Bytes as GiB (2^30) with two decimals: the only place bytes become GiB."""
    return f"{n / GIB:,.2f}"


def parse_size(text: str) -> int:
    """A memory size such as "24GiB", "80 GB", "12.5GiB", "24" (GiB) or "25769803776B" (bytes) in bytes.

    Raises:
        ValueError: not a positive number with one of UNITS (case-insensitive).
    """
    m = _SIZE.fullmatch(text)
    unit = m and m.group(2).lower()
    if m is None or unit not in UNITS:
        raise ValueError(f"{text!r} is not a memory size; use a number with GiB, GB, MiB, MB, TiB, TB, B (bytes) or "
                         "none (GiB), e.g. 24GiB")
    size = int(float(m.group(1)) * UNITS[unit])
    if size <= 0:
        raise ValueError(f"{text!r} is not a positive memory size")
    return size
