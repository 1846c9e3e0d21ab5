"""python -m app.measure vllm-mtp: vLLM's multi-token-prediction draft (--speculative-config
'{"method": "mtp", "num_speculative_tokens": N}') as ground truth (model_specs/vllm/mtp.json): the draft's own
weights after the proposer shares the target's embedding and LM head, its attention layers' KV cache specs, and
vLLM's KV cache plan for one budget with and without them.

    python -m app.measure vllm-mtp --python /work/vllm-venv/bin/python
    python -m app.measure vllm-mtp --python /work/vllm-venv/bin/python --vllm-path /work/vllm034 \
        --block-size 64 --out model_specs/vllm/mtp-0.34.json

How: as `python -m app.measure vllm-plan` (config.json without quantization_config in a temporary folder, the
vLLM virtualenv's python on app/measure/vllm_mtp_worker.py, JSON job on stdin); see the worker's docstring.
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
from app.measure.vllm_plan import BLOCK_SIZE, MAX_NUM_BATCHED_TOKENS, _prepare, run_worker

GiB = 1 << 30
WORKER = Path(__file__).with_name("vllm_mtp_worker.py")
OUT = SPECS_DIR / "vllm" / "mtp.json"
MODELS = {"deepseek-v3": (1, 2), "qwen3-next-80b-a3b-instruct": (1, 2), "glm-4.5-air": (1,), "mimo-v2-flash": (1,),
          "qwen3.5-35b-a3b": (1, 2), "qwen3.5-27b": (1,)}
# the draft's parameters on rank 0 under tensor (and expert) parallelism: (tensor_parallel_size, expert parallel)
RANKS = {"deepseek-v3": [(8, False), (8, True)], "glm-4.5-air": [(4, False)],
         "qwen3-next-80b-a3b-instruct": [(2, False), (4, True)], "qwen3.5-27b": [(2, False)],
         "qwen3.5-35b-a3b": [(2, False), (2, True)], "mimo-v2-flash": [(4, False), (4, True)]}
MAX_MODEL_LEN = 8192
KV_BYTES = 20 * GiB


def run(python: str, names: list[str], vllm_path: Path | None, block_size: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for name in names:
            folder = Path(tmp) / name
            _prepare(SPECS_DIR / "configs" / name / "config.json", folder)
            models.append({"name": name, "dir": str(folder), "num_speculative_tokens": list(MODELS[name]),
                           "ranks": RANKS.get(name, [])})
        job = {"common": {"block_size": block_size, "max_num_batched_tokens": MAX_NUM_BATCHED_TOKENS,
                          "max_model_len": MAX_MODEL_LEN, "kv_bytes": KV_BYTES,
                          "skip_cpu_platform_check": vllm_path is not None}, "models": models}
        proc = run_worker(python, WORKER, job, vllm_path)
        for line in proc.stderr.splitlines():
            if " n=" in line or " draft tp=" in line:
                print(line, file=sys.stderr)
        return json.loads(proc.stdout)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m app.measure vllm-mtp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", required=True, help="the vLLM virtualenv's python")
    p.add_argument("--vllm-path", type=Path, help="another release's vLLM Python files, first on the path")
    p.add_argument("--block-size", type=int, default=BLOCK_SIZE)
    p.add_argument("--only", nargs="+", choices=sorted(MODELS))
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    result = run(args.python, args.only or list(MODELS), args.vllm_path, args.block_size)
    table = {
        "about": "vLLM's MTP draft (speculative method mtp): its model class built on the meta device as the "
                 "proposer builds it, the parameters it keeps after sharing the target's embed_tokens / lm_head, "
                 "its attention layers' KV specs and the KV plan with and without them; written by the command "
                 "below, never by hand.",
        "command": "python -m app.measure vllm-mtp " + shlex.join(argv),
        "date": started.isoformat(timespec="seconds"),
        "versions": result["versions"], "seconds": result["seconds"],
        "max_model_len": MAX_MODEL_LEN, "kv_bytes": KV_BYTES, "block_size": args.block_size,
        "models": result["models"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"{args.out}: {len(result['models'])} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
