"""`python -m app.measure llamacpp-grid`: real llama.cpp (llama-cpp-python, CPU) on header-exact GGUFs.

For each (model, file type) it writes a sparse GGUF (`llamacpp_gguf`); one subprocess
(`llamacpp_probe`) runs llama.cpp's dry run (no_alloc, what --fit uses) for every (n_ctx, flash
attention, n_ubatch, ...) point, and one subprocess per point of a subset loads it for real (mmap,
buffers allocated); the buffer sizes llama.cpp prints are parsed. Output: model_specs/llamacpp/grid.json
(parsed table, llama.cpp version, machine) and model_specs/llamacpp/logs/<model>-<ftype>.log.gz (raw
logs, gzip). Torch-free.

    python -m app.measure llamacpp-grid                    # the full grid (GRID below)
    python -m app.measure llamacpp-grid --quick            # a small subset (CI)
    python -m app.measure llamacpp-grid --models llama-3.1-8b --ftypes q4_k_m --out /tmp/g
    python -m app.measure llamacpp-grid --archs-2026        # add the 2026 architectures' rows (MODELS_2026)
    python -m app.measure llamacpp-grid --backend vulkan --python .venv-vk/bin/python   # GPU split graph (below)

`--backend vulkan`: a llama-cpp-python built with GGML_VULKAN (BACKEND_RUNS) offloads every layer (and one partial
point) to the first Vulkan device, here Mesa's software driver lavapipe (llvmpipe): llama.cpp then splits the graph
and prints a device and a host compute buffer, as on a real GPU. Rows go to model_specs/llamacpp/grid-vulkan.json,
logs to logs/vulkan/. lavapipe (Mesa 22.3) reports maxStorageBufferRange 128 MiB, so ggml-vulkan would keep every
tensor over 128 MiB (large output and expert weights, the logits) off the device; the grid therefore loads a small
Vulkan layer (app/measure/vulkan_limits_layer, built with cc) that reports a GPU-sized range (--vk-storage-range,
default 2^32 - 1; 0: lavapipe as it is).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.catalog import SPECS_DIR, load_catalog
from app.estimator.llamacpp_check import grid_specs
from app.estimator.spec import ModelSpec
from app.measure.llamacpp_gguf import write_sparse_gguf
from app.measure.llamacpp_probe import parse_log, split_log

LAYER_SRC = Path(__file__).resolve().parent / "vulkan_limits_layer"

OUT = SPECS_DIR / "llamacpp"
MODELS = ("llama-3.1-8b", "qwen2.5-7b-instruct", "gemma-2-9b-it", "mistral-7b-instruct-v0.2", "glm-4-9b-chat",
          "qwen3-30b-a3b")
FTYPES = ("q4_k_m", "q8_0", "q2_k")
N_CTX = (2048, 8192, 32768)
FLASH = ("off", "on")
N_UBATCH = (512, 2048)
QUICK = {"models": ("llama-3.1-8b",), "ftypes": ("q4_k_m",), "n_ctx": (2048, 8192), "flash": FLASH,
         "n_ubatch": (512,)}
# Extra points for the knobs the base grid does not move (n_parallel, unified KV, quantized cache)
EXTRA = (
    {"n_ctx": 8192, "flash_attn": "off", "n_ubatch": 512, "n_parallel": 4},
    {"n_ctx": 8192, "flash_attn": "on", "n_ubatch": 512, "n_parallel": 4, "kv_unified": True},
    {"n_ctx": 10000, "flash_attn": "on", "n_ubatch": 512, "n_parallel": 3},
    {"n_ctx": 8192, "flash_attn": "on", "n_ubatch": 512, "cache_type_k": "q8_0", "cache_type_v": "q4_0"},
    {"n_ctx": 2500, "flash_attn": "off", "n_ubatch": 1024, "n_batch": 1024},
)

# 2026 architectures the vendored llama.cpp loads: one catalog model each, in the file type people run it in, at a
# short context (dry run, plus a real load where the file is small); n_parallel 2 doubles the recurrent states
MODELS_2026 = {"qwen3.5-9b": "q4_k_m", "qwen3.6-35b-a3b": "q4_k_m", "nemotron-h-56b-base-8k": "q4_k_m",
               "lfm2.5-vl-1.6b": "q4_k_m", "gemma-4-26b-a4b": "q4_k_m", "llama-4-scout-17b-16e-instruct": "q4_k_m",
               "gpt-oss-20b": "mxfp4_moe", "step-3.7-flash": "q4_k_m"}
POINTS_2026 = (
    {"n_ctx": 4096, "flash_attn": "off", "n_ubatch": 512},
    {"n_ctx": 4096, "flash_attn": "on", "n_ubatch": 512},
    {"n_ctx": 4096, "flash_attn": "on", "n_ubatch": 512, "n_parallel": 2},
    # the compute buffer's other sizes: n_ubatch, n_ctx and n_parallel each varied once
    {"n_ctx": 4096, "flash_attn": "on", "n_ubatch": 256},
    {"n_ctx": 4096, "flash_attn": "on", "n_ubatch": 1024},
    {"n_ctx": 16384, "flash_attn": "on", "n_ubatch": 512},
    {"n_ctx": 4096, "flash_attn": "on", "n_ubatch": 512, "n_parallel": 4},
    {"n_ctx": 4096, "flash_attn": "off", "n_ubatch": 512, "n_parallel": 2},
)

# GPU split graphs (--backend vulkan): the 2026 models plus a dense and an MoE model of the base grid, at POINTS_2026
# with every layer offloaded, plus one partial offload (half the repeating layers, output layer on the host)
MODELS_VULKAN = {**MODELS_2026, "llama-3.1-8b": "q4_k_m", "qwen3-30b-a3b": "q4_k_m"}
PARTIAL_POINT = {"n_ctx": 4096, "flash_attn": "on", "n_ubatch": 512, "n_gpu_layers": "half"}
VULKAN_REAL_LOAD_MAX = 6 << 30  # lavapipe's "device" buffers are host RAM that the load fills: keep real loads small


@dataclass(frozen=True)
class GridBackend:
    """How the grid runs one ggml backend: the table, the log folder, the probe's environment."""

    name: str  # the estimator's `backend` value (llamacpp_backends.BACKENDS)
    table: str
    logs: str
    build: str
    env: dict[str, str] = field(default_factory=dict)
    offload: bool = False


