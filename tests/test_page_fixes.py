"""Smaller defects a new user met: each with the behaviour it must have now."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.catalog import Catalog
from app.cli import cli
from app.logs import check_log
from app.logs.scrub import scrub

HTML = {"accept": "text/html"}
PAGES = ("/", "/calculator", "/models/glm-4v-9b", "/accuracy", "/logs")


@pytest.mark.parametrize("url", PAGES)
def test_skip_link_and_logs_in_the_navigation(client: TestClient, url: str):
    html = client.get(url, headers=HTML).text
    assert '<a class="skip" href="#main">' in html and '<main id="main">' in html
    assert re.search(r'<nav>.*<a href="/logs">', html)


@pytest.mark.parametrize("url", [*PAGES, "/api/vram?model=glm-4v-9b", "/api/models", "/healthz", "/docs",
                                 "/openapi.json", "/static/app.css"])
def test_head_answers_where_get_does(client: TestClient, url: str):
    get, head = client.get(url), client.head(url)
    assert head.status_code == get.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_a_405_names_every_method_of_the_path(client: TestClient):
    assert client.request("OPTIONS", "/api/vram").headers["allow"] == "GET, POST"
    assert client.put("/api/weights").headers["allow"] == "GET, POST"


def test_html_404_does_not_point_people_at_json(client: TestClient):
    r = client.get("/models/no-such-model", headers=HTML)
    assert r.status_code == 404 and "/api/" not in r.text.split('<main id="main">')[1].split("</main>")[0]
    assert client.get("/api/models/no-such-model").json()["detail"].endswith("/api/models")  # the API keeps it


def test_docs_link_home(client: TestClient):
    assert '<a href="/">' in client.get("/docs").text


def test_scrubber_keeps_timestamps_and_removes_addresses():
    assert scrub("INFO 01-17 16:39:28 [core.py:1] up") == "INFO 01-17 16:39:28 [core.py:1] up"
    assert scrub("12:34:56.789 listening") == "12:34:56.789 listening"
    assert scrub("on fe80::1 and 2001:0db8:85a3:0000:0000:8a2e:0370:7334 and 10.0.0.1") == \
        "on <ip> and <ip> and <ip>"


def test_a_named_model_that_disagrees_with_the_log_is_warned(catalog: Catalog):
    text = Path("tests/fixtures/logs/l1_ollama_0.5.4_llama31_8b_q4km.log").read_text()
    wrong = check_log(text, catalog, {"model": "glm-4v-9b"})
    assert any("disagrees with the log's own metadata" in w for w in wrong.warnings)
    right = check_log(text, catalog, {"model": "llama-3.1-8b"})
    assert not any("disagrees" in w for w in right.warnings)


def test_logs_page_checks_the_size_and_labels_the_drop_zone(client: TestClient):
    html = client.get("/logs").text
    assert '<label for="logfile">' in html and "var LIMIT = 2097152" in html


def test_limits_are_formatted_and_the_banner_names_each_field(client: TestClient):
    r = client.get("/calculator", params={"model": "glm-4v-9b", "context": "99999999", "batch": "0"}, headers=HTML)
    banner = re.search(r'id="error-banner">(.*?)</p>', r.text).group(1)
    assert "10,000,000" in banner and "<strong>context</strong>" in banner and "<strong>batch</strong>" in banner
    card = client.get("/models/glm-4v-9b", params={"context": "abc", "images": "99", "quantization": "q8_0"},
                      headers=HTML)
    assert 'data-state="q8_0/' in card.text  # the valid field is kept
    assert "<strong>context</strong>" in card.text and "<strong>images</strong>" in card.text


def test_cli_check_prints_gib_on_both_sides_and_models_fits_80_columns():
    runner = CliRunner()
    check = runner.invoke(cli, ["check", "tests/fixtures/logs/l1_ollama_0.5.4_llama31_8b_q4km.log"],
                          env={"COLUMNS": "80"})
    row = next(line for line in check.stdout.splitlines() if "KV cache" in line)
    assert row.count("GiB") == 2 and "bytes" not in row
    models = runner.invoke(cli, ["models"], env={"COLUMNS": "80"})
    assert models.exit_code == 0
    lines = models.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any("llama-3.1-8b " in line and "8.03B" in line for line in lines)  # one row per model, not wrapped


def test_one_kv_cache_control_per_runtime(client: TestClient):
    html = client.get("/calculator", params={"model": "llama-3.1-8b", "runtime": "vllm", "gpu": "h100-80gb",
                                             "kv_cache": "fp8"}, headers=HTML).text
    assert 'name="kv_cache"' in html and 'name="kv_cache_dtype"' not in html
    assert '<option value="fp8" data-runtimes="vllm" selected>' in html
    api = client.get("/api/vram", params={"model": "llama-3.1-8b", "runtime": "vllm", "gpu": "h100-80gb",
                                          "kv_cache_dtype": "fp8"}).json()
    assert api["vllm"]["kv_cache_dtype"].startswith("fp8") and api["request"]["kv_cache"] == "fp8"
