"""The accuracy page's llama.cpp grid in real Chromium, phone and desktop: readable, nothing off-screen."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_llamacpp_grid_on_the_accuracy_page(server: str, browser, artifacts: Path, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{server}/accuracy#llamacpp")
    section = page.locator("#llamacpp")
    assert section.is_visible()
    rows = section.locator("tbody tr").count()
    assert rows >= 200
    assert "llama.cpp commit" in section.inner_text()
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= width + 1, page_width  # a wide table scrolls inside its box, not the page
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / f"accuracy-llamacpp-{width}.png"))  # the first screen of it