BACKEND_RUNS = {b.name: b for b in [
    GridBackend("cpu", "grid.json", "logs", "pip install llama-cpp-python (source build, "
                "CMAKE_ARGS=-DGGML_NATIVE=OFF), CPU backend"),
    # ggml-vulkan.cpp ggml_vk_instance_init: without GGML_VK_VISIBLE_DEVICES a CPU-type device (lavapipe) is skipped
    GridBackend("vulkan", "grid-vulkan.json", "logs/vulkan", "pip install llama-cpp-python (source build, "
                "CMAKE_ARGS='-DGGML_VULKAN=ON -DGGML_NATIVE=OFF'; Debian 12 mesa-vulkan-drivers 22.3.6, "
                "libvulkan-dev, glslc, spirv-headers), Vulkan backend on lavapipe",
                env={"GGML_VK_VISIBLE_DEVICES": "0"}, offload=True),
]}

# The llama.cpp commit llama-cpp-python 0.3.36 vendors (its sdist: .git/modules/vendor/llama.cpp/HEAD)
VENDORED = {"0.3.36": "0c1e57098bba43ac29e6e3b677cdceebdd22334f"}


def vulkan_layer_env(build_dir: Path, storage_range: int) -> dict[str, str]:
    """Build the limits layer (vk_limits_layer.c) into `build_dir`; the environment that loads it (0: none)."""
    if not storage_range:
        return {}
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(build_dir / "libvk_limits_layer.so"),
                    str(LAYER_SRC / "vk_limits_layer.c")], check=True)
    (build_dir / "vk_limits_layer.json").write_bytes((LAYER_SRC / "vk_limits_layer.json").read_bytes())
    return {"VK_LAYER_PATH": str(build_dir), "VK_INSTANCE_LAYERS": "VK_LAYER_VRAM_limits",
            "VK_LIMITS_MAX_STORAGE_BUFFER_RANGE": str(storage_range)}


