"""The accuracy page's vLLM plan table in real Chromium, phone and desktop: readable, nothing off-screen."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_vllm_plan_table_on_the_accuracy_page(server: str, browser, artifacts: Path, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{server}/accuracy#vllm-plan")
    section = page.locator("#vllm-plan")
    assert section.is_visible()
    assert section.locator("tbody tr").count() >= 70  # one row per compared catalog model
    text = section.inner_text()
    assert "vLLM 0.32.0" in text and "vLLM 0.34.0" in text and "rows equal" in text
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= width + 1, page_width  # a wide table scrolls inside its box, not the page
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / f"accuracy-vllm-plan-{width}.png"))
    logs = page.locator("#log-cases")
    logs.scroll_into_view_if_needed()
    assert "The 2026 field cases: we are under" in logs.inner_text()
