"""The catalog loads, and a bad file stops startup naming the file and the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR, Catalog, CatalogError, load_catalog
from app.main import create_app

REQUIRED = ["glm-4v-9b", "glm-4-9b", "glm-4-9b-chat", "glm-4-9b-chat-1m", "glm-4-9b-0414", "glm-z1-9b-0414",
            "glm-4-32b-0414", "glm-4.1v-9b-thinking", "llama-3.1-8b"]

# the card text quoted in the card-page issue, field by field
GLM4V_CARD = [("Parameters", "9B"), ("Context Length", "128K"), ("Modality", "Multimodal"),
              ("Architecture", "Dense"), ("License", "MIT License"), ("Release Date", "15 Jan 2024"),
              ("Knowledge Cutoff", "-"), ("Attention Structure", "Multi-Head Attention"),
              ("Hidden Dimension Size", "4096"), ("Number of Layers", "40"), ("Attention Heads", "32"),
              ("Key-Value Heads", "32"), ("Activation Function", "-"), ("Normalization", "-"),
              ("Position Embedding", "Absolute Position Embedding")]


def test_required_models_present(catalog: Catalog):
    assert set(REQUIRED) <= set(catalog.models)


def test_glm4v_card_is_the_card_as_given(glm4v):
    assert [(f.label, f.value) for f in glm4v.card.fields] == GLM4V_CARD


def test_glm4v_disagreements_cover_the_reference(glm4v):
    fields = {d.field for d in glm4v.discrepancies}
    assert {"Parameters", "Context Length", "Key-Value Heads", "Position Embedding", "Release Date", "License",
            "Image handling"} <= fields


def _broken_copy(tmp_path: Path, edit) -> Path:
    root = tmp_path / "specs"
    shutil.copytree(SPECS_DIR, root, ignore=shutil.ignore_patterns("measurements"))
    path = root / "models" / "glm-4v-9b.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return root


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["language_model"].update(kv_heads="two"), "language_model.kv_heads"),
    (lambda d: d["language_model"].pop("source"), "language_model.source"),
    (lambda d: d["vision"].update(field_sources={"no_such_field": "x"}), "vision"),
    (lambda d: d["language_model"].update(heads=31), "language_model"),
    (lambda d: d.update(slug="other"), "slug"),
], ids=["wrong-type", "missing-source", "unknown-source-field", "inconsistent-heads", "slug-vs-filename"])
def test_bad_spec_stops_startup_naming_file_and_field(tmp_path: Path, edit, field: str):
    root = _broken_copy(tmp_path, edit)
    with pytest.raises(CatalogError) as err:
        create_app(root)
    assert "glm-4v-9b.json" in str(err.value) and field in str(err.value), str(err.value)


def test_every_model_file_names_its_sources():
    for path in (SPECS_DIR / "models").glob("*.json"):
        data = json.loads(path.read_text())
        assert data["language_model"]["source"], path
        assert data["card"]["source"], path
        if data.get("vision"):
            assert data["vision"]["source"], path
        for d in data["discrepancies"]:
            assert d["source"], (path, d["field"])


def test_loader_reads_a_directory(tmp_path: Path):
    root = _broken_copy(tmp_path, lambda d: None)
    assert set(load_catalog(root).models) == {p.stem for p in (SPECS_DIR / "models").glob("*.json")}


def test_lazy_catalog_answers_as_the_validated_one(catalog: Catalog):
    """`vram` reads the catalog lazily (each spec validated when asked for): every slug and repo id, in any case,
    finds the same spec as the catalog validated at startup, and names that are neither find none."""
    lazy = load_catalog(lazy=True)
    assert set(lazy.models) == set(catalog.models) and len(lazy.models) == len(catalog.models)
    assert lazy.model("GLM-4V-9B") == catalog.model("glm-4v-9b")  # a slug: that one file read
    names = [*catalog.models, *(s.hf_repo for s in catalog.models.values() if s.hf_repo)]
    for name in names:
        assert lazy.lookup(name.upper()) == catalog.lookup(name.upper()), name
    assert lazy.lookup("no-such/model") is None and lazy.gpus == catalog.gpus


@pytest.mark.parametrize("field", ["language_model.kv_heads", "slug"])
def test_lazy_catalog_names_a_bad_file_when_it_is_read(tmp_path: Path, field: str):
    edit = {"language_model.kv_heads": lambda d: d["language_model"].update(kv_heads="two"),
            "slug": lambda d: d.update(slug="other")}[field]
    lazy = load_catalog(_broken_copy(tmp_path, edit), lazy=True)
    assert lazy.model("llama-3.1-8b").slug == "llama-3.1-8b"  # another file: answered
    with pytest.raises(CatalogError) as err:
        lazy.model("glm-4v-9b")
    assert "glm-4v-9b.json" in str(err.value) and field in str(err.value), str(err.value)
