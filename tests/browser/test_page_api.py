"""The page and the API as a new user finds them, in Debian's Chromium at 390x844 and 1366x768: one vLLM
verdict everywhere, a URL that keeps every flag, your own config kept as the model, "not found" instead of
another model's numbers, and /docs executing both /api/vram operations. Screenshots in test-artifacts/."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.catalog import SPECS_DIR

pytestmark = pytest.mark.browser
SIZES = {"laptop": (1366, 768), "phone": (390, 844)}
GLM_2X4090 = ("model=glm-4v-9b&quantization=bf16&context=32768&gpu=rtx-4090&gpu_count=2"
              "&gpu_memory_utilization=0.95&runtime=vllm&vllm_version=0.19.0")  # the case as reported (0.19)


def _settled(page) -> None:
    page.wait_for_function("!document.querySelector('[data-result].pending, .htmx-request')")


def _total(page) -> int:
    return int(page.get_attribute("#breakdown", "data-total-bytes"))


@pytest.fixture(params=list(SIZES))
def page(request, browser):
    w, h = SIZES[request.param]
    p = browser.new_page(viewport={"width": w, "height": h})
    p.size_name = request.param
    external: list[str] = []
    p.on("request", lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:")) else None)
    yield p
    p.close()
    assert external == [], f"requests to another host: {external}"


def test_one_verdict_on_the_page(server: str, page, artifacts: Path):
    page.goto(f"{server}/calculator?{GLM_2X4090}")
    text = page.inner_text("#breakdown")
    assert "vLLM does not start" in text and "Does not start: short by" in text
    assert "fits, with" not in text and "vLLM claims" not in text and "KV budget of 0 tokens" not in text
    page.screenshot(path=str(artifacts / f"verdict-no-start-{page.size_name}.png"), full_page=False)
    page.fill("#gpu_memory_utilization", "0.85")  # now it starts: every element says so
    page.wait_for_function("document.querySelector('#breakdown .verdict').classList.contains('yes')")
    _settled(page)
    text = page.inner_text("#breakdown")
    assert "starts and fits" in text and "Does not start" not in text and "vLLM claims" in text


def test_the_url_keeps_every_flag(server: str, page, artifacts: Path):
    page.goto(f"{server}/calculator?model=llama-3.1-8b&quantization=q4_k_m&runtime=llama.cpp&gpu=rtx-4090")
    before = _total(page)
    page.click("#options-llamacpp summary") if not page.is_visible("#n_gpu_layers") else None
    page.fill("#n_gpu_layers", "10")
    page.wait_for_function(f"document.querySelector('#breakdown').dataset.totalBytes !== '{before}'")
    _settled(page)
    changed = _total(page)
    assert "n_gpu_layers=10" in page.url
    page.reload()
    assert _total(page) == changed and page.input_value("#n_gpu_layers") == "10"
    full = page.get_attribute("#breakdown a.full", "href")
    api = page.get_attribute("#breakdown a.json", "href")
    assert "n_gpu_layers=10" in full and "n_gpu_layers=10" in api
    assert httpx.get(server + api).json()["total_bytes"] == changed
    if page.size_name == "phone":  # the total is on the first screen, and stays in view while editing
        assert page.is_visible(".mini-total")
        box = page.locator(".mini-total").bounding_box()
        assert box["y"] + box["height"] <= 844
        page.locator("#n_ubatch").scroll_into_view_if_needed()
        box = page.locator(".mini-total").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844
    else:  # sticky beside the controls
        page.locator("#n_ubatch").scroll_into_view_if_needed()
        box = page.locator("#vram-total").bounding_box()
        assert 0 <= box["y"] <= 768
    page.screenshot(path=str(artifacts / f"url-state-{page.size_name}.png"), full_page=False)


def test_your_config_stays_the_model(server: str, page, artifacts: Path):
    config = (SPECS_DIR / "configs" / "qwen3-14b" / "config.json").read_text()
    page.goto(f"{server}/calculator?model=glm-4v-9b")
    page.fill("#config", config)
    page.click("#config-go")
    page.wait_for_selector("#own-note:not([hidden])")
    _settled(page)
    ours = _total(page)
    api = httpx.post(f"{server}/api/vram", json={"config": json.loads(config), "context": 1024,
                                                  "quantization": "bf16"}).json()
    assert "GLM-4V-9B" not in page.inner_text("#breakdown .total")
    page.fill("#context", "4096")  # a change of the options re-estimates the config, not GLM-4V-9B
    page.wait_for_function(f"document.querySelector('#breakdown').dataset.totalBytes !== '{ours}'")
    _settled(page)
    assert "GLM-4V-9B" not in page.inner_text("#breakdown .total")
    assert "4,096 tokens" in page.inner_text("#breakdown .total")
    assert page.inner_text("#context-size") == "4,096"
    assert "your pasted config.json" in page.inner_text("#own-note")
    with_ctx = httpx.post(f"{server}/api/vram", json={"config": json.loads(config), "context": 4096,
                                                       "quantization": api["request"]["quantization"]}).json()
    assert _total(page) == with_ctx["total_bytes"]
    page.screenshot(path=str(artifacts / f"own-config-{page.size_name}.png"), full_page=False)
    page.click("#own-back")
    page.wait_for_function("document.querySelector('#own-note').hidden")
    page.wait_for_function("document.querySelector('#breakdown .total').textContent.includes('GLM-4V-9B')")


def test_a_model_not_in_the_catalog(server: str, page, artifacts: Path):
    page.goto(f"{server}/")
    page.fill("#repo", "llama 3.1 8b")
    page.click("form.repo button")
    page.wait_for_selector("#close-matches")
    assert "Llama-3.1-8B" in page.inner_text("#close-matches")
    assert not page.query_selector("#breakdown") and "GLM-4V-9B" not in page.inner_text("main")
    page.screenshot(path=str(artifacts / f"not-found-{page.size_name}.png"), full_page=True)
    page.goto(f"{server}/calculator?model=example-org/Not-In-The-Catalog-7B")  # a repo id the catalog lacks
    assert "Hugging Face Hub" in page.inner_text("#not-found-reason")
    assert not page.query_selector("#breakdown")


def _execute(page, op: str) -> str:
    block = page.locator(f"#operations-vram-{op}")
    block.locator(".opblock-summary").first.click()
    block.locator("button.try-out__btn").click()
    return block


def test_docs_execute_both_vram_operations(server: str, page, artifacts: Path):
    page.goto(f"{server}/docs")
    page.wait_for_selector("#operations-vram-vram_get_api_vram_get")
    block = _execute(page, "vram_get_api_vram_get")
    block.locator('tr[data-param-name="model"] input').fill("glm-4v-9b")
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200", block.locator(".live-responses-table").inner_text()
    block = _execute(page, "vram_post_api_vram_post")
    body = block.locator("textarea.body-param__text")
    body.fill('{"model": "glm-4v-9b"}')
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200", block.locator(".live-responses-table").inner_text()
    page.screenshot(path=str(artifacts / f"docs-{page.size_name}.png"), full_page=False)
    assert page.locator('a[href="/"]').count() >= 1  # a way back home


def test_a_disabled_choice_says_why(server: str, page):
    page.goto(f"{server}/calculator?model=llama-3.1-8b&quantization=q4_k_m")
    refused = page.locator("#runtime option[value=vllm]")
    assert refused.is_disabled() and "does not load" in refused.inner_text()
    page.select_option("#runtime", "llama.cpp")
    kv = page.locator("#kv_cache option[value=fp8]")
    assert kv.is_disabled() and "not on llama.cpp" in kv.inner_text()
    assert page.locator("#kv_cache_dtype").count() == 0  # one KV control: vLLM's --kv-cache-dtype is this select
