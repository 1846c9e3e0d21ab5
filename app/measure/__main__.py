"""python -m app.measure: measure GPU memory of catalog models with random weights (no download).

    python -m app.measure --plan                    # the prepared plan, one process per model build
    python -m app.measure --model llama-3.1-8b --dtype bf16 --context 1024 8192 --batch 1 4
    python -m app.measure --model glm-4v-9b --images 0 1 --device cpu --out /tmp/m.json   # CPU accounting
    python -m app.measure trace llama-3.1-8b --context 8192 --batch 1 4   # fake-tensor trace (no GPU)

Writes model_specs/measurements/<device>-<UTC time>.json and the raw log beside it.
"""

from __future__ import annotations

import sys

# --- llama.cpp grid: torch-free, dispatched before the torch harness is imported ---
if __name__ == "__main__" and sys.argv[1:2] == ["llamacpp-grid"]:
    from app.measure.llamacpp_grid import main as _llamacpp_main

    raise SystemExit(_llamacpp_main(sys.argv[2:]))
# --- vLLM planning table: torch-free here, the vLLM virtualenv runs the worker ---
if __name__ == "__main__" and sys.argv[1:2] == ["vllm-plan"]:
    from app.measure.vllm_plan import main as _vllm_plan_main

    raise SystemExit(_vllm_plan_main(sys.argv[2:]))
if __name__ == "__main__" and sys.argv[1:2] == ["vllm-weights"]:
    from app.measure.vllm_weights import main as _vllm_weights_main

    raise SystemExit(_vllm_weights_main(sys.argv[2:]))
if __name__ == "__main__" and sys.argv[1:2] == ["vllm-mtp"]:
    from app.measure.vllm_mtp import main as _vllm_mtp_main

    raise SystemExit(_vllm_mtp_main(sys.argv[2:]))

if __name__ == "__main__" and sys.argv[1:2] == ["bnb-weights"]:  # run with a python that has bitsandbytes
    from app.measure.bnb_weights import main as _bnb_weights_main

    raise SystemExit(_bnb_weights_main(sys.argv[2:]))
if __name__ == "__main__" and sys.argv[1:2] == ["vllm-quant-weights"]:
    from app.measure.vllm_quant_weights import main as _vllm_quant_weights_main

    raise SystemExit(_vllm_quant_weights_main(sys.argv[2:]))

import argparse
import datetime as dt
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.catalog import SPECS_DIR, load_catalog
from app.estimator.measurements import FORMAT, MeasurementFile, compare, summary
from app.measure.probes import CpuProbe, CudaProbe
from app.measure.runner import Case, run_model, versions, write_json

# Issue "Run the cross-check on the CUDA machine": (model, dtype) -> contexts x images x batches
PLAN = [
    ("glm-4v-9b", "bf16", (1024, 2048, 4096, 8192), (0, 1), (1, 4)),
    ("glm-4-9b-chat", "bf16", (1024, 8192, 32768, 131072), (0,), (1,)),
    ("llama-3.1-8b", "bf16", (1024, 8192, 32768), (0,), (1, 4)),
    ("llama-3.1-8b", "fp16", (1024, 8192, 32768), (0,), (1, 4)),
]


def cases(model: str, dtype: str, contexts, images, batches) -> list[Case]:
    return [Case(model, dtype, c, i, b) for c, i, b in itertools.product(contexts, images, batches)]


def measure_one(args: argparse.Namespace) -> dict:
    spec = load_catalog(args.specs).model(args.model)
    todo = cases(args.model, args.dtype, args.context, args.images, args.batch)
    if args.device == "cpu":
        probe_for = CpuProbe
    else:
        probe = CudaProbe()  # created before the model so the pre-CUDA baseline is clean
        probe_for = lambda: probe  # noqa: E731
    measured = run_model(spec, todo, probe_for, args.device, log=lambda m: print(m, flush=True))
    device = versions(probe_for().device())
    return {"device": device, "cases": [m.model_dump() for m in measured]}


