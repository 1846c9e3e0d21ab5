"""python -m app.measure trace: the allocated peak of transformers' real code, traced on fake tensors.

    python -m app.measure trace llama-3.1-8b --context 8192 --batch 1 4     # traced vs formula, side by side
    python -m app.measure trace --all                                        # regenerate model_specs/traces/

No GPU and no weights: see app/measure/trace.py for how and why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from app.catalog import SPECS_DIR, load_catalog
from app.estimator.spec import ModelSpec
from app.estimator.traces import NotTraced, TracedRow, TraceEnvironment, TraceFile, compare_trace

TRACES_DIR = SPECS_DIR / "traces"
CONTEXTS = (1024, 8192, 32768)  # plus the model's maximum where it is larger
BATCHES = (1, 4)
DTYPES = ("bf16",)
ROW_BUDGET_S = 300  # a row slower than this is reported and the model's longer contexts are skipped
QUANTIZED_NOT_TRACED = (
    "bnb 4-bit and GPTQ not traced: transformers quantizes bitsandbytes weights from real tensors when they "
    "move to the GPU (bitsandbytes is not installed here, and its kernels need real storage), and GPTQ "
    "needs a quantized checkpoint and gptqmodel's CUDA kernels; neither runs on fake CPU tensors"
)
GiB = 1 << 30
# One model per transformers architecture in the catalog (same class and code path as the others of its
# family; the GLM rows cover the sandwich-norm, fused-MLP and vision-language classes), plus the one
# model whose code cannot be traced, so the table says so.
TABLE_MODELS = (
    "llama-3.1-8b", "glm-4-9b-chat", "glm-4-9b-0414", "glm-4.1v-9b-thinking", "glm-4v-9b", "qwen2.5-7b-instruct",
    "qwen3-8b", "mistral-nemo-base-2407", "gemma-2-9b-it", "phi-3.5-mini-instruct", "mixtral-8x7b-v0.1",
    "qwen3-30b-a3b", "gpt-oss-20b", "deepseek-v3", "gemma-3-1b-it",
)


def contexts_for(spec: ModelSpec) -> list[int]:
    top = spec.language_model.max_context
    return sorted({*CONTEXTS, *([top] if top > max(CONTEXTS) else [])})


def environment(command: str) -> TraceEnvironment:
    import torch
    import transformers

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(__file__).parent).stdout.strip() or "unknown"
    return TraceEnvironment(torch=torch.__version__, transformers=transformers.__version__,
                            python=platform.python_version(), host_cpu=cpu, platform=platform.platform(),
                            traced_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), command=command,
                            git_revision=rev)


def trace_model(spec: ModelSpec, contexts, batches, dtypes, log=print) -> tuple[list[TracedRow], list[NotTraced]]:
    from app.measure.trace import Untraceable, trace

    rows: list[TracedRow] = []
    skipped: list[NotTraced] = []
    for dtype in dtypes:
        try:
            done = trace(spec, list(contexts), list(batches), dtype, on_row=lambda r: log(_line(spec, r)),
                         row_budget_s=ROW_BUDGET_S)
        except Untraceable as exc:
            log(f"{spec.slug}: not traced: {exc}")
            return [], [NotTraced(model=spec.slug, reason=str(exc))]
        except Exception as exc:  # the real code failed under fake tensors: reported, never guessed
            reason = f"the trace failed in transformers' code: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            log(f"{spec.slug}: not traced: {reason}")
            return rows, [*skipped, NotTraced(model=spec.slug, quantization=dtype, reason=reason)]
        rows += done
        traced = {r.context for r in done}
        skipped += [NotTraced(model=spec.slug, quantization=dtype, context=c, batch=b,
                              reason=f"time-boxed: a shorter context took over {ROW_BUDGET_S} s")
                    for c in contexts if c not in traced for b in batches]
    return rows, skipped


def _line(spec: ModelSpec, r: TracedRow) -> str:
    c = compare_trace(spec, r)
    return (f"{r.label:<44}{r.parameters_bytes / GiB:>8.2f}{r.kv_cache_bytes / GiB:>8.2f}"
            f"{r.temporaries_bytes / GiB:>8.2f}{r.peak_bytes / GiB:>9.2f}{c.estimated_peak / GiB:>9.2f}"
            f"{c.error:>+8.2%}{r.seconds:>7.1f}s  {r.attn_implementation}")


HEADER = (f"{'row':<44}{'params':>8}{'KV':>8}{'temps':>8}{'traced':>9}{'formula':>9}{'error':>8}{'time':>8}"
          "  (GiB; traced = allocated peak of prefill + one decode step)")


def write_all(out_dir: Path, command: str, models: list[str] | None = None) -> list[Path]:
    catalog = load_catalog()
    paths = []
    print(HEADER)
    for slug in models or TABLE_MODELS:
        spec = catalog.model(slug)
        rows, not_traced = trace_model(spec, contexts_for(spec), BATCHES, DTYPES)
        if rows:
            not_traced.append(NotTraced(model=slug, reason=QUANTIZED_NOT_TRACED))
        data = TraceFile(model=slug, environment=environment(command), rows=rows, not_traced=not_traced)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{slug}.json"
        path.write_text(json.dumps(data.model_dump(), indent=1) + "\n")
        paths.append(path)
    return paths


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m app.measure trace", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="catalog slug")
    p.add_argument("--context", type=int, nargs="+", help="prompt tokens (default: 1K, 8K, 32K, the model's max)")
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--json", action="store_true", help="print the traced rows as JSON")
    p.add_argument("--all", action="store_true", help="trace one model per architecture into --out-dir (the "
                   "committed tables; TABLE_MODELS)")
    p.add_argument("--models", nargs="+", help="with --all: only these slugs")
    p.add_argument("--out-dir", type=Path, default=TRACES_DIR)
    args = p.parse_args(argv)
    if args.all:
        command = "python -m app.measure trace --all" + (" --models " + " ".join(args.models) if args.models else "")
        for path in write_all(args.out_dir, command, args.models):
            print(path)
        return
    if not args.model:
        p.error("a model slug or --all is required")
    spec = load_catalog().model(args.model)
    print(HEADER, file=sys.stderr if args.json else sys.stdout)
    rows, not_traced = trace_model(spec, args.context or contexts_for(spec), args.batch, [args.dtype],
                                   log=lambda m: print(m, file=sys.stderr if args.json else sys.stdout))
    if args.json:
        print(json.dumps({"command": shlex.join(["python", "-m", "app.measure", "trace", *argv]),
                          "rows": [r.model_dump() for r in rows],
                          "not_traced": [n.model_dump() for n in not_traced]}, indent=1))
