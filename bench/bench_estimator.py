"""Estimates per second of the pure estimator, beside a baseline measured in the same run
(validating the request model alone), because these machines are shared and noisy."""

from __future__ import annotations

import statistics
import time

from app.catalog import load_catalog
from app.estimator import VramRequest, estimate

STATES = [dict(model="glm-4v-9b", quantization=q, context=c, images=i, gpu="rtx-4090")
          for q in ("bf16", "q4_k_m", "awq-int4", "fp8") for c in (1024, 8192, 131072) for i in (0, 1)]


def _rate(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def run(rounds: int = 7, n: int = 2000) -> dict:
    catalog = load_catalog()
    spec = catalog.model("glm-4v-9b")
    reqs = [VramRequest(**s) for s in STATES]
    for r in reqs:  # warm the per-format weight caches, as a running server has them
        estimate(spec, r, catalog.gpus)
    it = iter(range(10**12))

    def one_estimate():
        estimate(spec, reqs[next(it) % len(reqs)], catalog.gpus)

    def baseline():
        VramRequest(**STATES[next(it) % len(STATES)])

    est, base = [], []
    for _ in range(rounds):  # interleaved, so both see the same machine load
        est.append(_rate(one_estimate, n))
        base.append(_rate(baseline, n))
    return {"estimate_us_median": statistics.median(est) * 1e6, "estimate_us_best": min(est) * 1e6,
            "estimates_per_s": 1 / statistics.median(est),
            "baseline_request_validation_us": statistics.median(base) * 1e6}


if __name__ == "__main__":
    r = run()
    print(f"estimate(): median {r['estimate_us_median']:.1f} us (best {r['estimate_us_best']:.1f} us), "
          f"{r['estimates_per_s']:,.0f} estimates/s; baseline VramRequest validation "
          f"{r['baseline_request_validation_us']:.1f} us; target < 50 us: "
          f"{'met' if r['estimate_us_median'] < 50 else 'MISSED'}")
