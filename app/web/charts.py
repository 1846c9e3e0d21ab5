"""Geometry for the server-rendered SVGs (stacked bar, memory-vs-context chart): numbers stay out of
templates, which only place what these functions compute."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import log2

from app.estimator.schema import Breakdown

SEGMENTS = (("weights", "Weights"), ("kv_cache", "KV cache"), ("activations", "Activations"),
            ("overhead", "Overhead"))


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    bytes: int
    x: float  # percent of the bar
    width: float


def stacked_bar(b: Breakdown) -> list[Segment]:
    values = asdict(b)
    total = sum(values.values()) or 1
    out, x = [], 0.0
    for key, label in SEGMENTS:
        width = 100 * values[key] / total
        out.append(Segment(key, label, values[key], round(x, 3), round(width, 3)))
        x += width
    return out


@dataclass(frozen=True)
class Line:
    label: str
    css: str
    points: str  # "x,y x,y ..." in chart coordinates


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    bottom: int
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    description: str


def memory_chart(series: dict[str, list[tuple[int, int]]], width: int = 560, height: int = 260) -> Chart:
    """Total GiB against context (log2 axis) for each series of (context, total bytes)."""
    left, right, top, bottom = 48, 12, 10, height - 28
    contexts = sorted({c for pts in series.values() for c, _ in pts})
    top_gib = max(t for pts in series.values() for _, t in pts) / 2**30
    # 1-2-5 steps without an upper end (eager attention reaches petabytes at long contexts)
    step = next(m * 10**k for k in range(30) for m in (1, 2, 5) if top_gib / (m * 10**k) <= 6)
    y_max = step * (int(top_gib // step) + 1)
    lo, hi = log2(contexts[0]), log2(contexts[-1])

    def x(c: int) -> float:
        return round(left + (log2(c) - lo) / (hi - lo or 1) * (width - left - right), 1)

    def y(gib: float) -> float:
        return round(bottom - gib / y_max * (bottom - top), 1)

    lines = [Line(label, f"s{i}", " ".join(f"{x(c)},{y(t / 2**30)}" for c, t in pts))
             for i, (label, pts) in enumerate(series.items())]
    x_ticks = [Tick(x(c), f"{c // 1024}K") for c in contexts]
    y_ticks = [Tick(y(v), f"{v}") for v in range(0, y_max + 1, step)]
    desc = "; ".join(f"{label}: {pts[0][1] / 2**30:.1f} GiB at {pts[0][0]:,} to {pts[-1][1] / 2**30:.1f} GiB "
                     f"at {pts[-1][0]:,} tokens" for label, pts in series.items())
    return Chart(width, height, left, bottom, lines, x_ticks, y_ticks, desc)


# --- the context slider: log-scaled stops, tick labels, the released limit marked ---

SLIDER_STOPS = tuple(1024 << i for i in range(8))  # 1K, 2K, ... 128K: the usual context sizes


@dataclass(frozen=True)
class SliderTick:
    value: int
    label: str
    pos: float  # percent along the track
    limit: bool  # the released model's maximum


@dataclass(frozen=True)
class Slider:
    stops: tuple[int, ...]
    index: int  # stop nearest to the current value (on a log scale)
    ticks: list[SliderTick]
    limit: int

    @property
    def last_index(self) -> int:
        return len(self.stops) - 1


def size_label(tokens: int) -> str:
    """1024 -> "1K", 1048576 -> "1M", 40960 -> "40K", 1000 -> "1,000"."""
    for unit, suffix in ((1 << 20, "M"), (1 << 10, "K")):
        if tokens >= unit and tokens % unit == 0:
            return f"{tokens // unit}{suffix}"
    return f"{tokens:,}"


def context_slider(released_max: int, value: int) -> Slider:
    """Stops at powers of two from 1K to 128K (further up to the released maximum when it is larger),
    plus the released maximum itself; the slider moves over stop indices, so every step is a size."""
    stops = set(SLIDER_STOPS) | {released_max}
    top = SLIDER_STOPS[-1]
    while top < released_max:
        top *= 2
        stops.add(min(top, released_max))
    ordered = tuple(sorted(stops))
    index = min(range(len(ordered)), key=lambda i: abs(log2(ordered[i]) - log2(max(value, 1))))
    span = len(ordered) - 1 or 1
    ticks = [SliderTick(v, size_label(v), round(100 * i / span, 3), v == released_max)
             for i, v in enumerate(ordered)]
    return Slider(ordered, index, ticks, released_max)
