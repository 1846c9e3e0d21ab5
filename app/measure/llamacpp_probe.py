"""One llama.cpp load in this process: `python -m app.measure.llamacpp_probe FILE.gguf JSON-PARAMS`.

Loads a (sparse) GGUF with llama-cpp-python's low-level C API: mmap on, no GPU, no extra (repacking)
buffer types so the weights are never read or copied, no warmup (llama_init_from_model never runs
one); then prints llama_model_size and exits. llama.cpp's own log on stderr carries the buffer sizes
(`parse_log`). Run one per subprocess: a load allocates the whole KV cache and compute buffer.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

FA = {"off": 0, "on": 1}  # enum llama_flash_attn_type: DISABLED 0, ENABLED 1 (include/llama.h)
GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}


def load(path: str, p: dict[str, Any]) -> dict[str, Any]:
    import logging

    import llama_cpp as L
    from llama_cpp import _logger

    _logger.logger.setLevel(logging.INFO)  # llama.cpp's INFO, WARN and ERROR lines; not its DEBUG dump
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    # enum llama_load_mode: NONE 0, MMAP 1; the dry run maps nothing (as common/fit.cpp sets it)
    mp.load_mode = 0 if p.get("no_alloc") else 1
    mp.use_extra_bufts = False
    mp.no_alloc = bool(p.get("no_alloc", False))  # llama.cpp's own dry run (what --fit uses): sizes, no memory
    model = L.llama_model_load_from_file(path.encode(), mp)
    if not model:
        raise SystemExit("llama_model_load_from_file failed")
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = p["n_ctx"], p["n_batch"], p["n_ubatch"]
    cp.n_seq_max = p.get("n_parallel", 1)
    cp.kv_unified = p.get("kv_unified", False)
    cp.swa_full = p.get("swa_full", False)  # llama-server's default (common.h); the C API defaults to true
    cp.flash_attn_type = FA[p["flash_attn"]]
    cp.type_k = GGML_TYPES[p.get("cache_type_k", "f16")]
    cp.type_v = GGML_TYPES[p.get("cache_type_v", "f16")]
    cp.n_threads = cp.n_threads_batch = 1
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        raise SystemExit("llama_init_from_model failed")
    out = {"llama_model_size": L.llama_model_size(model), "n_ctx": L.llama_n_ctx(ctx)}
    L.llama_free(ctx)
    L.llama_model_free(model)
    return out


_MIB = r"([\d.]+) MiB"
_PATTERNS = {  # keys: <kind>_buffer, {device: MiB}
    "model": re.compile(rf"(\S+) model buffer size = +{_MIB}"),
    "kv": re.compile(rf"(\S+) KV buffer size = +{_MIB}"),
    "output": re.compile(rf"(\S+) +output buffer size = +{_MIB}"),
    "compute": re.compile(rf"(\S+) compute buffer size = +{_MIB}"),
}
_CELLS = re.compile(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers, +(\d+)/(\d+) seqs\)")
_CPARAM = re.compile(r"llama_context: (n_ctx|n_ctx_seq|n_batch|n_ubatch|n_seq_max|flash_attn) += (\S+)")


def parse_log(text: str) -> dict[str, Any]:
    """Buffer sizes (MiB, as printed, summed per kind and device) and the resolved context parameters."""
    out: dict[str, Any] = {f"{k}_buffer": {} for k in _PATTERNS}
    for kind, rx in _PATTERNS.items():
        bufs = out[f"{kind}_buffer"]
        for dev, mib in rx.findall(text):
            bufs[dev] = round(bufs.get(dev, 0.0) + float(mib), 2)
    out["kv_caches"] = [{"mib": float(m), "cells": int(c), "layers": int(n), "seqs": int(s), "streams": int(st)}
                        for m, c, n, s, st in _CELLS.findall(text)]
    out["kv_size_mib"] = round(sum(k["mib"] for k in out["kv_caches"]), 2)
    out["cparams"] = dict(_CPARAM.findall(text))
    return out


if __name__ == "__main__":
    result = load(sys.argv[1], json.loads(sys.argv[2]))
    print("PROBE_RESULT " + json.dumps(result), flush=True)