def llama_cpp_version(backend: GridBackend = BACKEND_RUNS["cpu"], python: str = sys.executable) -> dict[str, str]:
    code = "import llama_cpp; print(llama_cpp.__version__); print(llama_cpp.llama_print_system_info().decode())"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **backend.env})
    lines = done.stdout.splitlines() or ["unknown"]
    return {"llama_cpp_python": lines[0], "llama_cpp_commit": VENDORED.get(lines[0], "unknown"),
            "system_info": " ".join(lines[1:]).strip(), "build": backend.build}


def probe(path: Path, points: list[dict[str, Any]], timeout: int = 1800, python: str = sys.executable,
          env: dict[str, str] | None = None) -> list[tuple[dict[str, Any], str]]:
    """Load `path` once in a fresh process and create one context per point; (parsed, raw log) per point.

    `python`: the interpreter whose llama-cpp-python runs (a GPU build lives in its own virtualenv)."""
    cmd = [python, "-m", "app.measure.llamacpp_probe", str(path), json.dumps(points)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=Path(__file__).resolve().parents[2])
    head = done.stderr.split("PROBE_POINT ")[0]  # the model load, shared by every point
    out = []
    for i, (body, result) in enumerate(split_log(done.stderr)):
        parsed = parse_log(head + body)
        parsed.update(result)
        parsed["rc"] = 0 if result.get("ok") else (done.returncode or 1)
        out.append((parsed, f"PROBE_POINT {i}\n{body}"))
    out += [({"rc": done.returncode or 1}, done.stderr[-4000:])] * (len(points) - len(out))
    return [(o, (head if i == 0 else "") + raw) for i, (o, raw) in enumerate(out)]


def points(n_ctx, flash, n_ubatch, extra: bool) -> list[dict[str, Any]]:
    base = [{"n_ctx": c, "flash_attn": f, "n_ubatch": u, "n_batch": 2048}
            for c, f, u in itertools.product(n_ctx, flash, n_ubatch)]
    return base + ([{"n_batch": 2048, **e} for e in EXTRA] if extra else [])


def specs() -> dict[str, ModelSpec]:
    """The catalog, plus grid-only specs (model_specs/llamacpp/specs) for models it does not have yet."""
    return grid_specs(OUT / "specs", load_catalog().models)


PRIMARY = "q4_k_m"  # the file type that gets the extra points and the n_ctx 8192 real loads
REAL_LOAD_MAX = 10 << 30  # llama.cpp maps the whole file with MAP_POPULATE: zeros of a sparse file fill RAM


def real_load(ft: str, p: dict[str, Any], file_bytes: int, slug: str = "") -> bool:
    """Points also loaded for real (mmap, allocated buffers) to check the dry run against."""
    if file_bytes > REAL_LOAD_MAX:
        return False
    if slug in MODELS_2026:
        return p["n_ctx"] == 4096 and p["flash_attn"] == "on" and p.get("n_parallel", 1) == 1
    if ft == PRIMARY:
        return p["n_ctx"] == 8192 and p["n_ubatch"] == 512 and p.get("n_parallel", 1) == 1
    return p["n_ctx"] == 2048 and p["flash_attn"] == "on" and p["n_ubatch"] == 512


def plan(models, ftypes, n_ctx, flash, n_ubatch, extra: bool = True) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(model, file type, points) of the grid: every model's first file type comes first."""
    return [(slug, ft, points(n_ctx, flash, n_ubatch, extra and ft == PRIMARY))
            for ft, slug in itertools.product(ftypes, models)]


def plan_2026(models=tuple(MODELS_2026)) -> list[tuple[str, str, list[dict[str, Any]]]]:
    return [(slug, MODELS_2026[slug], [{"n_batch": 2048, **p} for p in POINTS_2026]) for slug in models]


