"""POST /api/logs and the /logs page: real logs in, nothing personal out, clear 413/422."""

from __future__ import annotations

from pathlib import Path

from app.estimator import VramRequest, estimate
from app.estimator.commands import command_for

FIXTURES = Path(__file__).parent / "fixtures" / "logs"


def test_api_text_body_compares_and_scrubs(client):
    text = (FIXTURES / "v1_vllm0.19_llama31_8b_tp2.log").read_text()
    assert "10.129.9.32" in text
    r = client.post("/api/logs", content=text, headers={"content-type": "text/plain"})
    assert r.status_code == 200
    body = r.json()
    assert body["log"]["runtime"] == "vllm" and body["terms"]
    assert "10.129.9.32" not in r.text and "/data/.cache" not in r.text


def test_api_json_body_and_partial_log(client):
    r = client.post("/api/logs", json={"log": "llama_new_context_with_model: n_ctx      = 4096\n"})
    assert r.status_code == 200 and r.json()["log"]["settings"]["n_ctx"]["value"] == 4096
    assert "model buffers" in r.json()["log"]["missing"]


def test_api_refuses_empty_and_oversized(client):
    assert client.post("/api/logs", json={"nolog": 1}).status_code == 422
    assert client.post("/api/logs", content=b"{bad", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/api/logs", content=b"x" * (3 << 20)).status_code == 413


def test_page_form_post_without_js(client):
    assert client.get("/logs").status_code == 200
    text = (FIXTURES / "l1_ollama_0.5.4_llama31_8b_q4km.log").read_text()
    r = client.post("/logs", data={"log": text})
    assert r.status_code == 200
    assert "4403.49 MiB" in r.text and "Download as a test case" in r.text
    assert "runpod-volume" not in r.text and "127.0.0.1" not in r.text
    assert client.post("/logs", data={"log": ""}).status_code == 422


def test_every_estimate_carries_a_command(catalog):
    spec = catalog.model("llama-3.1-8b")
    cases = {"llama.cpp": ("q4_k_m", "llama-server -m "), "vllm": ("bf16", "vllm serve meta-llama/Llama-3.1-8B "),
             "transformers": ("bnb-nf4", "AutoModelForCausalLM.from_pretrained('meta-llama/Llama-3.1-8B'")}
    for runtime, (quant, start) in cases.items():
        est = estimate(spec, VramRequest(model=spec.slug, runtime=runtime, quantization=quant, context=4096))
        assert est.command.startswith(start), est.command
        assert est.command == command_for(est.request, spec, est)
        assert est.runtime_versions


def test_llama_server_flags_are_real_flags(catalog):
    spec = catalog.model("llama-3.1-8b")
    est = estimate(spec, VramRequest(model=spec.slug, quantization="q4_k_m", context=8192, flash_attention=False))
    flags = [w for w in est.command.split() if w.startswith("-")]
    # every flag is one of llama.cpp common/arg.cpp's names
    assert set(flags) <= {"-m", "-c", "-b", "-ub", "-fa", "-ctk", "-ctv", "-ngl", "-np", "-kvu", "--mmproj"}
    assert "-fa off" in est.command and "-ngl 33" in est.command


def test_download_as_test_case_is_scrubbed_json(client):
    import json
    import re
    from urllib.parse import unquote
    text = (FIXTURES / "v1_vllm0.19_llama31_8b_tp2.log").read_text()
    page = client.post("/logs", data={"log": text}).text
    href = re.search(r'href="data:application/json;charset=utf-8,([^"]+)"', page)[1]
    case = json.loads(unquote(href.replace("&amp;", "&")))
    assert case["runtime"] == "vllm" and case["terms"] and case["request"]["tensor_parallel_size"] == 2
    assert any(f["key"] == "kv_tokens" and f["printed"] == "1,044,688" for f in case["figures"])
    assert "10.129.9.32" not in json.dumps(case)


def test_page_names_what_the_log_lacks(client):
    """V4's excerpt names neither model nor release: the form supplies them; its paths never come back."""
    text = (FIXTURES / "v4_vllm0.7.3_v0_qwen25_7b_bnb_rtx4060.log").read_text()
    form = {"log": text, "model": "qwen2.5-7b-instruct", "quantization": "bnb-nf4-dq", "vllm_version": "0.7.3"}
    r = client.post("/logs", data=form)
    assert r.status_code == 200 and "activation peak" in r.text and "-1.05 GiB" in r.text
    assert "WORKSPACE" not in r.text and "lra-learning" not in r.text
    api = client.post("/api/logs", json=form).json()
    assert api["model"] == "qwen2.5-7b-instruct" and api["request"]["vllm_version"] == "0.7.3"
