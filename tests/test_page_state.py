"""The calculator's URL holds the whole state (runtime flags included), a model the catalog lacks gets a
"not found" page (close matches, the Hub's answer) and never another model's figures, and one bad URL field
keeps the valid ones while every bad one is named."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient

HX = {"HX-Request": "true"}
HTML = {"accept": "text/html"}


def _total(html: str) -> int:
    return int(re.search(r'data-total-bytes="(\d+)"', html).group(1))


def _link(html: str, cls: str) -> str:
    return unescape(re.search(rf'<a href="([^"]+)"[^>]*class="{cls}"', html).group(1))


def test_the_url_keeps_every_runtime_flag(client: TestClient):
    llama = {"model": "llama-3.1-8b", "quantization": "q4_k_m", "runtime": "llama.cpp", "gpu": "rtx-4090",
             "n_gpu_layers": "20", "n_parallel": "4"}
    posted = client.post("/api/vram", data=llama, headers={**HX, "HX-Current-URL": "http://t/calculator"})
    assert posted.status_code == 200
    url = posted.headers["HX-Replace-Url"]
    assert "n_gpu_layers=20" in url and "n_parallel=4" in url
    reloaded = client.get(url, headers=HTML)
    assert _total(reloaded.text) == _total(posted.text)  # reloading or sharing gives the same number
    full, api = _link(reloaded.text, "full"), _link(reloaded.text, "json")
    assert "n_gpu_layers=20" in full and "n_gpu_layers=20" in api
    assert client.get(api).json()["total_bytes"] == _total(posted.text)
    vllm = {"model": "llama-3.1-8b", "runtime": "vllm", "gpu": "h100-80gb", "gpu_memory_utilization": "0.5",
            "block_size": "32", "max_num_seqs": "64"}
    posted = client.post("/api/vram", data=vllm, headers={**HX, "HX-Current-URL": "http://t/calculator"})
    url = posted.headers["HX-Replace-Url"]
    assert all(f"{k}={v}" in url for k, v in vllm.items() if k != "model")
    assert _total(client.get(url, headers=HTML).text) == _total(posted.text)


def test_the_cards_typed_memory_reaches_the_full_calculator(client: TestClient):
    card = client.get("/models/glm-4v-9b", params={"gpu_memory": "20"}, headers=HTML).text
    full = _link(card, "full")
    assert "gpu_memory=20" in full
    page = client.get(full, headers=HTML).text
    assert 'id="gpu_memory"' in page and 'value="20' in page
    assert "20.00 GiB" in page or "20 GiB" in page


def test_a_model_not_in_the_catalog_is_not_found(client: TestClient):
    for name in ("llama 3.1 8b", "example-org/Not-In-The-Catalog-7B"):
        r = client.get("/calculator", params={"model": name}, headers=HTML)
        assert r.status_code == 404
        assert 'id="breakdown"' not in r.text and "GLM-4V-9B" not in r.text  # never another model's figures
    spaced = client.get("/calculator", params={"model": "llama 3.1 8b"}, headers=HTML).text
    matches = re.search(r'<ul class="matches" id="close-matches">(.*?)</ul>', spaced, re.S).group(1)
    assert '<a href="/models/llama-3.1-8b">Llama-3.1-8B</a>' in matches
    repo = client.get("/calculator", params={"model": "example-org/Not-In-The-Catalog-7B"}, headers=HTML).text
    assert "Hugging Face Hub" in repo and "not in the catalog" in repo  # the Hub was tried (off in tests)
    home = client.get("/go", params={"repo": "llama 3.1 8b"}, headers=HTML)  # the home page's box
    assert home.status_code == 404 and "Llama-3.1-8B" in home.text


def test_bad_url_fields_are_each_named_and_the_good_ones_kept(client: TestClient):
    r = client.get("/calculator", params={"model": "llama-3.1-8b", "context": "abc", "batch": "2",
                                          "n_ubatch": "0", "images": "5"}, headers=HTML)
    assert r.status_code == 422
    banners = re.findall(r'<p class="error" role="alert"[^>]*>(.*?)</p>', r.text, re.S)
    assert len(banners) == 1
    for name in ("context", "n_ubatch", "images"):
        assert f"<strong>{name}</strong>" in banners[0]
        assert re.search(rf'id="err-{name}" role="alert">[^<]+', r.text), name
    assert "batch 2" in r.text  # the valid field is kept
    ok = client.get("/calculator", params={"model": "llama-3.1-8b", "batch": "2"}, headers=HTML)
    assert ok.status_code == 200 and 'class="error"' not in ok.text


# --- one verdict: every element of the breakdown reads the answer's own decision ---
GLM_2X4090 = {"model": "glm-4v-9b", "quantization": "bf16", "context": "32768", "gpu": "rtx-4090",
              "gpu_count": "2", "gpu_memory_utilization": "0.95", "runtime": "vllm",
              "vllm_version": "0.19.0"}  # the case as reported (0.19; from 0.34 on it starts)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_one_verdict_when_vllm_does_not_start(client: TestClient):
    api = client.get("/api/vram", params=GLM_2X4090).json()
    assert api["vllm"]["starts"] is False  # the decision this page must show everywhere
    for html in (client.get("/calculator", params=GLM_2X4090, headers=HTML).text,
                 client.post("/api/vram", data=GLM_2X4090, headers=HX).text):
        breakdown = _text(re.search(r'<section id="breakdown".*?</section>', html, re.S).group(0))
        assert "fits, with" not in breakdown and "vLLM claims" not in breakdown
        assert "vLLM does not start" in breakdown and "Does not start: short by" in breakdown
        assert 'class="verdict no"' in html
        assert "KV budget of 0 tokens" not in breakdown  # the KV row says why there is none
        assert "not reached: startup fails first" in breakdown
        assert "Fits on" not in breakdown  # no GPU list built from the total, which vLLM does not decide by
    starts = client.get("/calculator", params={**GLM_2X4090, "gpu_memory_utilization": "0.85"}, headers=HTML)
    assert client.get("/api/vram", params={**GLM_2X4090, "gpu_memory_utilization": "0.85"}).json()["vllm"]["starts"]
    assert 'class="verdict yes"' in starts.text and "Does not start" not in starts.text


def test_largest_context_counts_image_positions(client: TestClient):
    """GLM-4V-9B's config allows 8,192 positions (seq_length 8192); one image takes some of them."""
    api = client.get("/api/vram", params={"model": "glm-4v-9b", "images": "1", "context": "1"}).json()
    positions = api["detail"]["image_positions"]
    assert positions > 0
    card = client.get("/models/glm-4v-9b", params={"images": "1", "gpu": "h100-80gb"}, headers=HTML).text
    cells = re.findall(r'<td class="fit-col">([\d,]+) <small>\(model max\)</small></td>', card)
    assert cells and {int(c.replace(",", "")) for c in cells} == {8192 - positions}
    assert "8,192 <small>(model max)" not in card