def plan_vulkan(models=tuple(MODELS_VULKAN), points_2026=POINTS_2026) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Every layer offloaded at `points_2026` (n_gpu_layers n_layer + 1, resolved in `run`), then the partial point."""
    return [(slug, MODELS_VULKAN[slug], [{"n_batch": 2048, "n_gpu_layers": "all", **p} for p in points_2026]
             + [{"n_batch": 2048, **PARTIAL_POINT}]) for slug in models]


def _n_gpu_layers(value: int | str, n_layer: int) -> int:
    """"all": every repeating layer and the output layer (n_layer + 1); "half": the last n_layer // 2 repeating
    layers, output layer on the host (src/llama-model.cpp: layer il is offloaded when il >= n_layer + 1 - ngl)."""
    return {"all": n_layer + 1, "half": n_layer // 2}.get(value, value) if isinstance(value, str) else value


def real_load_vulkan(p: dict[str, Any], file_bytes: int, n_layer: int) -> bool:
    """Real loads beside the dry run on the GPU backend: small files, the FA-on n_ctx 4096 point and the partial one
    (the dry run prints 0 for the per-device model and KV buffers; only a real load splits them)."""
    if file_bytes > VULKAN_REAL_LOAD_MAX or p["n_ctx"] != 4096 or p["flash_attn"] != "on" or p["n_ubatch"] != 512:
        return False
    return p.get("n_parallel", 1) == 1


def run(jobs: list[tuple[str, str, list[dict[str, Any]]]], out: Path, append: bool = False,
        command: str = "python -m app.measure llamacpp-grid", backend: GridBackend = BACKEND_RUNS["cpu"],
        python: str = sys.executable, storage_range: int = 0) -> Path:
    """Measure `jobs`; with `append`, the table keeps the other (model, file type) pairs and its own header (when,
    where, which build) and lists this run under `runs` with its command, date, machine and versions."""
    catalog = specs()
    out.mkdir(parents=True, exist_ok=True)
    (out / backend.logs).mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    earlier = None
    if append and (out / backend.table).exists():  # keep the other (model, file type) pairs of the last run
        earlier = json.loads((out / backend.table).read_text())
        redo = {(slug, ft) for slug, ft, _ in jobs}
        rows = [r for r in earlier["rows"] if (r["model"], r["file_type"]) not in redo]
        earlier["runs"] = [r for r in earlier.get("runs", []) if not redo >= {tuple(p) for p in r["pairs"]}]
    this = {"command": command, "pairs": [[slug, ft] for slug, ft, _ in jobs]}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**backend.env, **vulkan_layer_env(Path(tmp), storage_range)} if backend.name == "vulkan" else {}
        backend = GridBackend(backend.name, backend.table, backend.logs, backend.build, env, backend.offload)
        versions = llama_cpp_version(backend, python)
        if storage_range:
            versions["device_limits"] = (f"maxStorageBufferRange reported as {storage_range} by "
                                         "app/measure/vulkan_limits_layer (lavapipe's own: 134217728)")
        for slug, ft, grid_points in jobs:
            if slug not in catalog:
                skipped.append(f"{slug}: not in the catalog")
                continue
            path = Path(tmp) / f"{slug}-{ft}.gguf"
            written = write_sparse_gguf(catalog[slug], ft, path)
            logs = []
            n_layer = catalog[slug].language_model.layers
            todo = [{"n_parallel": 1, "kv_unified": False, "cache_type_k": "f16", "cache_type_v": "f16", **p}
                    for p in grid_points]
            if backend.offload:
                todo = [{**p, "n_gpu_layers": _n_gpu_layers(p["n_gpu_layers"], n_layer)} for p in todo]
                # one dry-run load per n_gpu_layers (a model parameter), real loads one by one
                batches = [("dry_run", [{**p, "no_alloc": True} for p in todo if p["n_gpu_layers"] == ngl])
                           for ngl in dict.fromkeys(p["n_gpu_layers"] for p in todo)]
                batches += [("alloc", [p]) for p in todo if real_load_vulkan(p, written.file_bytes, n_layer)]
            else:
                batches = [("dry_run", [{**p, "no_alloc": True} for p in todo])]
                batches += [("alloc", [p]) for p in todo if real_load(ft, p, written.file_bytes, slug)]
            for mode, batch in batches:
                for p, (parsed, raw) in zip(batch, probe(path, batch, python=python, env=env), strict=True):
                    p = {k: v for k, v in p.items() if k != "no_alloc"}
                    logs.append(f"===== {slug} {ft} {mode} {json.dumps(p)}\n{raw}")
                    tag = {"backend": backend.name, "n_layer": n_layer} if backend.offload else {}
                    rows.append({"model": slug, "file_type": ft, "arch": written.arch, "mode": mode, "params": p,
                                 "file_bytes": written.file_bytes, "tensor_bytes": written.tensor_bytes, **tag,
                                 **parsed})
                    print(f"{slug} {ft} {mode} {p} rc={parsed['rc']} compute={parsed.get('compute_buffer')}",
                          flush=True)
            with gzip.open(out / backend.logs / f"{slug}-{ft}.log.gz", "wt") as f:  # raw, compressed ~35x
                f.write("".join(logs))
            path.unlink()
            # after each file: a partial grid is usable
            _write(out, rows, skipped, t0, versions, earlier, this, backend)
    return _write(out, rows, skipped, t0, versions, earlier, this, backend)


def _write(out: Path, rows: list[dict[str, Any]], skipped: list[str], t0: float, versions: dict,
           earlier: dict[str, Any] | None = None, this: dict[str, Any] | None = None,
           backend: GridBackend = BACKEND_RUNS["cpu"]) -> Path:
    what = "CPU backend" if not backend.offload else (
        f"{backend.name} backend, layers offloaded (params.n_gpu_layers as llama.cpp counts: n_layer + 1 = all); "
        "per device as printed (the dry run prints 0 for model and KV buffers: see kv_size_mib, llama_model_size)")
    result = {
        "what": f"llama.cpp buffer sizes printed at load (MiB = 2^20 B, 2 decimals as printed), {what}",
        "how": "python -m app.measure llamacpp-grid: sparse header-exact GGUF, no repack, no warmup; mode "
               "dry_run = llama.cpp's no_alloc pass (what --fit uses: sizes without memory), alloc = a real "
               "mmap load with every buffer allocated",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "versions": versions,
        "skipped": skipped,
        "rows": rows,
    }
    if earlier is not None:  # an appended run: the table's header stays the first run's, this one is listed
        run_info = {**(this or {}), **{k: result[k] for k in ("measured_at", "seconds", "machine", "versions",
                                                              "skipped")}}
        result = {**{k: v for k, v in earlier.items() if k not in ("rows", "runs")},
                  "runs": earlier.get("runs", []) + [run_info], "rows": rows}
    target = out / backend.table
    target.write_text(json.dumps(result, indent=1) + "\n")
    return target


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.measure llamacpp-grid")
    ap.add_argument("--quick", action="store_true", help="a small subset (what CI runs)")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--ftypes", nargs="+", default=FTYPES)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--append", action="store_true", help="replace only these (model, file type) pairs")
    ap.add_argument("--archs-2026", nargs="*", metavar="MODEL",
                    help="the 2026 architectures' rows (MODELS_2026, or the ones named), appended to the table")
    ap.add_argument("--backend", choices=list(BACKEND_RUNS), default="cpu",
                    help="vulkan: offload to the first Vulkan device (MODELS_VULKAN, or --models), grid-vulkan.json")
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter whose llama-cpp-python build the probe runs (a GPU build's virtualenv)")
    ap.add_argument("--points", type=int, nargs="+", help="with --backend vulkan: only these POINTS_2026 (indices)")
    ap.add_argument("--vk-storage-range", type=lambda x: int(x, 0), default=0xFFFFFFFF,
                    help="maxStorageBufferRange the limits layer reports (0: no layer, the driver's own)")
    a = ap.parse_args(argv)
    command = " ".join(["python -m app.measure llamacpp-grid", *argv])
    if a.backend != "cpu":
        models = tuple(a.models) if a.models != MODELS else tuple(MODELS_VULKAN)
        pts = tuple(POINTS_2026[i] for i in a.points) if a.points else POINTS_2026
        target = run(plan_vulkan(models, pts), a.out, append=True, command=command, backend=BACKEND_RUNS[a.backend],
                     python=a.python, storage_range=a.vk_storage_range)
    elif a.quick:
        target = run(plan(QUICK["models"], QUICK["ftypes"], QUICK["n_ctx"], QUICK["flash"], QUICK["n_ubatch"],
                          extra=False), a.out)
    elif a.archs_2026 is not None:
        target = run(plan_2026(tuple(a.archs_2026) or tuple(MODELS_2026)), a.out, append=True, command=command)
    else:
        target = run(plan(a.models, a.ftypes, N_CTX, FLASH, N_UBATCH), a.out, append=a.append, command=command)
    print(f"wrote {target}")
    return 0
