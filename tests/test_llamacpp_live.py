"""A small live subset of the llama.cpp grid: runs only where llama-cpp-python is installed (README)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from app.catalog import Catalog
from app.estimator.llamacpp_check import check_row
from app.measure.llamacpp_gguf import write_sparse_gguf
from app.measure.llamacpp_grid import probe

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                reason="llama-cpp-python is not installed (pip install llama-cpp-python)")
POINTS = [{"n_ctx": 8192, "n_batch": 2048, "n_ubatch": 512, "flash_attn": fa, "n_parallel": 1,
           "kv_unified": False, "cache_type_k": "f16", "cache_type_v": "f16", "no_alloc": True}
          for fa in ("off", "on")]


def test_live_llama_cpp_agrees(catalog: Catalog, tmp_path: Path):
    spec = catalog.model("glm-4-9b-chat")
    written = write_sparse_gguf(spec, "q4_k_m", tmp_path / "glm.gguf")
    for p, (parsed, _raw) in zip(POINTS, probe(written.path, POINTS), strict=True):
        assert parsed["rc"] == 0
        row = {"model": spec.slug, "file_type": "q4_k_m", "mode": "dry_run", "params": p, **parsed}
        c = check_row(spec, row)
        assert c.exact("model") and c.exact("kv") and c.exact("output")
        assert abs(c.compute_error) <= 0.05


def test_live_hybrid_recurrent_states(catalog: Catalog, tmp_path: Path):
    """A 2026 hybrid (LFM2: short-conv layers with recurrent states beside attention): RS buffer exact too."""
    spec = catalog.model("lfm2.5-vl-1.6b")
    written = write_sparse_gguf(spec, "q4_k_m", tmp_path / "lfm2.gguf")
    points = [{**POINTS[1], "n_ctx": 4096}]
    (parsed, _raw), = probe(written.path, points)
    assert parsed["rc"] == 0 and parsed["rs_size_mib"] > 0
    c = check_row(spec, {"model": spec.slug, "file_type": "q4_k_m", "mode": "dry_run", "params": points[0], **parsed})
    assert all(c.exact(kind) for kind in ("model", "kv", "rs", "output")), (c.printed, c.ours)
