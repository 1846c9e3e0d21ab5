"""The benchmarks run as smoke only (they complete and write their results file); the figures are not asserted
here: timings on shared CI machines mean nothing (bench/README.md has the measured ones)."""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

from bench import bench_api, bench_cli, bench_estimator, bench_gc, bench_load


def _written(folder, name: str) -> dict:
    (path,) = folder.glob(f"*-{name}.json")
    return json.loads(path.read_text())


def test_bench_estimator_completes_and_writes(tmp_path):
    bench_estimator.main(rounds=1, n=2, out=tmp_path)
    record = _written(tmp_path, "estimator")
    assert set(record["figures"]["groups"]) == set(bench_estimator.STATES)
    assert all(g["baseline_request_validation_us"] > 0 for g in record["figures"]["groups"].values())
    # the interpreter build that ran it (builds differing in PGO/LTO and a shared libpython run at different speeds)
    assert record["interpreter"]["executable"] == os.path.realpath(sys.executable)
    assert record["interpreter"]["libpython_shared"] in (True, False, None)


def test_bench_cli_completes_and_writes(tmp_path):
    bench_cli.main(runs=1, out=tmp_path)
    assert set(_written(tmp_path, "cli")["figures"]["commands"]) == {*bench_cli.COMMANDS, bench_cli.SOURCE_ONLY}


def test_bench_load_completes_and_writes(tmp_path):
    # in a thread of its own: the browser tests' Playwright keeps an event loop running in this one, and
    # bench_load drives its client with asyncio.run
    with ThreadPoolExecutor(1) as pool:
        pool.submit(bench_load.main, rate=20, seconds=1, connections=2, out=tmp_path).result()
    figures = _written(tmp_path, "load")["figures"]
    assert figures["answered"] == figures["sent"] == 20
    assert figures["errors"] == {}


def test_bench_load_new_contexts_are_never_kept_answers(tmp_path):
    with ThreadPoolExecutor(1) as pool:
        pool.submit(bench_load.main, rate=24, seconds=1, connections=2, out=tmp_path, new=True).result()
    figures = _written(tmp_path, "load-new")["figures"]
    assert figures["answered"] == figures["sent"] == 24 and figures["errors"] == {}
    assert all(figures["per_kind"][k]["kept"] == 0 for k in bench_load.NEW)  # each asked a new context


def test_bench_api_completes_and_writes(tmp_path):
    with ThreadPoolExecutor(1) as pool:  # asyncio.run in a thread of its own, as above
        pool.submit(bench_api.main, seconds=0.3, rounds=1, concurrency=2, out=tmp_path).result()
    figures = _written(tmp_path, "api")["figures"]
    assert set(bench_api.TARGETS) <= set(figures) and figures["ratio"] > 0 and figures["ratio_new"] > 0


def test_bench_gc_completes_and_writes(tmp_path):
    bench_gc.main(requests=2, rounds=1, out=tmp_path)
    figures = _written(tmp_path, "gc")["figures"]
    assert figures["requests"] == 2 * len(bench_load.MIX)
    assert figures["frozen_objects"] > 0  # app.main froze what was alive once the app was built


def test_bench_load_runs_the_server_without_httptools_on_asking(tmp_path):
    # --http h11: the same load on uvicorn's pure-Python parser and asyncio's loop, the baseline for httptools
    with ThreadPoolExecutor(1) as pool:
        pool.submit(bench_load.main, rate=12, seconds=1, connections=2, out=tmp_path, http="h11").result()
    figures = _written(tmp_path, "load-h11")["figures"]
    assert figures["uvicorn"] == ["--http", "h11", "--loop", "asyncio"]
    assert figures["answered"] == figures["sent"] == 12 and figures["errors"] == {}
