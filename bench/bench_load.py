"""Open-loop load on one uvicorn worker: a fixed request rate of a mix (API estimates for three runtimes, the card
page, a 422, the weights endpoint), latency measured from each request's scheduled send time (so a slow server
cannot slow the load down and hide its own queueing), p50/p99 per request kind.

    python -m bench.bench_load [--rate 800] [--seconds 30] [--connections 32] [--new] [--http h11]

The mix's requests repeat, so after the first of each the server answers them from its kept answers
(app/web/answers.py; each response says so in X-Answer-Cache, counted here per kind); with --new every estimate
and card request asks a context no request asked before, so each is parsed, estimated and rendered.

127.0.0.1 only. The server is pinned to one core and this client to another where the machine has two or more,
so the client leaves the server its core; the client writes pre-built HTTP/1.1 requests on keep-alive sockets
(no HTTP library in the hot loop). Bounded: rate x seconds requests at most, and a hard stop at seconds + 10 s.
Target: 800 req/s for 30 s with p99 < 100 ms. `--http h11` serves with uvicorn's pure-Python HTTP parser and asyncio's
own loop instead of what `--http auto` picks (httptools and uvloop, both in the lock): the same run before them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import results_file

ROOT = Path(__file__).resolve().parent.parent
MIX = [  # (kind, path) cycled in order, so each kind gets its share of the rate
    ("api transformers", "/api/vram?model=glm-4v-9b&quantization=bf16&runtime=transformers&context=8192&images=1"
                         "&gpu=rtx-4090"),
    ("api llama.cpp", "/api/vram?model=qwen3-30b-a3b&quantization=q4_k_m&runtime=llama.cpp&context=16384"
                      "&n_gpu_layers=30"),
    ("api vllm", "/api/vram?model=llama-3.1-8b&quantization=bf16&runtime=vllm&context=32768&gpu_count=2"),
    ("card page", "/models/glm-4v-9b"),
    ("422", "/api/vram?model=glm-4v-9b&context=-1"),
    ("weights", "/api/weights?model=glm-4v-9b&quantization=q4_k_m"),
]
EXPECTED = {"422": 422}
NEW = ("api transformers", "api llama.cpp", "api vllm", "card page")  # the kinds --new varies
TARGET_P99_MS = 100


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".encode()


def _with_context(path: str, context: int) -> str:
    """`path` asking `context` tokens (replacing the one it asks, if any)."""
    base, _, query = path.partition("?")
    fields = [f for f in query.split("&") if f and not f.startswith("context=")]
    return f"{base}?{'&'.join([*fields, f'context={context}'])}"


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server answered from its kept answers: X-Answer-Cache: hit)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, hit = 0, False
    for line in lines[1:]:
        low = line.lower()
        if low[:15] == b"content-length:":
            length = int(line[15:])
        elif low.startswith(b"x-answer-cache:"):
            hit = low.endswith(b"hit")
    await reader.readexactly(length)
    return status, hit


async def _drive(port: int, rate: float, seconds: float, connections: int, new: bool = False,
                 first_context: int = 1024) -> dict:
    """`new`: each request of the NEW kinds asks a context no request asked before (first_context, +1, ...), so
    none is answered from the kept answers; else the MIX's own requests, repeated."""
    total = int(rate * seconds)
    queue: asyncio.Queue = asyncio.Queue()
    lat: dict[str, list[float]] = {k: [] for k, _ in MIX}
    hits: dict[str, int] = {k: 0 for k, _ in MIX}
    errors: dict[str, int] = {}
    built = [(k, _request(p)) for k, p in MIX]
    every = []  # built before the clock starts, so the client does no formatting in the timed loop
    for i in range(total):
        kind, path = MIX[i % len(MIX)]
        every.append((kind, _request(_with_context(path, first_context + i))) if new and kind in NEW
                     else built[i % len(built)])

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                due, kind, raw = item
                try:
                    writer.write(raw)
                    status, hit = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):  # the server closed it: count, reconnect
                    errors[f"{kind} closed"] = errors.get(f"{kind} closed", 0) + 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                lat[kind].append(time.perf_counter() - due)
                hits[kind] += hit
                if status != EXPECTED.get(kind, 200):
                    errors[f"{kind} {status}"] = errors.get(f"{kind} {status}", 0) + 1
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter()
    for i in range(total):  # open loop: request i is due at start + i / rate, whatever the answers do
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        kind, raw = every[i]
        queue.put_nowait((due, kind, raw))
    for _ in workers:
        queue.put_nowait(None)
    done, pending = await asyncio.wait(workers, timeout=seconds + 10)  # the hard stop
    for w in pending:
        w.cancel()
    for w in done:
        w.result()
    elapsed = time.perf_counter() - start
    every = sorted(x for v in lat.values() for x in v)

    def pct(xs: list[float], q: float) -> float:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3, 2) if xs else float("nan")

    if len(every) + sum(errors.values()) < total:
        errors["unanswered at the hard stop"] = total - len(every) - sum(errors.values())
    return {"offered_rate": rate, "seconds": seconds, "sent": total, "answered": len(every),
            "achieved_rate": round(len(every) / elapsed, 1), "errors": errors,
            "p50_ms": pct(every, 0.50), "p99_ms": pct(every, 0.99), "max_ms": pct(every, 1.0),
            "new_contexts": new, "kept_answers": sum(hits.values()),
            "per_kind": {k: {"n": len(v), "p50_ms": pct(sorted(v), 0.5), "p99_ms": pct(sorted(v), 0.99),
                             "mean_ms": round(statistics.fmean(v) * 1e3, 2) if v else None, "kept": hits[k]}
                         for k, v in lat.items()}}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cores() -> tuple[set[int] | None, set[int] | None]:
    """(server core, client cores) where there are two or more cores, else no pinning."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    return {cores[0]}, set(cores[1:])


def _cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time (/proc/PID/stat fields 14 and 15, in clock ticks; proc(5))."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# uvicorn's options per --http choice: "auto" picks httptools and uvloop where installed (uvicorn/config.py)
SERVERS = {"auto": ["--http", "auto", "--loop", "auto"], "h11": ["--http", "h11", "--loop", "asyncio"]}


def run(rate: float, seconds: float, connections: int, new: bool = False, http: str = "auto") -> dict:
    port = _port()
    server_core, client_cores = _cores()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--log-level", "warning", "--no-access-log", *SERVERS[http]], cwd=ROOT,
        env={**os.environ, "VRAM_OFFLINE": "1"},
        preexec_fn=(lambda: os.sched_setaffinity(0, server_core)) if server_core else None)
    mine = os.sched_getaffinity(0)
    try:
        if client_cores:
            os.sched_setaffinity(0, client_cores)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        # warm every route once (first requests build caches and templates), then the measured run
        asyncio.run(_drive(port, min(rate, 50), 1, 2))
        cpu = _cpu_seconds(server.pid)
        r = asyncio.run(_drive(port, rate, seconds, connections, new))
        # the server's own CPU time per answered request: its headroom on its core, whatever the latencies
        r["server_cpu_ms_per_request"] = round((_cpu_seconds(server.pid) - cpu) * 1e3 / max(1, r["answered"]), 3)
        return r
    finally:
        os.sched_setaffinity(0, mine)
        server.terminate()
        server.wait(timeout=10)


def main(rate: float = 800, seconds: float = 30, connections: int = 32, out: Path | None = None,
         new: bool = False, http: str = "auto") -> dict:
    before = results_file.load_average()
    print(f"load average before: {before}")
    r = run(rate, seconds, connections, new, http)
    for kind, x in r["per_kind"].items():
        print(f"  {kind}: n {x['n']}, p50 {x['p50_ms']} ms, p99 {x['p99_ms']} ms, kept answers {x['kept']}")
    met = rate >= 800 and r["p99_ms"] < TARGET_P99_MS and not r["errors"]
    mix = "a new context in every estimate and card request" if new else "the mix's requests repeated"
    if http != "auto":
        mix += f" (uvicorn --http {http})"
    print(f"{mix}: offered {rate:.0f} req/s for {seconds:.0f} s: achieved {r['achieved_rate']:,.0f} req/s, "
          f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms, errors {r['errors'] or 'none'}, "
          f"server CPU {r['server_cpu_ms_per_request']} ms per request; "
          f"target p99 < {TARGET_P99_MS} ms at 800 req/s: {'met' if met else 'MISSED'}")
    print(f"load average after: {results_file.load_average()}")
    name = ("load-new" if new else "load") + ("" if http == "auto" else f"-{http}")
    results_file.write(name, {"target_p99_ms": TARGET_P99_MS, "connections": connections, "uvicorn": SERVERS[http],
                              **r}, out, before)
    return r


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=800, help="requests per second offered")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--out", type=Path, default=None, help="folder for the results file (default bench/results)")
    p.add_argument("--new", action="store_true", help="a context never asked before in every estimate and card "
                   "request: nothing is answered from the kept answers")
    p.add_argument("--http", choices=sorted(SERVERS), default="auto",
                   help="uvicorn's HTTP parser and loop: auto (httptools and uvloop) or h11 (h11 and asyncio)")
    a = p.parse_args()
    main(a.rate, a.seconds, a.connections, a.out, a.new, a.http)
