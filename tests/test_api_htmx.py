"""One computation, two representations: HTMX gets the breakdown fragment, everyone else JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

FORM = {"model": "glm-4v-9b", "quantization": "q4_k_m", "context": "8192", "images": "1"}
HX = {"HX-Request": "true", "HX-Current-URL": "http://127.0.0.1:8000/models/glm-4v-9b"}


def test_fragment_and_json_carry_the_same_estimate(client: TestClient):
    frag = client.post("/api/vram", data=FORM, headers=HX)
    data = client.post("/api/vram", data=FORM).json()
    assert frag.headers["content-type"].startswith("text/html")
    assert frag.template.name == "partials/breakdown.html"
    assert frag.context["estimate"].total_bytes == data["total_bytes"]
    assert f'data-total-bytes="{data["total_bytes"]}"' in frag.text


def test_fragment_is_not_a_page(client: TestClient):
    text = client.post("/api/vram", data=FORM, headers=HX).text
    assert "<html" not in text and "<body" not in text
    assert text.lstrip().startswith('<section id="breakdown"') and 'aria-live="polite"' in text
    assert "GiB" in text


def test_vary_and_url_headers(client: TestClient):
    frag = client.post("/api/vram", data=FORM, headers=HX)
    assert frag.headers["Vary"] == "HX-Request"
    assert frag.headers["HX-Replace-Url"] == "/models/glm-4v-9b?quantization=q4_k_m&context=8192&images=1"
    assert client.get("/api/vram", params=FORM).headers["Vary"] == "HX-Request"
    calc = client.post("/api/vram", data=FORM, headers={**HX, "HX-Current-URL": "http://x/calculator"})
    assert calc.headers["HX-Replace-Url"].startswith("/calculator?model=glm-4v-9b&quantization=q4_k_m")


def test_fragment_updates_the_slider_label(client: TestClient):
    text = client.post("/api/vram", data=FORM, headers=HX).text
    assert '<output id="context-size" for="context" hx-swap-oob="true">8,192</output>' in text


def test_htmx_errors_stay_json_422(client: TestClient):
    r = client.post("/api/vram", data={**FORM, "context": "0"}, headers=HX)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "context"]
