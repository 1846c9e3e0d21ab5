"""Runs INSIDE a vLLM virtualenv (see app/measure/vllm_quant_weights.py): builds each model's vLLM class, with its
checkpoint's quantization_config, on the meta device and sums the bytes of every parameter the quantization
methods' create_weights registered: the tensors vLLM's weight loader fills from the checkpoint.

Imports only the standard library, torch and vllm (never our app); one JSON job on stdin, one JSON document
on stdout, logs on stderr. The model is built exactly as vLLM's loader builds it (model class from
get_model_architecture, the quant config from the HF config, parameters in the model dtype through
set_default_torch_dtype) except for one stand-in: a CPU build finds no GPU kernel for NVFP4 / FP8 / Marlin,
and kernel selection runs inside create_weights AFTER the scheme registered its parameters
(vllm/model_executor/layers/quantization/modelopt.py ModelOptLinearMethod.create_weights: wkey / akey
create_weights, then select_linear_kernel). The selectors named in PATCHED are replaced by a function
returning None while the model is built; every registered parameter is the method's own.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections import Counter

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from vllm_plan_worker import (  # noqa: E402  (same folder: the script's directory is first on sys.path)
    _init_distributed,
    _skip_cpu_platform_check,
    log,
)

_Q = "vllm.model_executor.layers.quantization"
# (module, attribute, stand-in): kernel selectors create_weights calls besides registering its parameters.
# "none": the selector returns None; "class": it returns a kernel class whose instances do nothing; "pair":
# (None, None) for a (backend, experts class) selector; "false": the backend supports no option asked about.
PATCHED = (
    (f"{_Q}.modelopt", "select_nvfp4_moe_backend", "pair"),
    (f"{_Q}.modelopt", "is_global_sf_supported_for_nvfp4_backend", "false"),
    (f"{_Q}.modelopt", "select_linear_kernel", "none"),
    (f"{_Q}.modelopt", "expose_input_quant_key", "none"),
    (f"{_Q}.fp8", "init_fp8_linear_kernel", "none"),
    (f"{_Q}.compressed_tensors.schemes.compressed_tensors_w4a4_nvfp4", "init_nvfp4_linear_kernel", "none"),
    (f"{_Q}.compressed_tensors.schemes.compressed_tensors_w4a4_nvfp4", "expose_input_quant_key", "none"),
    (f"{_Q}.compressed_tensors.schemes.compressed_tensors_w8a8_fp8", "init_fp8_linear_kernel", "none"),
    (f"{_Q}.auto_gptq", "choose_mp_linear_kernel", "class"),
    (f"{_Q}.auto_gptq", "verify_marlin_supported", "none"),
    (f"{_Q}.auto_awq", "choose_mp_linear_kernel", "class"),
    (f"{_Q}.compressed_tensors.schemes.compressed_tensors_wNa16", "choose_mp_linear_kernel", "class"),
)
# Attention's KV-cache quantization parameters (q/k/v_scale, prob_scale; compressed-tensors *_zero_point): the
# KV cache's, not a linear's weights
KV_SCALES = ("k_scale", "v_scale", "q_scale", "prob_scale")
VISION = ("vision_tower", "visual", "vision_model", "embed_vision", "multi_modal_projector", "mm_projector")


def _patch() -> list[str]:
    import importlib

    class NoKernel:
        def __init__(self, *args, **kwargs):
            pass

    done = []
    for mod, attr, kind in PATCHED:
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        if hasattr(m, attr):
            stand_in = {"none": None, "class": NoKernel, "pair": (None, None), "false": False}[kind]
            setattr(m, attr, lambda *a, _v=stand_in, **k: _v)
            done.append(f"{mod}.{attr}")
    return done


def _part(name: str) -> str:
    first = name.split(".")[:2]
    return "vision" if any(p in VISION for p in first) else "language"


def run_model(job: dict) -> dict:
    import torch
    from vllm.config import LoadConfig, ModelConfig, VllmConfig
    from vllm.model_executor.model_loader.utils import get_model_architecture, initialize_model
    from vllm.utils.torch_utils import set_default_torch_dtype

    out: dict = {"name": job["name"]}
    mc = ModelConfig(model=job["dir"], skip_tokenizer_init=True, dtype="bfloat16", max_model_len=4096,
                     enforce_eager=True, quantization=job.get("quantization"))
    vc = VllmConfig(model_config=mc, load_config=LoadConfig(load_format="dummy"))
    _init_distributed(vc)
    _, arch = get_model_architecture(vc.model_config)
    # as DefaultModelLoader.load_model builds it (vllm/model_executor/model_loader/default_loader.py): the quant
    # config gets the class's packed_modules_mapping and name mapper (configure_quant_config), then the class
    with set_default_torch_dtype(mc.dtype), torch.device("meta"):
        model = initialize_model(vllm_config=vc)
    parts: Counter = Counter()
    by_kind: Counter = Counter()
    kv_scales = 0
    for name, p in model.named_parameters():
        size = p.numel() * p.element_size()
        leaf = name.rsplit(".", 1)[-1]
        if leaf in KV_SCALES or (leaf.endswith("_zero_point") and ".attn." in name):
            kv_scales += size
            continue
        parts[_part(name)] += size
        by_kind[f"{leaf} {str(p.dtype).removeprefix('torch.')}"] += size
    out.update({"architecture": arch, "quantization": mc.quantization,
                "quant_config": type(vc.quant_config).__name__ if vc.quant_config is not None else None,
                "language_bytes": parts["language"], "vision_bytes": parts["vision"],
                "total_bytes": parts["language"] + parts["vision"], "kv_scale_bytes": kv_scales,
                "by_parameter": dict(sorted(by_kind.items()))})
    return out


def main() -> int:
    job = json.load(sys.stdin)
    if job.get("skip_cpu_platform_check"):  # another release's Python files on the CPU build (vllm_plan_worker)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

        _skip_cpu_platform_check()
    t0 = time.time()
    import torch
    import transformers
    import vllm

    patched = _patch()
    result = {"versions": {"vllm": vllm.__version__, "torch": torch.__version__,
                           "transformers": transformers.__version__, "python": sys.version.split()[0]},
              "patched": patched, "models": []}
    for m in job["models"]:
        t = time.time()
        try:
            row = run_model(m)
        except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
            row = {"name": m["name"], "error": f"{type(e).__name__}: {str(e)[:600]}",
                   "trace": traceback.format_exc(limit=4)[-1500:]}
        row["seconds"] = round(time.time() - t, 1)
        log(f"{m['name']}: {row.get('total_bytes', row.get('error'))} ({row['seconds']}s)")
        result["models"].append(row)
    result["seconds"] = round(time.time() - t0, 1)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
