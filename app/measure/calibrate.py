"""Honest calibration: fit the transformers runtime's free constants on some measured cases, report
the error on the others separately. Prints suggested constants; a person moves them into
app/estimator/runtimes/transformers.py, so every constant stays traceable to a measurement file.

    python -m app.measure.calibrate model_specs/measurements/*.json

Model fitted: measured device bytes = weights + kv_cache + a x activations + gpu_count x c,
with the estimator's own weights, KV and activations (runtime transformers).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.catalog import load_catalog
from app.estimator import VramRequest, estimate
from app.estimator.measurements import MeasuredCase, MeasurementFile, summary


@dataclass(frozen=True)
class Point:
    case: MeasuredCase
    fixed: int  # weights + KV (exact, not fitted)
    activations: int


@dataclass(frozen=True)
class Fit:
    activation_scale: float
    overhead_bytes: int
    fitted: tuple[float, float]  # (median, max) |relative error| on the fitted cases
    held_out: tuple[float, float]

    def predict(self, p: Point) -> float:
        return p.fixed + self.activation_scale * p.activations + self.overhead_bytes


def points(cases: Sequence[MeasuredCase]) -> list[Point]:
    catalog = load_catalog()
    out = []
    for c in cases:
        e = estimate(catalog.model(c.model), VramRequest(model=c.model, quantization=c.quantization,
                                                         context=c.context + c.new_tokens, images=c.images,
                                                         batch=c.batch, runtime="transformers"))
        out.append(Point(c, e.breakdown.weights + e.breakdown.kv_cache, e.breakdown.activations))
    return out


def _errors(fit_scale: float, offset: float, pts: Sequence[Point]) -> list[float]:
    return [(p.fixed + fit_scale * p.activations + offset - p.case.device_used_bytes) / p.case.device_used_bytes
            for p in pts]


def fit(pts: Sequence[Point], train: Callable[[MeasuredCase], bool]) -> Fit:
    """Least squares for (a, c) on the cases `train` selects; errors reported on both sets."""
    tr = [p for p in pts if train(p.case)]
    held = [p for p in pts if not train(p.case)]
    if len(tr) < 2:
        raise ValueError("need at least two fitted cases")
    xs = [p.activations for p in tr]
    ys = [p.case.device_used_bytes - p.fixed for p in tr]
    mx, my = sum(xs) / len(tr), sum(ys) / len(tr)
    sxx = sum((x - mx) ** 2 for x in xs)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 1.0
    c = my - a * mx
    return Fit(a, int(c), summary(_errors(a, c, tr)), summary(_errors(a, c, held)) if held else (0.0, 0.0))


def main(paths: list[str]) -> None:
    cases = [c for p in paths for c in MeasurementFile.model_validate_json(Path(p).read_bytes()).cases]
    result = fit(points(cases), lambda c: c.batch == 1)
    print(f"activation scale {result.activation_scale:.3f}, overhead {result.overhead_bytes / 2**20:.0f} MiB")
    print(f"fitted (batch 1): median {result.fitted[0]:.1%}, max {result.fitted[1]:.1%}")
    print(f"held out (batch > 1): median {result.held_out[0]:.1%}, max {result.held_out[1]:.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])
