"""Our vLLM KV plan (app/estimator/runtimes/vllm_kv.py) against vLLM's own planning functions.

Expected values: model_specs/vllm/plan.json, written by `python -m app.measure vllm-plan` (vLLM's
get_kv_cache_configs + get_kv_cache_capacity on the per-layer KV specs vLLM's model classes produce; the
versions and the command are in the file). CI never installs vLLM: it reads the table. The live test at
the end reruns vLLM where a vLLM interpreter is available.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR, load_catalog
from app.estimator import vllm_kv_plan

TABLE_PATH = SPECS_DIR / "vllm" / "plan.json"
TABLE = json.loads(TABLE_PATH.read_text())
# Spec kinds our plan models today; hybrids (Mamba/GDN, chunked local) come with the per-layer cache branch.
SUPPORTED = {"FullAttentionSpec", "SlidingWindowSpec", "MLAAttentionSpec"}
KIND = {"FullAttentionSpec": "full", "SlidingWindowSpec": "sliding", "MLAAttentionSpec": "mla"}
MIN_COMPARED = 250  # rows compared to the token today (catalog models x settings); never vacuous


def _rows(model: dict) -> list[dict]:
    return [s for s in model["settings"] if "error" not in s]


def _kinds(model: dict) -> set[str]:
    return {k["spec"]["type"] for specs in model.get("layer_specs", {}).values() for k in specs}


def _why_not(model: dict, slugs: set[str]) -> str | None:
    """Why a table model is not compared (None: it is)."""
    if not _rows(model):
        return f"vLLM gave no plan for {model['name']}: {model['errors'][0]['error'][:120] if model['errors'] else ''}"
    if model["name"] not in slugs:
        return f"{model['name']} is not in the catalog yet (its rows wait for slug {model['name']!r})"
    unsupported = _kinds(model) - SUPPORTED
    if unsupported:
        return f"{model['name']}: KV spec kinds {sorted(unsupported)} are not modelled by vllm_kv yet"
    return None


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _ours(spec, row: dict):
    return vllm_kv_plan(spec, vllm_version=TABLE["versions"]["vllm"], max_model_len=row["max_model_len"],
                        kv_budget_bytes=row["kv_bytes"], block_size=TABLE["inputs"]["block_size"],
                        kv_cache_dtype=row["kv_cache_dtype"], tensor_parallel_size=row["tp"],
                        max_num_batched_tokens=TABLE["inputs"]["max_num_batched_tokens"])


def _mismatches(spec, model: dict) -> list[str]:
    bad = []
    for row in _rows(model):
        ours = _ours(spec, row)
        label = f"{model['name']} L={row['max_model_len']} kv={row['kv_bytes'] >> 30}GiB {row['kv_cache_dtype']} " \
                f"tp={row['tp']}"
        got = (ours.num_blocks, ours.tokens, ours.max_concurrency)
        want = (row["num_blocks"], row["tokens"], row["max_concurrency"])
        if got != want:
            bad.append(f"{label}: blocks/tokens/concurrency {got} != vLLM {want}")
        groups = sorted((g.kind, g.layers, g.page_bytes, g.blocks_per_request) for g in ours.groups)
        vgroups = sorted((KIND[g["type"]], g["layers"], g["layer_page_size_bytes"], g["blocks_per_request"])
                         for g in row["groups"])
        if groups != vgroups:
            bad.append(f"{label}: groups {groups} != vLLM {vgroups}")
    return bad


@pytest.mark.parametrize("name", [m["name"] for m in TABLE["models"]])
def test_plan_matches_vllm(name: str, catalog):
    """Blocks, tokens and concurrency equal vLLM's to the token; groups (kind, layers, page bytes, blocks one
    max_model_len request holds) equal vLLM's."""
    model = next(m for m in TABLE["models"] if m["name"] == name)
    why = _why_not(model, set(catalog.models))
    if why:
        pytest.skip(why)
    assert _mismatches(catalog.model(name), model) == []


def test_bytes_per_token_per_layer_match_vllm(catalog):
    """Every layer's KV bytes per token (TP 1) equal the page vLLM's own layer spec has, layer by layer."""
    from app.estimator.kv_cache import KV_TYPES
    from app.estimator.runtimes.vllm_kv import FULL_ATTENTION_FAMILIES, layer_kv

    compared = 0
    for model in TABLE["models"]:
        if _why_not(model, set(catalog.models)):
            continue
        spec = catalog.model(model["name"])
        for dtype, kinds in model["layer_specs"].items():
            ours = layer_kv(spec.language_model, KV_TYPES["fp8" if dtype == "fp8" else "bf16"], 1,
                            windows=spec.family not in FULL_ATTENTION_FAMILIES)
            theirs = [None] * sum(len(k["layers"]) for k in kinds)
            for k in kinds:
                for i in k["layers"]:
                    theirs[i] = (KIND[k["spec"]["type"]], k["spec"]["bytes_per_token"], k["spec"].get("sliding_window"))
            assert [(x.kind, x.bytes_per_token, x.window) for x in ours] == theirs, (model["name"], dtype)
            compared += len(theirs)
    assert compared >= 1000, compared


def test_enough_rows_are_compared(catalog):
    """The table covers the catalog; at least MIN_COMPARED rows are compared to the token."""
    slugs = set(catalog.models)
    compared = [r for m in TABLE["models"] if not _why_not(m, slugs) for r in _rows(m)]
    assert len(compared) >= MIN_COMPARED, len(compared)
    catalog_rows = [m for m in TABLE["models"] if m["origin"] == "catalog"]
    assert len(catalog_rows) == len(list((SPECS_DIR / "configs").glob("*/config.json")))


def test_table_names_its_provenance():
    assert TABLE["versions"]["vllm"] and TABLE["versions"]["torch"] and TABLE["versions"]["transformers"]
    assert TABLE["command"].startswith("python -m app.measure vllm-plan") and TABLE["date"]
    assert TABLE["inputs"]["block_size"] == 16 and TABLE["inputs"]["async_scheduling"] is True


def _vllm_python() -> str | None:
    env = os.environ.get("VLLM_PLAN_PYTHON")
    if env:
        return env
    return sys.executable if importlib.util.find_spec("vllm") is not None else None


LIVE = ("qwen3-8b", "gemma-3-1b-it", "gpt-oss-20b", "deepseek-v3")


@pytest.mark.skipif(_vllm_python() is None, reason="vLLM is not importable here and VLLM_PLAN_PYTHON is not set "
                    "(CI reads the committed table only)")
def test_live_vllm_reproduces_the_table(tmp_path: Path):
    out = tmp_path / "plan.json"
    subprocess.run([sys.executable, "-m", "app.measure", "vllm-plan", "--python", _vllm_python(), "--only", *LIVE,
                    "--out", str(out)], check=True, capture_output=True)
    live = {m["name"]: m for m in json.loads(out.read_text())["models"]}
    for model in TABLE["models"]:
        if model["name"] in LIVE:
            assert _rows(live[model["name"]]) == _rows(model), model["name"]
