"""Our llama.cpp model with backend "vulkan" against real llama.cpp's Vulkan backend (a GPU split graph).

model_specs/llamacpp/grid-vulkan.json is llama-cpp-python 0.3.36 built with GGML_VULKAN, offloading to Mesa's software
Vulkan driver (lavapipe) every layer (and, once per model, half of them): llama.cpp splits the graph between the
Vulkan device and the CPU and prints a device (Vulkan0) and a host (Vulkan_Host) compute buffer, as on a GPU.
`python -m app.measure llamacpp-grid --backend vulkan --python <venv with that build>` regenerates it (README).
Model, KV, recurrent-state and output buffers must equal what llama.cpp printed, per side where a real load split them;
the compute buffers, device and host, must never be under. Skips where the table has no Vulkan rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.estimator.gguf.arch import ARCHS, SLUG_ARCH
from app.estimator.kv_cache import KV_TYPES
from app.estimator.llamacpp_check import GpuGridCheck, check_gpu_grid, load_grid, mib, request_for_gpu
from app.estimator.runtimes.llamacpp_compute import _split_host
from app.estimator.runtimes.llamacpp_context import resolve_context
from app.measure.llamacpp_gguf import write_sparse_gguf
from app.measure.llamacpp_grid import BACKEND_RUNS, MODELS_VULKAN, OUT, probe, specs, vulkan_layer_env

GRID = load_grid(OUT / "grid-vulkan.json")
pytestmark = pytest.mark.skipif(not any(r.get("backend") == "vulkan" for r in GRID["rows"]),
                                reason="model_specs/llamacpp/grid-vulkan.json has no Vulkan rows")


@pytest.fixture(scope="module")
def checks() -> list[GpuGridCheck]:
    return check_gpu_grid(GRID, specs())


def test_the_vulkan_grid_covers_the_issue(checks: list[GpuGridCheck]):
    """The 2026 architectures and two older models, fully and partly offloaded, dry runs and real loads, each row
    a split graph on a Vulkan device (llama.cpp printed a Vulkan0 and a host compute buffer)."""
    assert all(r["rc"] == 0 for r in GRID["rows"]), [(r["model"], r["params"]) for r in GRID["rows"] if r["rc"]]
    assert {c.row["model"] for c in checks} >= set(MODELS_VULKAN)
    assert {c.row["arch"] for c in checks} >= {"qwen35", "qwen35moe", "nemotron_h", "lfm2", "gemma4", "llama4",
                                                "gpt-oss", "llama", "qwen3moe"}
    assert {c.row["mode"] for c in checks} == {"dry_run", "alloc"}
    full = [c for c in checks if c.row["params"]["n_gpu_layers"] > c.row["n_layer"]]
    partial = [c for c in checks if c.row["params"]["n_gpu_layers"] <= c.row["n_layer"]]
    assert full and partial
    assert all(c.printed[("compute", "gpu")] > 0 and c.printed[("compute", "host")] > 0 for c in checks)
    assert all("Vulkan0" in c.row.get("devices", {}) for c in checks)
    assert GRID["versions"]["llama_cpp_commit"] != "unknown"


@pytest.mark.parametrize("kind", ["model", "kv", "rs", "output"])
def test_buffers_equal_what_llama_cpp_printed(checks: list[GpuGridCheck], kind: str):
    """Per side (device, host) on real loads; dry runs: the model to the byte (llama_model_size), KV and RS both
    sides together (llama.cpp's `size =` lines)."""
    wrong = [(c.label, {k: (c.printed[k], c.ours[k]) for k in c.printed if k[0] == kind}) for c in checks
             if not c.exact(kind)]
    assert not wrong


def test_partial_offload_splits_the_buffers_as_llama_cpp(checks: list[GpuGridCheck]):
    """Half the layers offloaded, a real load: weights, KV and states on each side as llama.cpp put them."""
    real = [c for c in checks if c.row["mode"] == "alloc" and c.row["params"]["n_gpu_layers"] <= c.row["n_layer"]]
    assert real
    for c in real:
        assert c.printed[("model", "gpu")] > 0 and c.printed[("model", "host")] > 0, c.label
        assert all(c.exact(kind) for kind in ("model", "kv", "rs", "output")), (c.label, c.printed, c.ours)


@pytest.mark.parametrize("side", ["gpu", "host"])
def test_compute_buffers_never_under(checks: list[GpuGridCheck], side: str):
    """Erring low fails the user's load: on no row is our device or host compute buffer under llama.cpp's."""
    under = [(c.label, c.printed[("compute", side)], c.ours[("compute", side)]) for c in checks if c.under(side)]
    assert not under


def test_dry_run_equals_real_allocation():
    """llama.cpp's no_alloc pass prints the compute buffers a real load allocates, on the device and the host."""
    real = [r for r in GRID["rows"] if r.get("mode") == "alloc"]
    dry = {(r["model"], str(sorted(r["params"].items()))): r for r in GRID["rows"] if r.get("mode") == "dry_run"}
    assert real
    for r in real:
        d = dry[(r["model"], str(sorted(r["params"].items())))]
        assert r["compute_buffer"] == d["compute_buffer"] and r["output_buffer"] == d["output_buffer"]
        assert round(sum(r["kv_buffer"].values()), 2) == d["kv_size_mib"]


def _full(c: GpuGridCheck) -> bool:
    return c.row["params"]["n_gpu_layers"] > c.row["n_layer"]


def test_the_host_compute_buffer_is_the_graph_inputs(checks: list[GpuGridCheck]):
    """Full offload: the host buffer is what the source says the CPU holds (llamacpp_compute._split_host: inp_embd and
    the looked-up rows, the KQ masks, the V indices without flash attention, the int inputs), to 0.05 MiB on every
    row; nothing here is fitted."""
    catalog = specs()
    off = []
    for c in filter(_full, checks):
        lm, p = catalog[c.row["model"]].language_model, c.row["params"]
        ctx = resolve_context(lm, request_for_gpu(c.row), p["n_ctx"], KV_TYPES["fp16"], p["flash_attn"] == "on", 0)
        ours = mib(_split_host(lm, ctx, ARCHS.get(SLUG_ARCH.get(c.row["model"], ""))))
        if not 0 <= ours - c.printed[("compute", "host")] <= 0.05:
            off.append((c.label, c.printed[("compute", "host")], ours))
    assert not off


def test_device_compute_buffer_not_far_over_at_full_offload(checks: list[GpuGridCheck]):
    """The fit leaves no row under; at n_ctx 4096 (where the 2025 rules, kept for L2's older build, do not dominate)
    it overshoots by at most 20% (nemotron-h's n_parallel rows)."""
    over = [(c.label, c.printed[("compute", "gpu")], c.ours[("compute", "gpu")]) for c in filter(_full, checks)
            if c.row["params"]["n_ctx"] == 4096 and c.ours[("compute", "gpu")] > 1.2 * c.printed[("compute", "gpu")]]
    assert not over


VULKAN_PYTHON = os.environ.get("LLAMACPP_VULKAN_PYTHON")


@pytest.mark.skipif(not VULKAN_PYTHON, reason="LLAMACPP_VULKAN_PYTHON (python of a GGML_VULKAN build) unset")
def test_live_vulkan_reproduces_a_committed_row(tmp_path: Path):
    """Re-run one committed row (lfm2, every layer on the Vulkan device, FA on, n_ctx 4096) through the grid's own
    probe and limits layer: llama.cpp prints the same buffers again."""
    spec = specs()["lfm2.5-vl-1.6b"]
    written = write_sparse_gguf(spec, "q4_k_m", tmp_path / "lfm2.gguf")
    [row] = [r for r in GRID["rows"] if r["model"] == spec.slug and r["mode"] == "dry_run"
             and r["params"]["flash_attn"] == "on" and r["params"]["n_ctx"] == 4096 and r["params"]["n_ubatch"] == 512
             and r["params"]["n_parallel"] == 1 and r["params"]["n_gpu_layers"] > r["n_layer"]]
    (build := tmp_path / "layer").mkdir()
    env = {**BACKEND_RUNS["vulkan"].env, **vulkan_layer_env(build, 0xFFFFFFFF)}
    [(parsed, _raw)] = probe(written.path, [{**row["params"], "no_alloc": True}], python=VULKAN_PYTHON, env=env)
    assert parsed["rc"] == 0
    for key in ("compute_buffer", "output_buffer", "kv_size_mib", "rs_size_mib", "llama_model_size", "graph"):
        assert parsed[key] == row[key], key