def run_plan(out_dir: Path) -> Path:
    """Each (model, dtype) in its own process, so one model's allocator state never touches the next."""
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    lines: list[str] = []
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (model, dtype, contexts, images, batches) in enumerate(PLAN):
            part = Path(tmp) / f"part{n}.json"
            cmd = [sys.executable, "-m", "app.measure", "--model", model, "--dtype", dtype, "--out", str(part),
                   "--context", *map(str, contexts), "--images", *map(str, images), "--batch", *map(str, batches)]
            lines.append("$ " + " ".join(cmd[1:]))
            print(lines[-1], flush=True)
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
            lines.append(f"(exit {proc.wait()})")
            if part.exists():
                parts.append(json.loads(part.read_text()))
    if not parts:
        raise SystemExit("no model produced measurements; see the log above")
    device = parts[0]["device"]
    stem = f"{re.sub(r'[^a-z0-9]+', '-', device['name'].lower()).strip('-')}-{started:%Y%m%dT%H%M%SZ}"
    log_path = out_dir / f"{stem}.log"
    run = MeasurementFile(format=FORMAT, device=device, started_at=started.isoformat(timespec="seconds"),
                          duration_s=round(time.perf_counter() - t0, 1), log=log_path.name,
                          cases=[c for p in parts for c in p["cases"]])
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path.write_text("\n".join(lines) + "\n")
    path = out_dir / f"{stem}.json"
    write_json(path, run.model_dump())
    print_table(run)
    return path


def print_table(run: MeasurementFile) -> None:
    catalog = load_catalog()
    print(f"\n{run.device.name}: {len(run.cases)} cases in {run.duration_s:.0f} s")
    print(f"{'case':<52}{'measured GiB':>13}{'estimate GiB':>13}{'error':>8}")
    rows = [compare(catalog.model(c.model), c) for c in run.cases]
    for r in rows:
        print(f"{r.label:<52}{r.case.device_used_bytes / 2**30:>13.2f}{r.estimated_total / 2**30:>13.2f}"
              f"{r.total_error:>+8.1%}")
    median, worst = summary([r.total_error for r in rows])
    print(f"median |error| {median:.1%}, max {worst:.1%}")


def main(argv: list[str] | None = None) -> None:
    # --- trace subcommand: python -m app.measure trace MODEL ... ---
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["trace"]:
        from app.measure.trace_cli import main as trace_main

        trace_main(argv[1:])
        return
    if argv[:1] == ["cache-trace"]:  # per-layer cache model: KV and recurrent state per layer
        from app.measure.cache_trace import main as cache_trace_main

        raise SystemExit(cache_trace_main(argv[1:]))
    if argv[:1] in (["trace-remote"], ["trace-attention"]):
        from app.measure.trace_variants import main as variants_main

        variants_main(argv[1:], argv[0])
        return
    # --- end trace subcommand ---
    p = argparse.ArgumentParser(prog="python -m app.measure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plan", action="store_true", help="run the prepared plan (one process per model build)")
    p.add_argument("--model", help="catalog slug")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--context", type=int, nargs="+", default=[1024])
    p.add_argument("--images", type=int, nargs="+", default=[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--device", default="cuda", help="cuda (NVML + torch.cuda) or cpu (CPU-side accounting)")
    p.add_argument("--out", type=Path, help="with --model: where to write the JSON")
    p.add_argument("--out-dir", type=Path, default=SPECS_DIR / "measurements", help="with --plan")
    p.add_argument("--specs", type=Path, default=SPECS_DIR, help="catalog folder (tests use shrunken specs)")
    args = p.parse_args(argv)
    if args.plan:
        print(run_plan(args.out_dir))
        return
    if not args.model:
        p.error("--model or --plan is required")
    result = measure_one(args)
    if args.out:
        write_json(args.out, result)
    else:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
