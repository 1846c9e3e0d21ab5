"""The /logs page in real Chromium: drop a real log file (read in the browser), compare, copy the command;
and the same page without JavaScript (form post)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "logs" / "l1_ollama_0.5.4_llama31_8b_q4km.log"


@pytest.mark.parametrize("size", [(390, 844), (1366, 768)], ids=["phone", "laptop"])
def test_logs_page_file_to_comparison(server: str, browser, artifacts: Path, size):
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    external = []
    page.on("request", lambda r: None if r.url.startswith((server, "data:")) else external.append(r.url))
    page.goto(f"{server}/logs")
    page.set_input_files("#logfile", str(FIXTURE))  # read client-side into the textarea
    page.wait_for_function("document.querySelector('#log').value.length > 1000")
    page.click("button[type=submit]")
    page.wait_for_selector("table.terms")
    text = page.inner_text("#log-report")
    assert "4403.49 MiB" in text and "weights on GPU" in text
    assert "runpod-volume" not in page.content()
    assert page.inner_text("#log-command").startswith("llama-server ")
    page.screenshot(path=str(artifacts / f"logs-{size[0]}x{size[1]}.png"), full_page=True)
    assert not external


def test_logs_page_without_javascript(server: str, browser, artifacts: Path):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{server}/logs")
    page.fill("#log", FIXTURE.read_text())
    page.click("button[type=submit]")
    page.wait_for_selector("table.terms")
    assert "KV cache" in page.inner_text("table.terms")
    context.close()
