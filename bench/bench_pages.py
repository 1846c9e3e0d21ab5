"""The card page's budgets, server side: the card's HTMX update (one request per change: breakdown,
table highlight, and table + chart only when their numbers change) in bytes and server time, beside
the bare breakdown partial of /api/vram measured in the same run as the baseline; the whole card's
bytes on the wire (static files gzipped). Browser timings (change -> updated breakdown in Chromium)
come from tests/browser/test_card.py::test_budgets, written to test-artifacts/budgets-browser.json."""

from __future__ import annotations

import re
import statistics
import time

from fastapi.testclient import TestClient

from app.main import create_app

CARD = "/models/glm-4v-9b"
STATE = {"quantization": "q4_k_m", "context": "131072", "images": "1", "gpu": "rtx-4090"}
HX = {"HX-Request": "true", "HX-Current-URL": f"http://127.0.0.1{CARD}"}


def _median_ms(fn, n: int = 200) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


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
    return {
        "update_bytes": len(client.get(CARD, params=typical, headers=HX).content),
        "update_with_table_bytes": len(client.get(CARD, params=fresh, headers=HX).content),
        "update_ms": _median_ms(lambda: client.get(CARD, params=typical, headers=HX)),
        "update_with_table_ms": _median_ms(lambda: client.get(CARD, params=fresh, headers=HX)),
        "baseline_api_partial_ms": _median_ms(lambda: client.post("/api/vram", data=api_form, headers=HX)),
        "card_html_bytes": card.num_bytes_downloaded, "static": static,
        "card_total_bytes": card.num_bytes_downloaded + sum(static.values()),
    }


if __name__ == "__main__":
    r = run()
    print(f"card update (typical change): {r['update_bytes']:,} bytes, {r['update_ms']:.2f} ms median through the "
          f"ASGI test client; with a new table and chart: {r['update_with_table_bytes']:,} bytes, "
          f"{r['update_with_table_ms']:.2f} ms; baseline /api/vram breakdown partial "
          f"{r['baseline_api_partial_ms']:.2f} ms")
    print(f"card on the wire: {r['card_html_bytes']:,} bytes HTML + "
          + " + ".join(f"{v:,} {k}" for k, v in r["static"].items())
          + f" = {r['card_total_bytes']:,} bytes (< 100,000)")
