"""Visitors see public sources only: no answer names this repository's notes, paths or issues.

Crawls every visitor-facing answer (API JSON and HTML pages) with the TestClient and looks for
internal references: reference-file paths, their section marks, issue numbers, the session brief.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.catalog import Catalog
from app.estimator import RUNTIMES

INTERNAL = re.compile(r"shared/reference|\.md s\d|issue \d|\(issue|/work/|BRIEF")


def leaks(text: str) -> list[str]:
    """Each internal reference in `text`, with 60 characters either side."""
    return [text[max(0, m.start() - 60):m.end() + 60] for m in INTERNAL.finditer(text)]


def test_the_pattern_catches_what_it_should() -> None:
    bad = ["x (as listed in shared/reference/q.md s1)", "q.md s4", "quoted in issue 10",
           "(issue: vLLM)", "/work/shared", "see BRIEF"]
    assert all(leaks(t) for t in bad)
    assert not leaks("huggingface.co/THUDM/glm-4v-9b config.json; vLLM vllm/v1/worker/gpu_worker.py")


def _get(client: TestClient, url: str, status: int = 200, **params: object) -> str:
    r = client.get(url, params=params)
    assert r.status_code == status, (url, params, r.text[:300])
    return r.text


def _crawl(client: TestClient, catalog: Catalog) -> dict[str, str]:
    """Every visitor-facing answer, keyed by a readable name."""
    out = {u: _get(client, u) for u in ("/api/models", "/api/quantizations", "/api/runtimes", "/api/gpus",
                                        "/", "/calculator", "/accuracy", "/logs")}
    formats = {q["slug"]: q["runtimes"] for q in client.get("/api/quantizations").json()}
    for slug, spec in sorted(catalog.models.items()):
        out[f"/api/models/{slug}"] = _get(client, f"/api/models/{slug}")
        out[f"/models/{slug}"] = _get(client, f"/models/{slug}")
        out[f"/api/weights {slug}"] = _get(client, "/api/weights", model=slug)
        for runtime in formats.get(spec.default_format, ["transformers"]):
            status = 422 if spec.family in RUNTIMES[runtime].unsupported else 200  # the refusal is read too
            out[f"/api/vram {slug} {runtime}"] = _get(client, "/api/vram", status, model=slug, runtime=runtime)
    out["/api/vram llama.cpp q4_k_m"] = _get(client, "/api/vram", model="llama-3.1-8b",
                                             runtime="llama.cpp", quantization="q4_k_m")
    out["/api/vram vllm h100"] = _get(client, "/api/vram", model="llama-3.1-8b", runtime="vllm",
                                      gpu=client.get("/api/gpus").json()[-1]["slug"])
    return out


@pytest.fixture(scope="module")
def crawled(client: TestClient, catalog: Catalog) -> dict[str, str]:
    return _crawl(client, catalog)


def test_crawl_covers_every_model(crawled: dict[str, str], catalog: Catalog) -> None:
    assert len(catalog.models) >= 40
    for slug in catalog.models:
        assert f"/api/models/{slug}" in crawled and f"/models/{slug}" in crawled


def test_no_answer_names_internal_notes(crawled: dict[str, str]) -> None:
    found = {name: hits for name, text in crawled.items() if (hits := leaks(text))}
    assert not found, "\n".join(f"{name}: {hits[:3]}" for name, hits in found.items())
