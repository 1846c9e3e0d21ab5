"""The estimator (runtime transformers) against every committed GPU measurement; and the calibration
arithmetic on synthetic points (clearly not measurements: they only test the least-squares code)."""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator.measurements import MeasuredCase, compare, summary
from app.measure.calibrate import Point, fit
from app.web.accuracy import MEASUREMENTS_DIR, load_measurements

RUNS = load_measurements()


@pytest.mark.skipif(not RUNS, reason=f"no GPU measurement committed under {MEASUREMENTS_DIR} yet")
def test_estimates_match_measured_gpu_memory(catalog: Catalog):
    failures = []
    print(f"\n{'case':<56}{'measured':>14}{'estimated':>14}{'error':>8}")
    for path, run in RUNS:
        print(f"-- {path.name}: {run.device.name}, torch {run.device.torch}, transformers {run.device.transformers}")
        for case in run.cases:
            c = compare(catalog.model(case.model), case)
            print(f"{c.label:<56}{case.device_used_bytes:>14,}{c.estimated_total:>14,}{c.total_error:>+8.1%}")
            if abs(c.weights_error) > 0.005:
                failures.append(f"{c.label}: weights {c.weights_error:+.2%}")
            if abs(c.total_error) > 0.05:
                failures.append(f"{c.label}: total {c.total_error:+.1%}")
    assert not failures, "\n".join(failures)


def _case(batch: int, device: int) -> MeasuredCase:
    return MeasuredCase(model="llama-3.1-8b", quantization="bf16", context=1024, images=0, batch=batch,
                        new_tokens=8, weights_bytes=0, peak_allocated_bytes=0, peak_reserved_bytes=0,
                        device_used_bytes=device)


def test_calibration_fits_on_part_and_reports_the_rest():
    truth_a, truth_c = 1.25, 600 * 2**20
    pts = []
    for batch, act in ((1, 1 * 2**30), (1, 2 * 2**30), (1, 4 * 2**30), (4, 8 * 2**30)):
        fixed = 16 * 2**30
        pts.append(Point(_case(batch, int(fixed + truth_a * act + truth_c)), fixed, act))
    result = fit(pts, lambda c: c.batch == 1)
    assert result.activation_scale == pytest.approx(truth_a) and result.overhead_bytes == pytest.approx(truth_c, abs=1)
    assert result.fitted[1] < 1e-9 and result.held_out[1] < 1e-9


def test_summary_is_median_and_max_of_absolute_errors():
    assert summary([0.01, -0.03, 0.02]) == (0.02, 0.03)
    assert summary([]) == (0.0, 0.0)
