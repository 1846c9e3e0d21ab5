"""The GLM-4V card in real Chromium: choose Q4_K_M, move the slider with the keyboard, and check that
the page shows exactly what the API says for the state in the URL, without reloading."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

pytestmark = pytest.mark.browser
GIB = 2**30


def _shown_total(page) -> int:
    return int(page.get_attribute("#breakdown", "data-total-bytes"))


def test_card_quantization_and_keyboard_slider(server: str, browser, artifacts: Path):
    page = browser.new_page()
    external = []
    page.on("request", lambda r: None if r.url.startswith(server) else external.append(r.url))
    page.goto(f"{server}/models/glm-4v-9b")
    page.evaluate("window.__noReload = 'still here'")

    page.select_option("#quantization", "q4_k_m")
    page.wait_for_url(re.compile(r"quantization=q4_k_m"))

    page.focus("#context")
    for _ in range(7):  # 1,024 -> 8,192 in steps of 1,024
        page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"context=8192"))
    page.wait_for_function("document.querySelector('#context-size').textContent === '8,192'")

    state = parse_qs(urlsplit(page.url).query)
    assert state["quantization"] == ["q4_k_m"] and state["context"] == ["8192"]
    json_url = page.get_attribute("#breakdown a.json", "href")
    api = httpx.get(server + json_url).json()
    assert api["request"]["quantization"] == "q4_k_m" and api["request"]["context"] == 8192
    assert _shown_total(page) == api["total_bytes"]
    assert page.text_content("#total-gib") == f"{api['total_bytes'] / GIB:,.2f}"
    assert page.evaluate("window.__noReload") == "still here", "the page reloaded"
    assert page.get_attribute("#breakdown", "aria-live") == "polite"

    reloaded = browser.new_page()
    reloaded.goto(page.url)  # the URL alone reproduces the state, server-side
    assert _shown_total(reloaded) == api["total_bytes"]
    assert reloaded.input_value("#context") == "8192" and reloaded.input_value("#quantization") == "q4_k_m"

    page.screenshot(path=str(artifacts / "glm-4v-9b-card.png"), full_page=True)
    assert not external, external


def test_rapid_input_ends_on_the_last_state(server: str, browser):
    """Stale responses are dropped (hx-sync replace): after a burst the shown total is the last state's."""
    page = browser.new_page()
    page.goto(f"{server}/models/glm-4v-9b?quantization=q8_0")
    page.focus("#context")
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(r"context=21504"))
    page.wait_for_function("document.querySelector('#context-size').textContent === '21,504'")
    api = httpx.get(f"{server}/api/vram", params={"model": "glm-4v-9b", "quantization": "q8_0",
                                                  "context": 21504}).json()
    assert _shown_total(page) == api["total_bytes"]
    assert any("exceed the released model's trained context" in w for w in api["warnings"])
    assert "exceed the released model" in page.text_content("#breakdown")
