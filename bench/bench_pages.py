"""The card page's budgets, server side: the card's HTMX update (one request per change: breakdown,
table highlight, and table + chart only when their numbers change) in bytes and server time, beside
the bare breakdown partial of /api/vram measured in the same run as the baseline; the whole card's
bytes on the wire (static files gzipped). Browser timings (change -> updated breakdown in Chromium)
come from tests/browser/test_card.py::test_budgets, written to test-artifacts/budgets-browser.json."""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient
from starlette.datastructures import QueryParams

from app.main import create_app
from bench import results_file

CARD = "/models/glm-4v-9b"
STATE = {"quantization": "q4_k_m", "context": "131072", "images": "1", "gpu": "rtx-4090"}
HX = {"HX-Request": "true", "HX-Current-URL": f"http://127.0.0.1{CARD}"}


def _median_ms(fn, n: int = 200) -> float:
    """Median of `fn(i)` over i = 0 .. n - 1 (each call can ask its own state)."""
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _render_ms(n: int = 200) -> dict[str, float]:
    """Server time without the HTTP layer: the card's state, context and template for a new context each call,
    the full page and the HTMX update (what the route computes on a miss; app/web/pages.py)."""
    from app.catalog import load_catalog
    from app.web.rendering import TEMPLATES
    from app.web.views import card_context, card_state

    catalog = load_catalog()
    spec = catalog.model(CARD.rsplit("/", 1)[1])
    page, update = TEMPLATES.get_template("card.html"), TEMPLATES.get_template("partials/card_update.html")

    def render(template, i: int, **extra) -> str:
        state = card_state(spec, catalog, QueryParams({**STATE, "context": str(20000 + i)}))
        return template.render({**card_context(spec, catalog, state), "error": None, **extra})

    return {"card_page_render_ms": _median_ms(lambda i: render(page, i), n),
            "card_update_render_ms": _median_ms(lambda i: render(update, n + i, table_changed=False), n)}


def run() -> dict:
    client = TestClient(create_app())
    card = client.get(CARD, params=STATE)
    key = re.search(r'name="table_key" value="([^"]*)"', card.text)[1]
    typical = {**STATE, "quantization": "q8_0", "table_key": key}  # a change that keeps the table's numbers
    fresh = {**STATE, "images": "0", "table_key": key}  # a change that needs a new table
    api_form = {"model": "glm-4v-9b", **STATE}
    static = {}
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', card.text):
        r = client.get(src, headers={"Accept-Encoding": "gzip"})
        static[src] = r.num_bytes_downloaded

    def new(params: dict, i: int, base: int) -> dict:  # a context no request asked before: a computed answer
        return {**params, "context": str(base + i)}

    return {
        "update_bytes": len(client.get(CARD, params=typical, headers=HX).content),
        "update_with_table_bytes": len(client.get(CARD, params=fresh, headers=HX).content),
        "update_ms": _median_ms(lambda i: client.get(CARD, params=new(typical, i, 1000), headers=HX)),
        "update_with_table_ms": _median_ms(lambda i: client.get(CARD, params=new(fresh, i, 2000), headers=HX)),
        "card_page_ms": _median_ms(lambda i: client.get(CARD, params=new(STATE, i, 3000))),
        "kept_update_ms": _median_ms(lambda i: client.get(CARD, params=typical, headers=HX)),
        "baseline_api_partial_ms": _median_ms(lambda i: client.post("/api/vram", data=new(api_form, i, 4000),
                                                                    headers=HX)),
        "baseline_healthz_ms": _median_ms(lambda i: client.get("/healthz")),
        **_render_ms(),
        "card_html_bytes": card.num_bytes_downloaded, "static": static,
        "card_total_bytes": card.num_bytes_downloaded + sum(static.values()),
    }


def main(out: Path | None = None) -> dict:
    before = results_file.load_average()
    r = run()
    print(f"card update (typical change, a new context each time): {r['update_bytes']:,} bytes, "
          f"{r['update_ms']:.2f} ms median through the ASGI test client; with a new table and chart: "
          f"{r['update_with_table_bytes']:,} bytes, {r['update_with_table_ms']:.2f} ms; the same update kept: "
          f"{r['kept_update_ms']:.2f} ms; whole card page {r['card_page_ms']:.2f} ms; baselines: /api/vram "
          f"breakdown partial {r['baseline_api_partial_ms']:.2f} ms, /healthz {r['baseline_healthz_ms']:.2f} ms")
    print(f"server render without HTTP (state, context, template): card page {r['card_page_render_ms']:.2f} ms, "
          f"card update {r['card_update_render_ms']:.2f} ms (targets < 5 ms: "
          f"{'met' if max(r['card_page_render_ms'], r['card_update_render_ms']) < 5 else 'MISSED'})")
    print(f"card on the wire: {r['card_html_bytes']:,} bytes HTML + "
          + " + ".join(f"{v:,} {k}" for k, v in r["static"].items())
          + f" = {r['card_total_bytes']:,} bytes (< 100,000)")
    results_file.write("pages", r, out, before)
    return r


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=None, help="folder for the results file (default bench/results)")
    main(p.parse_args().out)
