"""Shared fixtures: the catalog, a TestClient on create_app(), and named specs."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from app.catalog import Catalog, load_catalog
from app.estimator import ModelSpec
from app.main import create_app

# --- Hub client (hub branch): no test reaches the real Hub; tests/test_hub.py serves a local one ---
os.environ.setdefault("VRAM_OFFLINE", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--browser", action="store_true", help="run the Playwright tests in Debian's Chromium")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--browser"):
        return
    skip = pytest.mark.skip(reason="browser tests run with --browser")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="session")
def client() -> TestClient:
    return TestClient(create_app())


@pytest.fixture(scope="session")
def glm4v(catalog: Catalog) -> ModelSpec:
    return catalog.model("glm-4v-9b")


@pytest.fixture(scope="session")
def llama(catalog: Catalog) -> ModelSpec:
    return catalog.model("llama-3.1-8b")
