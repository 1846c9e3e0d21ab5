"""The card page's budgets: breakdown partial under 10 KB and 5 ms of server time; the whole card
(HTML, CSS, JS) under 100 KB. Server time is the partial's render path timed in-process (estimate +
template), beside the same request through the ASGI test client."""

from __future__ import annotations

import re
import statistics
import time

from fastapi.testclient import TestClient

from app.catalog import load_catalog
from app.estimator import VramRequest, estimate
from app.main import create_app
from app.rendering import TEMPLATES
from app.views import breakdown_context

FORM = {"model": "glm-4v-9b", "quantization": "q4_k_m", "context": "131072", "images": "1", "gpu": "rtx-4090"}


def _median_ms(fn, n: int = 300) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def run() -> dict:
    client = TestClient(create_app())
    catalog = load_catalog()
    spec = catalog.model("glm-4v-9b")
    template = TEMPLATES.get_template("partials/breakdown.html")
    req = VramRequest(**FORM)

    def render():
        template.render(breakdown_context(estimate(spec, req, catalog.gpus), oob=True))

    hx = {"HX-Request": "true", "HX-Current-URL": "http://127.0.0.1/models/glm-4v-9b"}
    partial = client.post("/api/vram", data=FORM, headers=hx)
    card = client.get("/models/glm-4v-9b", params={k: FORM[k] for k in ("quantization", "context", "images")})
    assets = {src: len(client.get(src).content) for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', card.text)}
    render()
    return {"partial_bytes": len(partial.content), "partial_render_ms": _median_ms(render),
            "partial_via_test_client_ms": _median_ms(lambda: client.post("/api/vram", data=FORM, headers=hx)),
            "card_html_bytes": len(card.content), "assets": assets,
            "card_total_bytes": len(card.content) + sum(assets.values()),
            "card_server_ms": _median_ms(lambda: client.get("/models/glm-4v-9b"), n=20)}


if __name__ == "__main__":
    r = run()
    print(f"partial: {r['partial_bytes']:,} bytes (< 10,000), server time {r['partial_render_ms']:.2f} ms "
          f"rendered in-process, {r['partial_via_test_client_ms']:.2f} ms through the ASGI test client (< 5 ms)")
    print(f"card: {r['card_html_bytes']:,} bytes HTML + " + " + ".join(f"{v:,} {k}" for k, v in r["assets"].items())
          + f" = {r['card_total_bytes']:,} bytes (< 100,000); full page {r['card_server_ms']:.1f} ms")
