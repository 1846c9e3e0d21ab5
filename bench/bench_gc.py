"""How long one full pass of Python's cyclic garbage collector stalls a served process, with the objects alive at
startup frozen (app/main.py calls gc.freeze() once the app is built) and, as the same-run baseline, unfrozen.

A child process imports `app.main` (as uvicorn's worker does), serves `--requests` rounds of bench_load's mix with a
new context each round over ASGI (answers kept, estimator caches filled: a served process's state), then times
gc.collect() (generation 2: every tracked object not frozen) `--rounds` times frozen, then after gc.unfreeze().
While a pass runs the one worker answers nothing: at 800 requests/s a 45 ms pass queues 36 of them, which is what
bench_load's p99 sees.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench import results_file
from bench.bench_load import MIX, NEW, _with_context

ROOT = Path(__file__).resolve().parent.parent


def _child(requests: int, rounds: int) -> dict:
    import asyncio
    import gc
    import time

    import httpx

    import app.main  # builds the app and freezes what is alive

    async def serve() -> None:  # plain ASGI (Starlette's TestClient asks for the debug extension: answers would
        # keep their template contexts, which a server does not)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.main.app),
                                     base_url="http://127.0.0.1") as client:
            for i in range(requests):
                for kind, path in MIX:
                    await client.get(_with_context(path, 1024 + i) if kind in NEW else path)

    asyncio.run(serve())

    def passes() -> list[float]:
        out = []
        for _ in range(rounds):
            t = time.perf_counter()
            gc.collect()
            out.append((time.perf_counter() - t) * 1000)
        return out

    frozen_count, frozen = gc.get_freeze_count(), passes()
    gc.unfreeze()
    tracked, unfrozen = len(gc.get_objects()), passes()
    return {"requests": requests * len(MIX), "frozen_objects": frozen_count, "tracked_objects_unfrozen": tracked,
            "full_pass_ms_frozen": frozen, "full_pass_ms_unfrozen": unfrozen,
            "full_pass_ms_frozen_median": statistics.median(frozen),
            "full_pass_ms_unfrozen_median": statistics.median(unfrozen)}


def main(requests: int = 200, rounds: int = 7, out: Path | None = None) -> dict:
    before = results_file.load_average()
    print(f"load average before: {before}")
    run = subprocess.run([sys.executable, "-m", "bench.bench_gc", "--child", "--requests", str(requests),
                          "--rounds", str(rounds)], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "VRAM_OFFLINE": "1"})
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    frozen, unfrozen = figures["full_pass_ms_frozen_median"], figures["full_pass_ms_unfrozen_median"]
    print(f"full collector pass after {figures['requests']:,} requests: {frozen:.2f} ms median with the "
          f"{figures['frozen_objects']:,} startup objects frozen; baseline unfrozen "
          f"({figures['tracked_objects_unfrozen']:,} tracked objects): {unfrozen:.2f} ms")
    print(f"load average after: {results_file.load_average()}")
    results_file.write("gc", figures, out, before)
    return figures


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=200, help="rounds of bench_load's mix served first")
    p.add_argument("--rounds", type=int, default=7, help="full passes timed, frozen and unfrozen")
    p.add_argument("--out", type=Path, default=None, help="folder for the results file (default bench/results)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(_child(a.requests, a.rounds)))
    else:
        main(a.requests, a.rounds, a.out)
