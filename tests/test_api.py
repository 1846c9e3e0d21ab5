"""The JSON contract of /api: shapes, defaults, and the 404/422 answers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

STATE = {"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192, "images": 1}


def test_vram_json_contract(client: TestClient):
    r = client.get("/api/vram", params=STATE)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body["breakdown"]) == {"weights", "kv_cache", "activations", "overhead"}
    assert body["total_bytes"] == sum(body["breakdown"].values())
    assert body["request"] == {**STATE, "batch": 1, "kv_cache": "fp16", "runtime": "llama.cpp",
                               "flash_attention": True, "gpu": None, "gpu_count": 1,
                               "mmproj": True}  # an image needs llama-server --mmproj
    assert body["detail"]["kv_bytes_per_token"] == 40_960 and body["detail"]["sequence_length"] == 9791
    assert body["assumptions"] and body["warnings"] and body["fits"]


def test_get_post_json_and_post_form_agree(client: TestClient):
    a = client.get("/api/vram", params=STATE).json()
    b = client.post("/api/vram", json=STATE).json()
    c = client.post("/api/vram", data={k: str(v) for k, v in STATE.items()}).json()
    assert a == b == c


def test_requested_gpu_answered_first(client: TestClient):
    body = client.get("/api/vram", params={**STATE, "gpu": "rtx-4090"}).json()
    assert body["fits"][0]["gpu"] == "rtx-4090"


@pytest.mark.parametrize(("params", "field", "says"), [
    ({"context": 0}, "context", "greater than or equal to 1"),
    ({"context": 10_000_001}, "context", "less than or equal to 10000000"),
    ({"context": "many"}, "context", "valid integer"),
    ({"batch": 4097}, "batch", "less than or equal to 4096"),
    ({"images": 2}, "images", "allowed: 0 to 1"),
    ({"quantization": "q9_k"}, "quantization", "q4_k_m"),
    ({"runtime": "transformers"}, "runtime", "llama.cpp"),
    ({"kv_cache": "q4_0", "runtime": "llama.cpp", "flash_attention": "false"}, "flash_attention", "flash attention"),
    ({"gpu": "rtx-9999"}, "gpu", "rtx-4090"),
    ({"gpu_count": 0}, "gpu_count", "greater than or equal to 1"),
    ({"contxt": 5}, "contxt", "Extra inputs are not permitted"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_bad_values_give_422_naming_the_field(client: TestClient, params: dict, field: str, says: str):
    r = client.get("/api/vram", params={**STATE, **params})
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][-1] == field and says in e["msg"] for e in errors), errors


def test_unknown_quantization_lists_every_valid_slug(client: TestClient):
    err = client.get("/api/vram", params={**STATE, "quantization": "q9_k"}).json()["detail"][0]
    assert {"fp16", "bnb-nf4", "gptq-int4", "q4_k_m", "iq1_m"} <= set(err["ctx"]["allowed"])


def test_unknown_model_is_404_pointing_to_catalog(client: TestClient):
    r = client.get("/api/vram", params={"model": "gpt-5"})
    assert r.status_code == 404 and "/api/models" in r.json()["detail"]
    assert client.get("/api/models/gpt-5").status_code == 404


def test_missing_model_and_bad_bodies_are_422(client: TestClient):
    assert client.get("/api/vram").status_code == 422
    bad_json = client.post("/api/vram", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 422
    assert client.post("/api/vram", json=[1, 2]).status_code == 422
    assert client.post("/api/vram", json={**STATE, "context": 10**30}).status_code == 422


def test_weights_endpoint(client: TestClient):
    body = client.get("/api/weights", params={"model": "llama-3.1-8b", "quantization": "q4_k_m"}).json()
    assert body["bits_per_weight"] == 4.8944 and body["stored_elements"] == 8_030_261_312
    assert sum(g["bytes"] for g in body["groups"]) == body["total_bytes"]
    assert client.get("/api/weights", params={"model": "llama-3.1-8b", "quantization": "q99"}).status_code == 422


def test_catalog_endpoints(client: TestClient):
    models = client.get("/api/models").json()
    assert {m["slug"] for m in models} >= {"glm-4v-9b", "llama-3.1-8b"}
    one = client.get("/api/models/glm-4v-9b").json()
    assert one["parameters"]["total"] == 13_906_320_896 and one["card"]["fields"] and one["discrepancies"]
    assert len(client.get("/api/quantizations").json()) >= 31
    assert len(client.get("/api/gpus").json()) >= 15
    assert client.get("/healthz").json()["status"] == "ok"


def test_openapi_documents_both_representations(client: TestClient):
    spec = client.get("/openapi.json").json()
    get = spec["paths"]["/api/vram"]["get"]
    assert {"application/json", "text/html"} <= set(get["responses"]["200"]["content"])
    post = spec["paths"]["/api/vram"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(post)
    assert client.get("/docs").status_code == 200


# --- strict, documented input (issue 15) ---

@pytest.mark.parametrize(("field", "value", "kind"), [
    ("context", True, "int_type"),
    ("context", "8192", "int_type"),
    ("context", 8192.0, "int_type"),
    ("images", False, "int_type"),
    ("flash_attention", 1, "bool_type"),
    ("flash_attention", "true", "bool_type"),
    ("quantization", 4, "string_type"),
])
def test_json_body_is_strict_about_types(client: TestClient, field: str, value: object, kind: str):
    r = client.post("/api/vram", json={**STATE, field: value})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [{"type": kind, "loc": ["body", field], "msg": r.json()["detail"][0]["msg"],
                                   "input": value}]


def test_query_and_form_strings_still_parse(client: TestClient):
    strings = {k: str(v) for k, v in STATE.items()} | {"flash_attention": "false", "batch": "2"}
    typed = {**STATE, "flash_attention": False, "batch": 2}
    want = client.post("/api/vram", json=typed).json()
    assert client.post("/api/vram", json={**typed, "flash_attention": True}).json() != want  # "false" is read
    assert client.get("/api/vram", params=strings).json() == want
    assert client.post("/api/vram", data=strings).json() == want


def test_multipart_form_body_gives_the_same_answer(client: TestClient):
    fields = {k: (None, str(v)) for k, v in STATE.items()}  # (no filename, value): plain multipart fields
    r = client.post("/api/vram", files=fields)
    assert r.request.headers["content-type"].startswith("multipart/form-data")
    assert r.status_code == 200, r.text
    assert r.json() == client.post("/api/vram", json=STATE).json()
    htmx = client.post("/api/vram", files=fields, headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and 'id="breakdown"' in htmx.text


def test_multipart_file_part_and_malformed_multipart_are_422(client: TestClient):
    fields = {k: (None, str(v)) for k, v in STATE.items()}
    r = client.post("/api/vram", files={**fields, "quantization": ("q.txt", b"q4_k_m")})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "quantization"]
    bad = client.post("/api/vram", content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data"})
    assert bad.status_code == 422 and "malformed form body" in bad.json()["detail"][0]["msg"], bad.text


def test_query_parameters_on_post_are_422_naming_them(client: TestClient):
    r = client.post("/api/vram", params={"context": "4096", "contxt": "1"}, json=STATE)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["query", "context"], ["query", "contxt"]]
    assert all("POST reads the body" in e["msg"] for e in r.json()["detail"])


def test_post_body_rules_are_in_the_openapi_document(client: TestClient):
    body = client.get("/openapi.json").json()["paths"]["/api/vram"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    assert "strict" in body["description"] and "422" in body["description"]


# A new user's report: non-finite JSON numbers crashed the 422 that echoes them (json.dumps refuses NaN).
@pytest.mark.parametrize("body", [
    '{"model": "qwen3-8b", "context": NaN}', '{"model": "qwen3-8b", "context": Infinity}',
    '{"model": "qwen3-8b", "context": 1e400}', '{"model": "qwen3-8b", "batch": -1e400}',
    '{"model": "qwen3-8b", "runtime": "vllm", "gpu_memory_utilization": NaN}',
])
def test_non_finite_json_numbers_are_a_422_not_a_500(client, body):
    r = client.post("/api/vram", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "body"


def test_pasted_repo_id_keeps_its_owner(client):
    r = client.get("/go", params={"repo": "someone/not-a-model"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/calculator?model=someone%2Fnot-a-model"
    page = client.get(r.headers["location"])  # not in the catalog, the Hub tried (off in tests): "not found"
    assert page.status_code == 404 and "someone/not-a-model" in page.text and "Hugging Face Hub" in page.text


def test_favicon_ico_points_at_the_svg(client):
    r = client.get("/favicon.ico", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/static/favicon.svg"


@pytest.mark.parametrize("model", ["llama-3.1-8b", "glm-4v-9b"])
def test_an_experts_only_format_on_a_dense_model_says_it_changes_nothing(client: TestClient, model: str):
    """MXFP4 (experts) quantizes MoE expert tensors only: on a model without experts the answer is the 16-bit one
    (its linears stay in the compute dtype), and a warning says so rather than showing it as a 4-bit figure."""
    mx = client.get("/api/vram", params={"model": model, "quantization": "mxfp4"}).json()
    bf = client.get("/api/vram", params={"model": model, "quantization": "bf16", "runtime": mx["request"]["runtime"]})
    assert mx["breakdown"]["weights"] == bf.json()["breakdown"]["weights"]
    assert any("MoE expert tensors only" in w and "16-bit" in w for w in mx["warnings"]), mx["warnings"]
    moe = client.get("/api/vram", params={"model": "gpt-oss-20b", "quantization": "mxfp4"}).json()
    assert not any("MoE expert tensors only" in w for w in moe["warnings"])
