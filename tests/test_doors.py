"""Every field of VramRequest through every door: JSON body, query string, form body (urlencoded and
multipart) and the `vram` CLI. The values are generated from the model's own fields (a choice of its
Literal, the other boolean, an integer inside its bounds), so a new field is covered without editing this
file; a field that needs a partner value (max_model_len >= context) is named in PARTNERS.

Each door must accept the value (200 / exit 0) and give the same answer as the typed JSON."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.catalog import SPECS_DIR
from app.cli import cli
from app.cli.options import option_name
from app.estimator import VramRequest

MODEL = "glm-4v-9b"  # a vision model, so `images` applies
BASE: dict[str, Any] = {"model": MODEL}
# values that no generic rule can pick (a catalog slug, a release); everything else is generated
CHOSEN: dict[str, Any] = {"quantization": "q8_0", "kv_cache": "fp32", "runtime": "vllm", "gpu": "h100-80gb",
                          "vllm_version": "0.18.0", "gpu_memory_utilization": 0.5, "n_ctx": 4096,
                          "n_gpu_layers": 10, "max_model_len": 4096, "max_num_seqs": 64,
                          "max_num_batched_tokens": 4096, "image_size": "640x480",
                          "llm_int8_skip_modules": ["lm_head", "model.vision_tower"]}
SKIP = {"model", "config", "trace"}  # the model itself (config: tests/test_api_config.py); trace needs torch
PARTNERS: dict[str, dict[str, Any]] = {  # fields read only when the runtime they belong to runs
    **{f: {"runtime": "llama.cpp", "quantization": "q4_k_m"} for f in
       ("n_ctx", "n_batch", "n_ubatch", "n_parallel", "kv_unified", "n_gpu_layers", "cache_type_k",
        "cache_type_v", "embeddings", "mmproj", "flash_attention")},
    # the seed card's remote code runs SDPA only: the kernel choice is for transformers' own classes
    "attn_implementation": {"runtime": "transformers", "model": "llama-3.1-8b"},
    "image_size": {"model": "glm-4.1v-9b-thinking", "images": 1},  # a dynamic-resolution tower
    # read by the bitsandbytes formats transformers quantizes while loading, for models whose module names are tabled
    "llm_int8_skip_modules": {"model": "gemma-3-4b-it", "quantization": "bnb-int8"},
}
VLLM = {"runtime": "vllm", "gpu": "h100-80gb"}


def _bare(annotation: object) -> object:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) in (typing.Union, types.UnionType) else annotation


def sample(name: str) -> Any:
    """A valid value for the field other than its default."""
    if name in CHOSEN:
        return CHOSEN[name]
    info = VramRequest.model_fields[name]
    bare, default = _bare(info.annotation), info.default
    if bare is bool:
        return not default if isinstance(default, bool) else True
    if typing.get_origin(bare) is typing.Literal:
        return next(c for c in reversed(typing.get_args(bare)) if c != default)
    if bare is int:
        lo = next((m.ge for m in info.metadata if isinstance(m, Ge)), 1)
        hi = next((m.le for m in info.metadata if isinstance(m, Le)), None)
        value = (default if isinstance(default, int) else lo) + 1
        return min(value, hi) if hi is not None else value
    if bare is float:
        lo = next((m.gt for m in info.metadata if isinstance(m, Gt)), 0)
        hi = next((m.le for m in info.metadata if isinstance(m, Le)), 1)
        return (lo + hi) / 2
    raise AssertionError(f"no sample for {name}: {info.annotation}; add it to CHOSEN")


FIELDS = [n for n in VramRequest.model_fields if n not in SKIP]


def _request(name: str) -> dict[str, Any]:
    extra = PARTNERS.get(name, VLLM if name in _vllm_fields() else {})
    return {**BASE, **extra, name: sample(name)}


def _vllm_fields() -> set[str]:
    names = list(VramRequest.model_fields)
    return set(names[names.index("gpu_memory_utilization"):names.index("vllm_version") + 1])


def _text(value: Any) -> str:
    if isinstance(value, list):  # a list of names as text doors carry it: comma-separated
        return ",".join(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_through_every_door(client: TestClient, name: str):
    data = _request(name)
    typed = client.post("/api/vram", json=data)
    assert typed.status_code == 200, typed.text
    total = typed.json()["total_bytes"]
    text = {k: _text(v) for k, v in data.items()}
    query = client.get("/api/vram", params=text)
    assert query.status_code == 200, f"query {name}={text[name]}: {query.text}"
    form = client.post("/api/vram", data=text)
    assert form.status_code == 200, f"form {name}={text[name]}: {form.text}"
    multipart = client.post("/api/vram", files={k: (None, v) for k, v in text.items()})
    assert multipart.status_code == 200, f"multipart {name}={text[name]}: {multipart.text}"
    argv = ["estimate", data["model"], "--json"]
    for k, v in data.items():
        if k == "model":
            continue
        if isinstance(v, bool):
            argv.append(option_name(k) if v else "--no-" + option_name(k)[2:])
        else:
            argv += [option_name(k), _text(v)]
    cli_run = CliRunner().invoke(cli, argv, env={"COLUMNS": "200"})
    assert cli_run.exit_code == 0, f"{argv}: {cli_run.output}"
    assert {query.json()["total_bytes"], form.json()["total_bytes"], multipart.json()["total_bytes"],
            json.loads(cli_run.output)["total_bytes"]} == {total}


def test_block_size_as_text_is_parsed_and_bounded(client: TestClient):
    """vLLM's BlockSize is a choice of integers: "32" from a text door is 32; "33" is refused naming it."""
    ok = client.get("/api/vram", params={**BASE, **VLLM, "block_size": "32"})
    assert ok.status_code == 200 and ok.json()["vllm"]["block_size"] == 32
    bad = client.get("/api/vram", params={**BASE, **VLLM, "block_size": "33"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "block_size"]
    strict = client.post("/api/vram", json={**BASE, **VLLM, "block_size": "32"})  # JSON stays strict
    assert strict.status_code == 422
    run = CliRunner().invoke(cli, ["estimate", MODEL, "--runtime", "vllm", "--gpu", "h100-80gb",
                                   "--block-size", "32", "--json"])
    assert run.exit_code == 0 and json.loads(run.output)["vllm"]["block_size"] == 32


def test_config_rides_in_a_form_as_json_text(client: TestClient):
    config = json.loads((SPECS_DIR / "configs" / "qwen3-14b" / "config.json").read_text())
    typed = client.post("/api/vram", json={"config": config, "context": 2048})
    form = client.post("/api/vram", data={"config": json.dumps(config), "context": "2048"})
    assert typed.status_code == form.status_code == 200, form.text
    assert form.json()["total_bytes"] == typed.json()["total_bytes"]
    bad = client.post("/api/vram", data={"config": "{not json", "context": "2048"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "config"

