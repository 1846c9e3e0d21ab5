"""The card as a new user meets it, in Debian's Chromium at 390x844 and 1366x768: the seed card's own family
line and ranking (only there), wide tables that show they scroll (CSS only), formats that change nothing
listed disabled, and a context label that never names a context the numbers are not for (with and without
JavaScript). Screenshots in test-artifacts/polish-*.png."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
SIZES = {"laptop": (1366, 768), "phone": (390, 844)}
CARD = "/models/glm-4v-9b"


@pytest.fixture(params=list(SIZES))
def page(request, browser):
    w, h = SIZES[request.param]
    p = browser.new_page(viewport={"width": w, "height": h}, color_scheme="light")
    p.size_name = request.param
    yield p
    p.close()


def _settled(page) -> None:
    page.wait_for_function("!document.querySelector('[data-result].pending, .htmx-request')")


def _pixels(png: bytes) -> list[list[tuple[int, int, int]]]:
    """Rows of RGB pixels of an 8-bit, non-interlaced RGB(A) PNG (what Chromium's screenshots are)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            data += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(data), width * channels, [], bytearray(width * channels)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        prev = line
    return rows


def _painted(page, selector: str):
    """The scrolling box `selector`, scrolled into view and laid out. The VRAM table is content-visibility:auto: until
    it is near the viewport it is a placeholder (no scroll width, blank when screenshotted), so wait until its box
    stops changing (two frames with the same height and scroll width) before measuring it."""
    box = page.locator(selector)
    box.scroll_into_view_if_needed()
    page.evaluate("""async s => { const b = document.querySelector(s); let h = -1, w = -1;
        for (let i = 0; i < 60; i++) { await new Promise(r => requestAnimationFrame(r));
            const n = b.getBoundingClientRect().height, m = b.scrollWidth;
            if (n === h && m === w) return; h = n; w = m; } }""", selector)
    return box


def _edges(page, selector: str) -> tuple[float, float]:
    """Share of pixels unlike the page background in the outermost 2 px columns (left, right) of the
    scrolling box `selector`, over its table's rows."""
    box = _painted(page, selector)
    top = page.evaluate("""s => { const b = document.querySelector(s);
        return b.querySelector('table').getBoundingClientRect().top - b.getBoundingClientRect().top; }""", selector)
    rows = _pixels(box.screenshot())[max(0, int(top)):]
    bg = (255, 255, 255)  # the light theme's --bg

    def unlike(xs) -> float:
        cells = [row[x] for row in rows for x in xs]
        return sum(sum(abs(p - q) for p, q in zip(px, bg, strict=True)) > 30 for px in cells) / len(cells)

    width = len(rows[0])
    return unlike((0, 1)), unlike((width - 2, width - 1))


def test_family_line_and_ranking_only_on_the_seed_card(server: str, page, artifacts: Path):
    page.goto(f"{server}{CARD}")
    page.locator("section.ranking").scroll_into_view_if_needed()  # rendered when scrolled to
    page.wait_for_function("document.querySelector('#rank-h').innerText !== ''")
    assert page.inner_text("#fam-h") == "General Language Models from Z.ai"
    assert page.inner_text("#rank-h") == "Ranking is for Local LLMs."
    assert page.inner_text(".ranks").split() == ["Overall", "Rank", "-", "Coding", "Rank", "-"]
    page.screenshot(path=str(artifacts / f"polish-seed-family-{page.size_name}.png"))
    page.goto(f"{server}/models/glm-4-9b")
    page.locator("section.family").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#fam-h').innerText !== ''")
    assert page.inner_text("#fam-h") == "More models from Zhipu AI"
    assert page.locator("#rank-h").count() == 0 and page.locator(".ranks").count() == 0
    page.screenshot(path=str(artifacts / f"polish-other-family-{page.size_name}.png"))


def test_wide_tables_show_that_they_scroll(server: str, page, artifacts: Path):
    page.goto(f"{server}{CARD}?gpu=rtx-4090&images=1")
    for selector in ("#vram-table", ".discrepancies .scroll"):
        _painted(page, selector)  # laid out before its width is read (content-visibility:auto)
        wide = page.evaluate("s => { const b = document.querySelector(s); return b.scrollWidth > b.clientWidth; }",
                             selector)
        if page.size_name == "phone":
            assert wide, f"{selector} fits a phone: nothing to check"
        start = _edges(page, selector)
        name = selector.strip("#.").split()[0]
        page.locator(selector).screenshot(path=str(artifacts / f"polish-{name}-{page.size_name}-start.png"))
        page.evaluate("s => { const b = document.querySelector(s); b.scrollLeft = b.scrollWidth; }", selector)
        end = _edges(page, selector)
        page.locator(selector).screenshot(path=str(artifacts / f"polish-{name}-{page.size_name}-end.png"))
        if wide:  # shaded on the side there is more to see, plain on the side at its end
            assert start[1] > 0.6 and start[0] < 0.3, (selector, start)
            assert end[0] > 0.6 and end[1] < 0.3, (selector, end)
        else:  # nothing to scroll: no hint
            assert max(*start, *end) < 0.3, (selector, start, end)


def test_expert_formats_disabled_on_a_dense_model(server: str, page):
    page.goto(f"{server}{CARD}")
    for slug in ("mxfp4", "mxfp4_moe"):
        option = page.locator(f"#quantization option[value='{slug}']")
        assert option.is_disabled() and option.inner_text().endswith("(no MoE experts in this model)")
    assert page.locator("#vram-table tr[data-q^='mxfp4']").count() == 0
    page.goto(f"{server}/models/gpt-oss-20b")
    assert not page.is_disabled("#quantization option[value='mxfp4']")
    page.select_option("#quantization", "mxfp4_moe")
    page.wait_for_function("document.querySelector('#breakdown').dataset.state.startsWith('mxfp4_moe/')")


_WATCH = """() => { window.seen = [];
    const note = () => { const l = document.querySelector('#context-size'), b = document.querySelector('#breakdown');
        window.seen.push([l.textContent, l.classList.contains('pending'), b.dataset.state.split('/')[1]]); };
    new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                       attributes: true}); }"""


def _fmt(n: str) -> str:
    return f"{int(n):,}"


def test_context_label_changes_only_with_the_numbers(server: str, page, artifacts: Path):
    page.goto(f"{server}{CARD}")
    page.evaluate(_WATCH)
    held = []
    page.route(re.compile(r"/models/glm-4v-9b\?"), lambda route: held.append(route))
    page.click("#context", click_count=3)
    page.keyboard.type("5000", delay=80)  # each key an input event, answers held back
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "no request sent"
    assert page.input_value("#context") == "5000"
    assert page.inner_text("#context-size") == "1,024"  # the numbers shown are still for 1,024 tokens
    assert "1,024 tokens" in page.inner_text("#breakdown .total")
    page.screenshot(path=str(artifacts / f"polish-label-waiting-{page.size_name}.png"))
    for route in held:
        route.continue_()
    page.unroute(re.compile(r"/models/glm-4v-9b\?"))
    page.wait_for_function("document.querySelector('#breakdown').dataset.state === 'bf16/5000/0'")
    _settled(page)
    assert page.inner_text("#context-size") == "5,000"
    seen = page.evaluate("window.seen")
    assert seen and all(label == _fmt(ctx) and not pending for label, pending, ctx in seen), seen

    page.evaluate(_WATCH)  # the slider: its label may follow the drag, marked pending until the numbers come
    page.focus("#context-slider")
    for key in ("ArrowRight", "ArrowRight", "ArrowLeft", "End"):
        page.keyboard.press(key)
    page.wait_for_function("document.querySelector('#breakdown').dataset.state === 'bf16/131072/0'")
    _settled(page)
    seen = page.evaluate("window.seen")
    assert any(pending for _, pending, _ in seen), seen  # the drag showed its value, marked
    assert all(pending or label == _fmt(ctx) for label, pending, ctx in seen), seen
    assert page.inner_text("#context-size") == "131,072"
    assert not page.evaluate("document.querySelector('#context-size').classList.contains('pending')")


def test_context_label_without_javascript(server: str, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    page.goto(f"{server}{CARD}")
    page.fill("#context", "5000")
    assert page.inner_text("#context-size") == "1,024"  # nothing changes until the form is sent
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"context=5000"))
    assert page.inner_text("#context-size") == "5,000" and "5,000 tokens" in page.inner_text("#breakdown .total")
    page.close()
