"""llm_int8_skip_modules through every door: the JSON body and query of /api/vram, the calculator's form, the `vram`
CLI; bad values are a 422 naming the field. The bytes themselves are held to transformers + bitsandbytes in
tests/test_bnb_weights.py (model_specs/bnb/weights.json skip_modules)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.catalog import SPECS_DIR
from tests.test_cli import vram

TABLE = json.loads((SPECS_DIR / "bnb" / "weights.json").read_text())
MEASURED = TABLE["skip_modules"]["gemma-3-4b-it vision"]  # lm_head, model.vision_tower, model.multi_modal_projector
BASE = {"model": "gemma-3-4b-it", "quantization": "bnb-int8"}


def _weights(r) -> int:
    assert r.status_code == 200, r.text
    return r.json()["breakdown"]["weights"]


def test_every_door_reads_the_list(client: TestClient):
    skip = MEASURED["llm_int8_skip_modules"]
    want = MEASURED["formats"]["bnb-int8"]["total_bytes"]  # bitsandbytes' own bytes
    body = client.post("/api/vram", json={**BASE, "llm_int8_skip_modules": skip})
    assert _weights(body) == want
    assert body.json()["request"]["llm_int8_skip_modules"] == skip
    assert f"llm_int8_skip_modules={json.dumps(skip)}" in body.json()["command"]
    assert _weights(client.get("/api/vram", params={**BASE, "llm_int8_skip_modules": ",".join(skip)})) == want
    assert _weights(client.post("/api/vram", data={**BASE, "llm_int8_skip_modules": ",".join(skip)})) == want
    cli = vram("estimate", BASE["model"], "--quantization", "bnb-int8", "--llm-int8-skip-modules", ",".join(skip),
               "--json")
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["breakdown"]["weights"] == want


def test_the_calculator_form_reads_the_list(client: TestClient):
    skip = ",".join(MEASURED["llm_int8_skip_modules"])
    page = client.get("/calculator", params={**BASE, "llm_int8_skip_modules": skip})
    assert page.status_code == 200
    assert 'name="llm_int8_skip_modules"' in page.text and f'value="{skip}"' in page.text
    assert "BitsAndBytesConfig(llm_int8_skip_modules=[" in page.text  # the estimate used it (its assumption line)
    bad = client.get("/calculator", params={**BASE, "llm_int8_skip_modules": "(a"})
    assert bad.status_code == 422 and 'id="err-llm_int8_skip_modules"' in bad.text and "allowed: dotted" in bad.text


def test_blank_text_is_the_default_and_an_empty_json_list_is_no_skips(client: TestClient):
    default = _weights(client.get("/api/vram", params=BASE))
    assert _weights(client.get("/api/vram", params={**BASE, "llm_int8_skip_modules": ""})) == default
    none = client.post("/api/vram", json={"model": "llama-3.1-8b-instruct", "quantization": "bnb-nf4",
                                          "llm_int8_skip_modules": []})
    mlp = TABLE["skip_modules"]["llama-3.1-8b-instruct mlp"]["formats"]["bnb-nf4"]["total_bytes"]
    assert _weights(none) == mlp  # ["mlp"] matches no linear: the same as no skips, lm_head quantized


@pytest.mark.parametrize("bad", ["(a+)+", "a.*.b.*", "*x", "lm_head,,x", "model/vision"])
def test_bad_entries_are_422_naming_the_field(client: TestClient, bad: str):
    for r in (client.get("/api/vram", params={**BASE, "llm_int8_skip_modules": bad}),
              client.post("/api/vram", json={**BASE, "llm_int8_skip_modules": bad.split(",")})):
        assert r.status_code == 422, r.text
        err = r.json()["detail"][0]
        assert err["loc"][-1] == "llm_int8_skip_modules" and "allowed: dotted names" in err["msg"]


def test_json_wants_a_list_and_at_most_64_entries(client: TestClient):
    text = client.post("/api/vram", json={**BASE, "llm_int8_skip_modules": "lm_head"})
    many = client.post("/api/vram", json={**BASE, "llm_int8_skip_modules": ["x"] * 65})
    for r in (text, many):
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "llm_int8_skip_modules", r.text


def test_a_model_whose_module_names_are_not_tabled_is_422(client: TestClient):
    r = client.get("/api/vram", params={"model": "glm-4v-9b", "quantization": "bnb-nf4",
                                        "llm_int8_skip_modules": "lm_head"})
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["loc"][-1] == "llm_int8_skip_modules" and "not modelled" in err["msg"]


@pytest.mark.parametrize("params", [{"quantization": "bf16"}, {"quantization": "bnb-nf4-dq"},
                                    {"quantization": "q4_k_m"}, {"quantization": "bf16", "runtime": "vllm"}])
def test_other_formats_and_runtimes_ignore_it(client: TestClient, params: dict):
    """Only formats transformers quantizes while loading read it (bnb-nf4-dq is a pre-quantized checkpoint's)."""
    plain = client.get("/api/vram", params={**BASE, **params})
    given = client.get("/api/vram", params={**BASE, **params, "llm_int8_skip_modules": "lm_head"})
    assert given.status_code == 200 and given.json()["breakdown"] == plain.json()["breakdown"]
    assert "llm_int8_skip_modules" not in given.json()["request"]
