"""Docs beside the code: every registry entry is labelled and sourced, every API field described."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from pydantic import TypeAdapter

from app.estimator import FORMATS, KV_TYPES, RUNTIMES, VramRequest
from app.estimator.runtimes import llamacpp, transformers, vllm, vllm_advice, vllm_memory, vllm_profiles
from app.estimator.schema import Breakdown, Detail, GpuFit, VllmDetail, VllmFix, VllmStage, VramEstimate


def test_registries_have_labels_and_sources():
    for registry in (FORMATS, KV_TYPES, RUNTIMES):
        for slug, entry in registry.items():
            assert entry.slug == slug and slug == slug.lower()
            assert entry.label and len(entry.source) > 5, slug


def _undescribed(model: type) -> list[str]:
    if dataclasses.is_dataclass(model):  # a plain dataclass (GpuFit): the schema pydantic writes for it
        return [name for name, p in TypeAdapter(model).json_schema()["properties"].items() if not p.get("description")]
    return [name for name, f in model.model_fields.items() if not f.description]


def test_request_and_breakdown_fields_are_described():
    for model in (VramRequest, Breakdown, Detail, GpuFit, VllmDetail, VllmFix, VllmStage):
        assert not _undescribed(model), (model.__name__, _undescribed(model))
    assert VramEstimate.model_fields["total_bytes"].description


def test_runtime_constants_cite_sources():
    """Each module-level constant sits under a comment or docstring naming where it comes from."""
    for module in (transformers, llamacpp, vllm, vllm_profiles, vllm_memory, vllm_advice):
        lines = Path(module.__file__).read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r"^[A-Z][A-Z0-9_]* = [\d(]", line):  # a numeric constant
                assert "#" in line or lines[i - 1].lstrip().startswith("#"), (module.__name__, line)
