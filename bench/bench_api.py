"""Requests per second and p50/p99 latency of /api/vram against a bare FastAPI JSON endpoint, both
served by the same uvicorn process, measured in alternating rounds of the same run: /api/vram asked the same
request over and over (answered from the kept answers after the first, app/web/answers.py), and asked a new
context on every request (nothing kept applies: parsed, estimated and serialized each time).

    python -m bench.bench_api [--seconds 4] [--rounds 3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from app.main import create_app
from bench import results_file

ROOT = Path(__file__).resolve().parent.parent
bench_app = create_app()


@bench_app.get("/bench/bare", include_in_schema=False)
def bare() -> dict:
    """The baseline: FastAPI's JSON path with no work behind it."""
    return {"ok": True}


ASKED = {"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192, "images": 1, "gpu": "rtx-4090"}
_CONTEXTS = itertools.count(1024)  # every varied request asks a context no request asked before
TARGETS: dict[str, tuple[str, Callable[[], dict]]] = {
    "bare": ("/bench/bare", dict),
    # the same request again and again: answered from the kept answers (app/web/answers.py) after the first
    "api_vram": ("/api/vram", lambda: ASKED),
    # a new context every request (a slider being dragged): parsed, estimated and serialized every time
    "api_vram_new": ("/api/vram", lambda: {**ASKED, "context": next(_CONTEXTS)}),
}


async def _load(base: str, path: str, params: Callable[[], dict], seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_keepalive_connections=concurrency)) as c:
        async def worker():
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                r = await c.get(path, params=params())
                latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(seconds: float, rounds: int, concurrency: int) -> dict:
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.bench_api:bench_app", "--port", str(port),
                               "--log-level", "warning", "--no-access-log"], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        results: dict[str, list[tuple[float, list[float]]]] = {k: [] for k in TARGETS}
        for _ in range(rounds):
            for name, (path, params) in TARGETS.items():
                lat = asyncio.run(_load(base, path, params, seconds, concurrency))
                results[name].append((len(lat) / seconds, lat))
    finally:
        server.terminate()
        server.wait()
    out = {}
    for name, runs in results.items():
        lat = sorted(x for _, xs in runs for x in xs)
        out[name] = {"rps": statistics.median(r for r, _ in runs), "p50_ms": lat[len(lat) // 2] * 1e3,
                     "p99_ms": lat[int(len(lat) * 0.99)] * 1e3}
    out["ratio"] = out["api_vram"]["rps"] / out["bare"]["rps"]
    out["ratio_new"] = out["api_vram_new"]["rps"] / out["bare"]["rps"]
    return out


def main(seconds: float = 4, rounds: int = 3, concurrency: int = 8, out: Path | None = None) -> dict:
    before = results_file.load_average()
    print(f"load average before: {before}")
    r = run(seconds, rounds, concurrency)
    for name in TARGETS:
        row = r[name]
        print(f"{name:<12} {row['rps']:8.0f} req/s  p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms")
    print(f"/api/vram throughput = {r['ratio']:.0%} of the bare endpoint, the same request repeated (target >= 90%: "
          f"{'met' if r['ratio'] >= 0.90 else 'MISSED'}); {r['ratio_new']:.0%} with a new context every request")
    print(f"load average after: {results_file.load_average()}")
    results_file.write("api", {"target_ratio": 0.9, "seconds": seconds, "rounds": rounds,
                               "concurrency": concurrency, **r}, out, before)
    return r


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", type=Path, default=None, help="folder for the results file (default bench/results)")
    a = p.parse_args()
    main(a.seconds, a.rounds, a.concurrency, a.out)
