"""The shared shape of both parsers: a table of (pattern, handler) rules run over each line."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from app.logs.model import ParsedLog, Scalar, Setting, figure
from app.logs.scrub import scrub, strip_prefix

# Prefixes some tools put before llama.cpp's own text: llama-server router "[34353] ", the timestamped
# log format "0.00.196.882 I " (common/log.cpp), a vLLM process tag is handled by the vLLM parser.
_PREFIX = re.compile(r"^(?:\[\d+\] )?(?:\d+\.\d\d\.\d\d\d\.\d\d\d [IWEDT] )?")
# Longest line read: every line a runtime prints is far shorter (vLLM's "non-default args", the longest in
# tests/fixtures/logs, is 3.5k characters); a longer one is cut here, so each rule's work per line is bounded.
MAX_LINE = 8192


@dataclass
class Line:
    no: int
    text: str  # prefix-free, not yet scrubbed (numbers only are read from it)
    device: str | None = None  # a rank tag (vLLM workers)


Handler = Callable[[re.Match[str], Line, ParsedLog], None]


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    handle: Handler


def rule(pattern: str) -> Callable[[Handler], Rule]:
    def wrap(fn: Handler) -> Rule:
        return Rule(re.compile(pattern), fn)
    return wrap


def lines(text: str) -> Iterable[Line]:
    for no, raw in enumerate(text.splitlines(), start=1):
        yield Line(no, _PREFIX.sub("", strip_prefix(raw[:MAX_LINE]), count=1))


def run(rules: Iterable[Rule], src: Iterable[Line], out: ParsedLog) -> int:
    """Apply every matching rule to every line; returns how many lines matched at least one rule."""
    rules = list(rules)
    hits = 0
    for ln in src:
        matched = False
        for r in rules:
            m = r.pattern.search(ln.text)
            if m:
                try:
                    r.handle(m, ln, out)
                except (ValueError, ArithmeticError):  # "1.2.3", 5,000 digits: the line's number is unreadable
                    out.notes.append(f"line {ln.no}: a number is not readable")
                matched = True
        hits += matched
        out.lines = max(out.lines, ln.no)
    return hits


def put(out: ParsedLog, key: str, value: Scalar, line: int) -> None:
    """Record a setting; the first statement wins (servers re-print their context for each slot)."""
    if key not in out.settings:
        out.settings[key] = Setting(key=key, value=clean(value), line=line)


def clean(value: Scalar) -> Scalar:
    return scrub(value).strip() if isinstance(value, str) else value


def num(text: str) -> int | float:
    t = text.replace(",", "")
    return int(t) if _INT.fullmatch(t) else float(t)


_INT = re.compile(r"-?\d{1,30}")  # a count or a size; longer digit runs are not numbers a runtime prints


def add(out: ParsedLog, key: str, printed: str, unit: str, line: Line, device: str | None = None) -> None:
    out.figures.append(figure(key, printed, unit, line.no, device or line.device))
