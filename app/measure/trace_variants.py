"""python -m app.measure trace-remote | trace-attention: traces beside the committed native table.

    python -m app.measure trace-remote glm-4-9b-chat --code /work/remote-code/glm-4-9b-chat --context 1024
    python -m app.measure trace-remote --all --code-root /work/remote-code     # model_specs/traces/remote/
    python -m app.measure trace-attention --all                                # model_specs/traces/attention/

trace-remote runs the model repository's own code (trust_remote_code=True; app/measure/remote_code.py: the
files are public copies kept outside this repository, checked by sha256). trace-attention runs the native
class with each attention implementation (eager, sdpa, sdpa_math), the rows the kernel correction of
app/estimator/runtimes/attention.py is held to.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.catalog import SPECS_DIR, load_catalog
from app.estimator.traces import TraceFile
from app.measure.trace_cli import HEADER, _line, environment

# (slug, attention implementation, contexts, batches, images): what the committed tables hold
REMOTE_PLAN = (
    ("glm-4-9b-chat", "sdpa", (1024, 8192, 32768, 131072), (1,), (0,)),
    ("glm-4-9b-chat", "sdpa", (1024, 8192), (4,), (0,)),
    ("glm-4-9b-chat", "eager", (1024, 8192), (1,), (0,)),
    ("glm-4v-9b", "sdpa", (1024, 8192), (1,), (0, 1)),
    ("glm-4v-9b", "sdpa", (1024,), (4,), (0, 1)),
    ("glm-4v-9b", "sdpa", (16,), (1, 2), (1,)),  # the shortest prompts: is the vision tower the peak?
)
ATTENTION_PLAN = (
    ("glm-4-9b-chat", ("sdpa", "eager", "sdpa_math"), (1024, 8192), (1,)),
    ("qwen3-8b", ("sdpa", "eager", "sdpa_math"), (1024, 8192), (1,)),
)
REMOTE_DIR = SPECS_DIR / "traces" / "remote"
ATTENTION_DIR = SPECS_DIR / "traces" / "attention"


def _write(path: Path, data: TraceFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data.model_dump(), indent=1) + "\n")
    print(path)


def remote_all(code_root: Path, out_dir: Path, command: str, models: list[str] | None) -> None:
    from app.measure.remote_code import REMOTE_MODELS, SHIM_NOTES, trace

    catalog = load_catalog()
    print(HEADER)
    for slug in models or sorted({p[0] for p in REMOTE_PLAN}):
        spec = catalog.model(slug)
        rows = []
        for _, attn, contexts, batches, images in (p for p in REMOTE_PLAN if p[0] == slug):
            rows += trace(spec, code_root / slug, list(contexts), list(batches), list(images), attn,
                          on_row=lambda r, spec=spec: print(_line(spec, r), flush=True))
        remote = REMOTE_MODELS[slug]
        _write(out_dir / f"{slug}.json", TraceFile(
            model=slug, environment=environment(command), rows=rows, sources=[f.record() for f in remote.files],
            shims=[f"{name}: {SHIM_NOTES[name]}" for name in remote.shims]))


def attention_all(out_dir: Path, command: str, models: list[str] | None) -> None:
    from app.measure.trace import trace_attention

    catalog = load_catalog()
    print(HEADER)
    for slug, impls, contexts, batches in (p for p in ATTENTION_PLAN if not models or p[0] in models):
        spec = catalog.model(slug)
        rows = []
        for impl in impls:
            rows += trace_attention(spec, list(contexts), list(batches), impl,
                                    on_row=lambda r, spec=spec: print(_line(spec, r), flush=True))
        _write(out_dir / f"{slug}.json", TraceFile(model=slug, environment=environment(command), rows=rows))


def main(argv: list[str], kind: str) -> None:
    p = argparse.ArgumentParser(prog=f"python -m app.measure {kind}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="catalog slug")
    p.add_argument("--context", type=int, nargs="+", default=[1024])
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--images", type=int, nargs="+", default=[0])
    p.add_argument("--attn-implementation", default="sdpa", choices=["sdpa", "eager", "sdpa_math"])
    p.add_argument("--code", type=Path, help="trace-remote: folder holding the model's remote-code files")
    p.add_argument("--code-root", type=Path, default=Path("/work/remote-code"),
                   help="trace-remote --all: one folder per slug under it")
    p.add_argument("--all", action="store_true", help="write the committed table (REMOTE_PLAN / ATTENTION_PLAN)")
    p.add_argument("--models", nargs="+", help="with --all: only these slugs")
    p.add_argument("--out-dir", type=Path, default=REMOTE_DIR if kind == "trace-remote" else ATTENTION_DIR)
    args = p.parse_args(argv)
    command = f"python -m app.measure {kind} --all" + (" --models " + " ".join(args.models) if args.models else "")
    if args.all:
        if kind == "trace-remote":
            remote_all(args.code_root, args.out_dir, command, args.models)
        else:
            attention_all(args.out_dir, command, args.models)
        return
    if not args.model:
        p.error("a model slug or --all is required")
    spec = load_catalog().model(args.model)
    print(HEADER)
    if kind == "trace-remote":
        from app.measure.remote_code import trace

        trace(spec, args.code or args.code_root / args.model, args.context, args.batch, args.images,
              args.attn_implementation, on_row=lambda r, spec=spec: print(_line(spec, r), flush=True))
    else:
        from app.measure.trace import trace_attention

        trace_attention(spec, args.context, args.batch, args.attn_implementation,
                        on_row=lambda r, spec=spec: print(_line(spec, r), flush=True))
