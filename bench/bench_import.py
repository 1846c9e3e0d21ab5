"""Importing a config.json and estimating from it, and GET /api/models for the whole catalog, each
beside a baseline measured in the same run (these machines are shared and noisy).

    python -m bench.bench_import

- import+estimate: spec_from_config(config) (cached per config hash) + estimate(); target < 2 ms.
  Baseline: json.dumps of the same config (the hashing step alone). The uncached import is shown too.
- /api/models: in-process through Starlette's TestClient; target < 20 ms. Baseline: /healthz.
"""

from __future__ import annotations

import json
import statistics
import time

from fastapi.testclient import TestClient

from app.catalog import SPECS_DIR, importer, load_catalog
from app.estimator import VramRequest, estimate
from app.main import create_app

SLUGS = ["qwen3-14b", "gpt-oss-20b", "deepseek-v3", "gemma-2-9b-it"]


def _per_call(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def run(rounds: int = 5, n: int = 300) -> dict:
    gpus = load_catalog().gpus
    configs = [json.loads((SPECS_DIR / "configs" / s / "config.json").read_text()) for s in SLUGS]
    requests = [VramRequest(config=c, context=8192, gpu="rtx-4090") for c in configs]
    it = iter(range(10**12))

    def import_and_estimate():
        i = next(it) % len(configs)
        estimate(importer.spec_from_config(configs[i]), requests[i], gpus)

    def uncached_import():
        importer._CACHE.clear()
        importer.spec_from_config(configs[next(it) % len(configs)])

    def baseline_hash():
        json.dumps(configs[next(it) % len(configs)], sort_keys=True)

    client = TestClient(create_app())

    def models():
        assert client.get("/api/models").status_code == 200

    def healthz():
        assert client.get("/healthz").status_code == 200

    import_and_estimate()
    models()  # warm caches as a running server has them
    out: dict[str, list[float]] = {k: [] for k in ("cached", "base", "uncached", "models", "healthz")}
    for _ in range(rounds):  # interleaved, so all see the same machine load
        out["cached"].append(_per_call(import_and_estimate, n))
        out["base"].append(_per_call(baseline_hash, n))
        out["uncached"].append(_per_call(uncached_import, max(1, n // 10)))
        out["models"].append(_per_call(models, max(1, n // 10)))
        out["healthz"].append(_per_call(healthz, max(1, n // 10)))
    importer._CACHE.clear()
    return {k: statistics.median(v) * 1e6 for k, v in out.items()} | {"catalog": len(load_catalog().models)}


if __name__ == "__main__":
    r = run()
    print(f"import+estimate (cached import): median {r['cached']:.0f} us; baseline json.dumps of the config "
          f"{r['base']:.0f} us; uncached import {r['uncached']:.0f} us; target < 2000 us: "
          f"{'met' if r['cached'] < 2000 else 'MISSED'}")
    print(f"GET /api/models ({r['catalog']} models, TestClient): median {r['models'] / 1000:.2f} ms; baseline "
          f"GET /healthz {r['healthz'] / 1000:.2f} ms; target < 20 ms: {'met' if r['models'] < 20000 else 'MISSED'}")
