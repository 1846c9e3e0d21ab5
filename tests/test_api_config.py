"""The API takes a model by slug or repo id (any case), or an inline config.json."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from app.catalog import SPECS_DIR


def _config(slug: str) -> dict:
    return json.loads((SPECS_DIR / "configs" / slug / "config.json").read_text())


def test_repo_id_any_case_answers_like_the_slug(client: TestClient):
    by_slug = client.get("/api/vram", params={"model": "qwen2.5-7b-instruct", "context": 8192}).json()
    for name in ("Qwen/Qwen2.5-7B-Instruct", "qwen/qwen2.5-7b-instruct", "QWEN2.5-7B-INSTRUCT"):
        r = client.get("/api/vram", params={"model": name, "context": 8192})
        assert r.status_code == 200, r.text
        assert r.json() == by_slug


def test_glm4v_by_its_own_hf_repo(client: TestClient):
    assert client.get("/api/vram", params={"model": "THUDM/glm-4v-9b"}).status_code == 200


def test_inline_config_gives_the_same_estimate(client: TestClient):
    body = {"context": 4096, "runtime": "vllm"}
    by_slug = client.post("/api/vram", json={**body, "model": "qwen3-14b"}).json()
    by_config = client.post("/api/vram", json={**body, "config": _config("qwen3-14b")}).json()
    assert by_config["breakdown"] == by_slug["breakdown"]
    assert by_config["total_bytes"] == by_slug["total_bytes"]
    assert by_config["detail"]["parameters"] == by_slug["detail"]["parameters"]


def test_weights_post_with_config(client: TestClient):
    by_get = client.get("/api/weights", params={"model": "openai/gpt-oss-20b"}).json()
    by_post = client.post("/api/weights", json={"config": _config("gpt-oss-20b")}).json()
    assert by_post["total_bytes"] == by_get["total_bytes"]
    assert by_post["quantization"] == "mxfp4"


def test_unknown_model_type_is_a_422_naming_the_field(client: TestClient):
    r = client.post("/api/vram", json={"config": {"model_type": "rwkv"}})
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "config.model_type"]
    assert "llama" in detail["ctx"]["allowed"]


def test_missing_key_is_a_422_naming_it(client: TestClient):
    config = _config("llama-3.1-70b")
    del config["intermediate_size"]
    r = client.post("/api/vram", json={"config": config})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "config.intermediate_size"]


def test_exactly_one_of_model_and_config(client: TestClient):
    assert client.post("/api/vram", json={"model": "qwen3-14b", "config": _config("qwen3-14b")}).status_code == 422
    assert client.post("/api/vram", json={}).status_code == 422
    assert client.post("/api/weights", json={}).status_code == 422


def test_unknown_repo_id_is_a_404(client: TestClient):
    assert client.get("/api/vram", params={"model": "nobody/nothing-7b"}).status_code == 404
