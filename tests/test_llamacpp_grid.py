"""Our llama.cpp model against real llama.cpp on the committed grid (model_specs/llamacpp/grid.json).

The grid is real llama.cpp (llama-cpp-python's source build, CPU backend) loading header-exact sparse
GGUFs: `python -m app.measure llamacpp-grid` regenerates it (README: not run in CI; CI checks this
table). Model, KV, recurrent-state (RS) and output buffers must be equal to what llama.cpp printed (dry-run
rows: the model to the byte via llama_model_size); the CPU compute buffer never under and within 5%.
"""

from __future__ import annotations

import pytest

from app.estimator.llamacpp_check import GridCheck, check_grid, load_grid
from app.measure.llamacpp_grid import MODELS_2026, OUT, specs

GRID = load_grid(OUT / "grid.json")


@pytest.fixture(scope="module")
def checks() -> list[GridCheck]:
    return check_grid(GRID, specs())


def test_the_grid_covers_the_issue(checks: list[GridCheck]):
    archs = {c.row["arch"] for c in checks}
    models = {c.row["model"] for c in checks}
    assert len(models) >= 6 and {"llama", "qwen2", "gemma2", "chatglm", "qwen3moe"} <= archs
    assert {c.row["file_type"] for c in checks} >= {"q4_k_m", "q8_0", "q2_k"}
    assert {c.row["params"]["n_ctx"] for c in checks} >= {2048, 8192, 32768}
    assert all(r["rc"] == 0 for r in GRID["rows"]), [r["params"] for r in GRID["rows"] if r["rc"]]
    assert GRID["versions"]["llama_cpp_commit"] != "unknown"


def test_the_grid_covers_the_2026_architectures(checks: list[GridCheck]):
    """One catalog model per 2026 architecture the vendored llama.cpp loads; the hybrids print recurrent states."""
    archs = {c.row["arch"] for c in checks}
    assert {"qwen35", "qwen35moe", "nemotron_h", "lfm2", "gemma4", "llama4", "gpt-oss", "step35"} <= archs
    hybrids = [c for c in checks if c.row["arch"] in ("qwen35", "qwen35moe", "nemotron_h", "lfm2")]
    assert hybrids and all(c.printed["rs"] > 0 for c in hybrids)
    assert {c.row["file_type"] for c in checks if c.row["arch"] == "gpt-oss"} == {"mxfp4_moe"}
    assert {c.row["mode"] for c in hybrids} == {"dry_run", "alloc"}


@pytest.mark.parametrize("kind", ["model", "kv", "rs", "output"])
def test_buffers_equal_what_llama_cpp_printed(checks: list[GridCheck], kind: str):
    wrong = [(c.label, c.row["mode"], c.printed[kind], c.ours[kind]) for c in checks if not c.exact(kind)]
    assert not wrong


def test_context_resolves_as_llama_cpp_does(checks: list[GridCheck]):
    assert [c.label for c in checks if c.n_ctx[0] != c.n_ctx[1]] == []


# lfm2's fitted rows (COMPUTE_FIT in llamacpp_compute) cover n_ubatch 256/512 at n_ctx 4096, where llama.cpp's
# peak holds two n_embd rows more; at n_ubatch 1024 and n_ctx 16384 it holds none: over by 6.6% there (not under)
OVER_5_PERCENT = {("lfm2.5-vl-1.6b", 4096, 1024), ("lfm2.5-vl-1.6b", 16384, 512)}


def _key(c: GridCheck) -> tuple[str, int, int]:
    return c.row["model"], c.row["params"]["n_ctx"], c.row["params"]["n_ubatch"]


def test_compute_buffer_within_5_percent(checks: list[GridCheck]):
    """Every row, the 2026 architectures' included, except the two named lfm2 rows (held to 7%)."""
    worst = sorted(checks, key=lambda c: -abs(c.compute_error))[:5]
    assert all(abs(c.compute_error) <= 0.05 for c in checks if _key(c) not in OVER_5_PERCENT), \
        [(c.label, round(c.compute_error, 4)) for c in worst]
    over = [c for c in checks if _key(c) in OVER_5_PERCENT]
    assert over and all(0 <= c.compute_error <= 0.07 for c in over), [(c.label, c.compute_error) for c in over]


def test_compute_buffer_never_under(checks: list[GridCheck]):
    """Erring low fails the user's load: on no row is our compute buffer under what llama.cpp printed (MiB, 2
    decimals as printed)."""
    under = [(c.label, c.row["mode"], c.printed["compute"], c.ours["compute"]) for c in checks
             if c.ours["compute"] < c.printed["compute"]]
    assert not under


def test_the_2026_grid_varies_the_compute_buffer_inputs(checks: list[GridCheck]):
    """The fit in COMPUTE_FIT is checked beyond the points it was read from: n_ubatch, n_ctx and n_parallel vary."""
    rows = [c.row["params"] for c in checks if c.row["model"] in MODELS_2026]
    assert {p["n_ubatch"] for p in rows} >= {256, 512, 1024} and {p["n_ctx"] for p in rows} >= {4096, 16384}
    assert {p["n_parallel"] for p in rows} >= {1, 2, 4}


def test_dry_run_equals_real_allocation():
    """llama.cpp's no_alloc pass (what --fit uses) prints the sizes a real mmap load allocates."""
    real = [r for r in GRID["rows"] if r.get("mode") == "alloc"]
    dry = {(r["model"], r["file_type"], str(sorted(r["params"].items()))): r for r in GRID["rows"]
           if r.get("mode") == "dry_run"}
    assert real
    for r in real:
        d = dry[(r["model"], r["file_type"], str(sorted(r["params"].items())))]
        assert r["compute_buffer"] == d["compute_buffer"] and sum(r["kv_buffer"].values()) == d["kv_size_mib"]
        assert r["llama_model_size"] == d["llama_model_size"]
