"""Kept answers (app/web/answers.py): a repeated request of a catalog model gets the same bytes without being
recomputed; what can depend on more than the request and the catalog is never kept."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from starlette.responses import Response

from app.catalog import SPECS_DIR
from app.main import create_app
from app.web.answers import Answers

HX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/models/glm-4v-9b"}


@pytest.fixture()
def fresh() -> TestClient:
    """An app of its own: nothing kept yet."""
    return TestClient(create_app())


def _kept(client: TestClient) -> Answers:
    return client.app.state.answers  # type: ignore[attr-defined]


@pytest.mark.parametrize(("path", "params", "headers"), [
    ("/api/vram", {"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192, "images": 1, "gpu": "rtx-4090"},
     {}),
    ("/api/vram", {"model": "qwen3-30b-a3b", "runtime": "vllm", "context": 32768, "gpu_count": 2}, {}),
    ("/api/vram", {"model": "glm-4v-9b", "context": 4096}, HX),  # the HTMX breakdown
    ("/models/glm-4v-9b", {"context": 5000}, {}),  # the card page
    ("/models/glm-4v-9b", {"context": 5000, "quantization": "q8_0"}, HX),  # its HTMX update
])
def test_a_repeated_request_is_answered_with_the_same_bytes(fresh: TestClient, path, params, headers):
    first = fresh.get(path, params=params, headers=headers)
    second = fresh.get(path, params=params, headers=headers)
    assert first.status_code == second.status_code == 200
    assert "x-answer-cache" not in first.headers and second.headers["x-answer-cache"] == "hit"
    assert second.content == first.content
    assert {k: v for k, v in second.headers.items() if k != "x-answer-cache"} == dict(first.headers)
    # another app, nothing kept, answers the same bytes
    assert TestClient(create_app()).get(path, params=params, headers=headers).content == first.content


def test_the_representation_is_part_of_the_key(fresh: TestClient):
    params = {"model": "glm-4v-9b", "context": 4096}
    as_json = fresh.get("/api/vram", params=params)
    as_htmx = fresh.get("/api/vram", params=params, headers=HX)
    on_calculator = fresh.get("/api/vram", params=params,
                              headers={**HX, "HX-Current-URL": "http://testserver/calculator"})
    assert as_json.headers["content-type"] == "application/json" and as_htmx.headers["content-type"].startswith(
        "text/html")
    assert as_htmx.headers["HX-Replace-Url"].startswith("/models/glm-4v-9b")
    assert on_calculator.headers["HX-Replace-Url"].startswith("/calculator")
    assert not any("x-answer-cache" in r.headers for r in (as_json, as_htmx, on_calculator))
    assert len(_kept(fresh)) == 3


def test_answers_that_depend_on_more_than_the_catalog_are_not_kept(fresh: TestClient):
    config = json.loads((SPECS_DIR / "configs" / "qwen3-14b" / "config.json").read_text())
    inline = {"config": json.dumps(config), "context": 4096}
    for _ in range(2):
        assert fresh.get("/api/vram", params=inline).status_code == 200  # an inline config.json
        assert fresh.get("/api/vram", params={"model": "glm-4v-9b", "context": -1}).status_code == 422
        assert fresh.get("/api/vram", params={"model": "no-such-model"}).status_code == 404
        assert fresh.get("/models/no-such-model").status_code == 404
        r = fresh.get("/models/glm-4v-9b", params={"context": "lots"})  # the page names the bad field: a 422
        assert r.status_code == 422 and "x-answer-cache" not in r.headers
    assert len(_kept(fresh)) == 0


def test_a_different_query_is_a_different_answer(fresh: TestClient):
    a = fresh.get("/api/vram", params={"model": "glm-4v-9b", "context": 4096}).json()
    b = fresh.get("/api/vram", params={"model": "glm-4v-9b", "context": 4097}).json()
    assert (a["request"]["context"], b["request"]["context"]) == (4096, 4097)
    assert b["breakdown"]["kv_cache"] > a["breakdown"]["kv_cache"]


def _response(size: int) -> Response:
    return Response(b"x" * size, media_type="text/plain")


def test_the_store_is_bounded_least_recently_used_out_first():
    kept = Answers(max_entries=2, max_bytes=1 << 20)
    keys = [("/p", str(i).encode(), b"", b"", b"") for i in range(3)]
    kept.put(keys[0], _response(10))
    kept.put(keys[1], _response(10))
    assert kept.get(keys[0]) is not None  # used: keys[1] is now the oldest
    kept.put(keys[2], _response(10))
    assert len(kept) == 2 and kept.get(keys[1]) is None and kept.get(keys[0]) is not None
    by_bytes = Answers(max_entries=100, max_bytes=8000)
    for i, k in enumerate(keys):
        by_bytes.put(k, _response(900 + i))  # one eighth of the cap at most each; three are 2,703 bytes
    assert len(by_bytes) == 3
    by_bytes.put(("/p", b"big", b"", b"", b""), _response(1001))  # over max_bytes / 8: never kept
    assert len(by_bytes) == 3
    small = Answers(max_entries=100, max_bytes=2000)
    for k in keys:
        small.put(k, _response(250))
    assert len(small) == 3
    for i in range(10):
        small.put(("/q", str(i).encode(), b"", b"", b""), _response(250))
    assert len(small) == 8  # 8 x 250 bytes fill the 2,000
    not_ok = Response(b"no", status_code=422)
    small.put(("/r", b"", b"", b"", b""), not_ok)
    assert small.get(("/r", b"", b"", b"", b"")) is None


def test_partials_rendered_once_equal_a_fresh_render(monkeypatch):
    """The VRAM table and chart are rendered once per (spec, table_key), the card as published once per spec, the
    quantization and GPU selects once per spec and selection, and reused (app/web/rendering.py once): every page
    state renders the same bytes as when they are rendered afresh."""
    from jinja2 import pass_context

    from app.web import rendering

    states = [{}, {"images": "1"}, {"gpu": "rtx-4090"}, {"gpu": "h100-80gb", "images": "1", "context": "9000"},
              {"gpu_memory": "24"}, {"gpu_memory": "23.5", "quantization": "q8_0"}]
    pages = [("/models/glm-4v-9b", s, h) for s in states for h in ({}, {**HX, "HX-Request": "true"})]
    pages += [("/models/qwen3-30b-a3b", {"gpu": "rtx-4090"}, {}), ("/models/qwen3-30b-a3b", {}, HX)]

    def fetch() -> list[bytes]:
        client = TestClient(create_app())  # its own kept answers: each page computed
        return [client.get(path, params={**s, "table_key": "none"} if h else s, headers=h).content
                for path, s, h in pages]

    reused = fetch()
    again = fetch()  # every partial now comes from the store

    calls = []

    @pass_context
    def fresh(context, name, oob, spec, key):
        calls.append(name)
        return rendering.Markup(context.environment.get_template(name).render({**context.get_all(), "oob": oob}))

    monkeypatch.setitem(rendering.TEMPLATES.env.globals, "once", fresh)
    assert fetch() == reused == again
    full = sum(not h for _, _, h in pages)  # a page: table, chart, the card as published and the two selects; an
    # update: the first two
    assert sorted(set(calls)) == ["partials/card_published.html", "partials/gpu_select.html",
                                  "partials/memory_chart.html", "partials/quantization_select.html",
                                  "partials/vram_table.html"]
    assert len(calls) == 5 * full + 2 * (len(pages) - full)  # the fresh renders were the ones used
    assert all(b'id="vram-table"' in page for page in reused)  # the table is in every page and update asked
