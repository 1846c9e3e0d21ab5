"""Which runtime versions our models describe, and the warning for a log from another one."""

from __future__ import annotations

import re

from app.estimator.runtimes import RUNTIMES
from app.logs.model import ParsedLog


def _tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def version_warning(log: ParsedLog) -> tuple[str | None, str | None]:
    """(the range our runtime model describes, a warning when the log's version lies outside it)."""
    runtime = RUNTIMES.get(log.runtime or "")
    if runtime is None:
        return None, None
    low, high = runtime.versions_min, runtime.versions_max
    described = runtime.versions
    version = log.version or ""
    if version.startswith("ollama") or not version:
        return described, (None if version else f"the log does not print its {runtime.slug} version; "
                           f"our model describes {described}")
    key = version.lstrip("b")
    if low and high and not (_tuple(low) <= _tuple(key) <= _tuple(high)):
        return described, (f"this log is from {runtime.slug} {version}; our model describes {described}: "
                           f"compared anyway, differences may come from the version")
    return described, None
