"""/openapi.json is a valid OpenAPI 3.1 document (openapi-spec-validator), every $ref in it resolves, and
what Swagger UI's "Try it out" sends for /api/vram with one field filled is answered 200."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import OpenAPIV31SpecValidator


@pytest.fixture(scope="module")
def doc(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + \
            [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_document_validates(doc: dict[str, Any]):
    errors = [str(e) for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert errors == []


def test_every_ref_resolves(doc: dict[str, Any]):
    """The validator does not follow a request body's $ref; a dangling one shows as "string" in /docs."""
    for ref in sorted(set(_refs(doc))):
        node: Any = doc
        assert ref.startswith("#/"), ref
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_get_parameters_send_nothing_unasked(doc: dict[str, Any]):
    """Swagger UI sends every parameter that has a default, and prefills an object parameter with
    {"additionalProp1": {}}: the GET documents no defaults and no `config` (a JSON object: POST only)."""
    params = doc["paths"]["/api/vram"]["get"]["parameters"]
    names = [p["name"] for p in params]
    assert "config" not in names and "model" in names and "block_size" in names
    assert [p["name"] for p in params if "default" in p["schema"]] == []


def _swagger_value(schema: dict[str, Any]) -> Any:
    """What Swagger UI's form sends for a parameter left alone: nothing, unless it has a default."""
    return schema.get("default")


def test_try_it_out_with_one_field(client: TestClient, doc: dict[str, Any]):
    params = doc["paths"]["/api/vram"]["get"]["parameters"]
    sent = {p["name"]: _swagger_value(p["schema"]) for p in params}
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in sent.items() if v is not None}
    assert client.get("/api/vram", params={**query, "model": "glm-4v-9b"}).status_code == 200
    body = doc["paths"]["/api/vram"]["post"]["requestBody"]["content"]
    example = body["application/json"]["example"]
    assert client.post("/api/vram", json=example).status_code == 200
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/VramRequest"
    form = body["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["config"]["type"] == "string"  # a form carries config.json as text
    assert client.post("/api/vram", data={"model": "glm-4v-9b"}).status_code == 200
