"""The accuracy page's traced block in real Chromium at phone and laptop widths: every traced model has
its table, the eager-attention models say why their memory grows with the square of the length."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.catalog import SPECS_DIR
from app.estimator.traces import load_traces

pytestmark = pytest.mark.browser
TRACED = [f for f in load_traces(SPECS_DIR / "traces") if f.rows]


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_traced_block_shows_every_traced_model(server: str, browser, artifacts: Path, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{server}/accuracy#traced")
    section = page.locator("#traced")
    assert section.locator("table").count() == len(TRACED)
    assert section.locator("tbody tr").count() == sum(len(f.rows) for f in TRACED)
    text = section.inner_text()
    assert "grows with the square of the prompt length" in text
    assert "not yet measured on a GPU" in text and "trust_remote_code" in text
    page.screenshot(path=str(artifacts / f"accuracy-traced-{width}.png"), full_page=True)
    page.close()
