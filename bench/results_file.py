"""Where each benchmark writes its figures (with their same-run baselines and the machine load): one JSON file
per run under bench/results/ (or --out), named after the benchmark and the UTC time."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=RESULTS.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def interpreter() -> dict[str, Any]:
    """The Python build that ran the benchmark: builds differing in profile-guided and link-time optimization and in
    a shared libpython ran the same code at different speeds here (bench/README.md, eighth session), so every result
    names its interpreter.
    `configure`: which of those options its own configure line lists (Debian's python3 builds its optimized
    interpreter in its packaging rules, which this line does not show); `libpython_shared`: whether this process
    loaded libpython as a shared library (Linux: /proc/self/maps; None elsewhere)."""
    flags = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        shared = None
    else:
        shared = "libpython" in maps
    return {"executable": os.path.realpath(sys.executable), "version": platform.python_version(),
            "configure": [f for f in ("--enable-optimizations", "--with-lto", "--enable-shared") if f in flags],
            "libpython_shared": shared}


def write(name: str, figures: dict[str, Any], out: Path | None = None, load_before: list[float] | None = None) -> Path:
    """Write `figures` as bench/results/<UTC time>-<name>.json with the machine, revision and load; returns the path."""
    folder = Path(out) if out is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{stamp}-{name}.json"
    record = {"benchmark": name, "utc": stamp, "git": _revision(), "python": platform.python_version(),
              "interpreter": interpreter(), "cores": os.cpu_count(), "load_average_before": load_before,
              "load_average_after": load_average(), "figures": figures}
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"saved {path}")
    return path
