"""llama.cpp loads in this process: `python -m app.measure.llamacpp_probe FILE.gguf JSON-LIST-OF-POINTS`.

Loads a (sparse) GGUF with llama-cpp-python's low-level C API: mmap on, no extra (repacking) buffer
types so the weights are never read or copied, no warmup (llama_init_from_model never runs one); then
prints llama_model_size and exits. Nothing is offloaded unless the points ask for `n_gpu_layers` (a GPU
build of llama-cpp-python, e.g. the Vulkan backend on Mesa's lavapipe: `llamacpp-grid --backend vulkan`).
llama.cpp's own log on stderr carries the buffer sizes (`parse_log`). Run one per subprocess: a load allocates
the whole KV cache and compute buffer.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

FA = {"off": 0, "on": 1}  # enum llama_flash_attn_type: DISABLED 0, ENABLED 1 (include/llama.h)
GGML_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}


def load(path: str, points: list[dict[str, Any]]) -> None:
    """Load the model once, then create (and free) one context per point; all points share the load mode.

    Before each context a `PROBE_POINT <i>` line goes to stderr, where llama.cpp's log goes too, so the log
    splits per point; after it a `PROBE_RESULT <i> {...}` line.
    """
    import logging

    import llama_cpp as L
    from llama_cpp import _logger

    _logger.logger.setLevel(logging.INFO)  # llama.cpp's INFO, WARN and ERROR lines; not its DEBUG dump
    L.llama_backend_init()
    dry = bool(points[0].get("no_alloc"))
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = points[0].get("n_gpu_layers", 0)  # one load per n_gpu_layers: a model parameter
    mp.use_extra_bufts = False
    mp.no_alloc = dry  # llama.cpp's own dry run (what --fit uses): sizes, no memory
    mp.load_mode = 0 if dry else 1  # enum llama_load_mode: NONE 0, MMAP 1 (the dry run maps nothing)
    model = L.llama_model_load_from_file(path.encode(), mp)
    if not model:
        raise SystemExit("llama_model_load_from_file failed")
    for i, p in enumerate(points):
        print(f"PROBE_POINT {i}", file=sys.stderr, flush=True)
        ctx = L.llama_init_from_model(model, _context_params(L, p))
        result = {"llama_model_size": L.llama_model_size(model), "ok": bool(ctx)}
        if ctx:
            result["n_ctx"] = L.llama_n_ctx(ctx)
            L.llama_free(ctx)
        print(f"PROBE_RESULT {i} " + json.dumps(result), file=sys.stderr, flush=True)
    L.llama_model_free(model)


def _context_params(L: Any, p: dict[str, Any]) -> Any:
    cp = L.llama_context_default_params()
    cp.n_ctx, cp.n_batch, cp.n_ubatch = p["n_ctx"], p["n_batch"], p["n_ubatch"]
    cp.n_seq_max = p.get("n_parallel", 1)
    cp.kv_unified = p.get("kv_unified", False)
    cp.swa_full = p.get("swa_full", False)  # llama-server's default (common.h); the C API defaults to true
    cp.flash_attn_type = FA[p["flash_attn"]]
    cp.type_k = GGML_TYPES[p.get("cache_type_k", "f16")]
    cp.type_v = GGML_TYPES[p.get("cache_type_v", "f16")]
    cp.n_threads = cp.n_threads_batch = 1
    return cp


def split_log(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(log of one point, its PROBE_RESULT) for each point, in order."""
    out = []
    for chunk in text.split("PROBE_POINT ")[1:]:
        body, _, tail = chunk.partition("PROBE_RESULT ")
        result = json.loads(tail.split(" ", 1)[1].splitlines()[0]) if tail else {"ok": False}
        out.append((body, result))
    return out


_MIB = r"([\d.]+) MiB"
_PATTERNS = {  # keys: <kind>_buffer, {device: MiB}
    "model": re.compile(rf"(\S+) model buffer size = +{_MIB}"),
    "kv": re.compile(rf"(\S+) KV buffer size = +{_MIB}"),
    "rs": re.compile(rf"(\S+) RS buffer size = +{_MIB}"),  # llama_memory_recurrent: r and s states
    "output": re.compile(rf"(\S+) +output buffer size = +{_MIB}"),
    "compute": re.compile(rf"(\S+) compute buffer size = +{_MIB}"),
}
_CELLS = re.compile(r"llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers, +(\d+)/(\d+) seqs\)")
_RS_CELLS = re.compile(r"llama_memory_recurrent: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers, +(\d+) seqs")
_DEVICE = re.compile(r"using device (\S+) \((.*)\) \(.*\) - \d+ MiB free")  # src/llama.cpp
_GRAPH = re.compile(r"graph(?: \(pp bs=\d+, tg bs=\d+\))?: nodes = (\d+)(?: / \d+)?, splits = (\d+)")
_OFFLOADED = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")
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
    out["rs_caches"] = [{"mib": float(m), "cells": int(c), "layers": int(n), "seqs": int(s)}
                        for m, c, n, s in _RS_CELLS.findall(text)]
    out["rs_size_mib"] = round(sum(k["mib"] for k in out["rs_caches"]), 2)
    out["cparams"] = dict(_CPARAM.findall(text))
    if devices := _DEVICE.findall(text):  # a GPU build: the devices llama.cpp loaded onto
        out["devices"] = {name: desc for name, desc in devices}
    if graph := _GRAPH.findall(text):  # the last reserve's graph: nodes and backend splits (pp graph)
        out["graph"] = {"nodes": int(graph[-1][0]), "splits": int(graph[-1][1])}
    if offloaded := _OFFLOADED.findall(text):
        out["offloaded_layers"] = [int(x) for x in offloaded[-1]]
    return out


if __name__ == "__main__":
    load(sys.argv[1], json.loads(sys.argv[2]))
