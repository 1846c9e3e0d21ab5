"""The vLLM runtime plans Mamba/GDN hybrids as vLLM does: the block size it runs with, its KV cache groups and
the capacity vLLM logs for a block count, against vLLM 0.32.0's own planning (model_specs/vllm/plan.json,
tests/test_vllm_plan.py)."""

from __future__ import annotations

import json

import pytest

from app.catalog import SPECS_DIR, load_catalog
from app.estimator import VramRequest, estimate
from app.estimator.kv_cache import KV_TYPES
from app.estimator.quantization import FORMATS
from app.estimator.runtimes import vllm_flags, vllm_kv

TABLE = json.loads((SPECS_DIR / "vllm" / "plan.json").read_text())
KIND = {"FullAttentionSpec": "full", "SlidingWindowSpec": "sliding", "MambaSpec": "mamba"}


def _hybrids() -> list[dict]:
    """Catalog hybrids of the table whose SSM state dtype the table holds as vLLM resolves it on a GPU (no
    mamba_ssm_dtype in the config: see tests/test_vllm_plan.py ssm_dtype for the others)."""
    catalog = load_catalog()
    out = []
    for m in TABLE["models"]:
        if not m.get("is_hybrid") or m["name"] not in catalog.models:
            continue
        if catalog.model(m["name"]).language_model.state_dtype is None:
            out.append(m)
    return out


HYBRIDS = _hybrids()


def test_hybrids_are_covered():
    assert {m["name"] for m in HYBRIDS} >= {"qwen3-next-80b-a3b-instruct", "lfm2.5-vl-1.6b"}


@pytest.mark.parametrize("name", [m["name"] for m in HYBRIDS])
def test_runtime_groups_and_capacity_match_vllm(name: str):
    catalog = load_catalog()
    spec, model = catalog.model(name), next(m for m in HYBRIDS if m["name"] == name)
    compared = 0
    for row in model["settings"]:
        if "error" in row or row["tp"] != 1:
            continue
        kv = "fp8" if row["kv_cache_dtype"].startswith("fp8") else "bf16"
        req = VramRequest(model=name, runtime="vllm", vllm_version=TABLE["versions"]["vllm"],
                          max_model_len=row["max_model_len"], kv_cache_dtype=row["kv_cache_dtype"],
                          max_num_batched_tokens=TABLE["inputs"]["max_num_batched_tokens"])
        f = vllm_flags.resolve(spec, FORMATS["bf16"], KV_TYPES[kv], req, row["max_model_len"], None, None)
        assert f.block_size == model["block_size"]["fp8" if kv == "fp8" else "auto"], (name, kv)
        per_request = [vllm_kv.blocks_per_request(g, f.block_size, row["max_model_len"], f.in_flight)
                       for g in f.kv_groups]
        ours = sorted((g.kind, g.layers, b) for g, b in zip(f.kv_groups, per_request, strict=True))
        assert ours == sorted((KIND[g["type"]], g["layers"], g["blocks_per_request"]) for g in row["groups"])
        tokens, concurrency = vllm_kv.capacity(f.kv_release, f.kv_groups, row["num_blocks"], f.block_size,
                                               row["max_model_len"], f.in_flight)
        assert (tokens, concurrency) == (row["tokens"], row["max_concurrency"]), (name, row)
        compared += 1
    assert compared >= 4


def test_answer_explains_state_pages():
    """The notes say where the recurrent state went: padded pages in the pool, counted in the blocks and the
    concurrency but not in vLLM's logged tokens."""
    catalog = load_catalog()
    name = "qwen3-next-80b-a3b-instruct"
    e = estimate(catalog.model(name), VramRequest(model=name, runtime="vllm", vllm_version="0.32.0",
                                                  max_model_len=8192, context=8192), catalog.gpus)
    assert e.vllm.block_size == 544  # plan.json: vLLM raised --block-size 16 to 544 for this model
    note = next(a for a in e.assumptions if a.startswith("recurrent states: vLLM keeps"))
    assert "544 tokens" in note and "GPU KV cache size" in note
