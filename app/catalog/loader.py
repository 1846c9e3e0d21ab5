"""Loads and validates `model_specs/` once at startup; a bad file stops startup naming file and field.

No web imports: the GPU measurement harness loads the catalog too (app.web.deps holds the dependency)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from app.estimator import Gpu, ModelSpec, UnknownModel
from app.resources import data_dir

M = TypeVar("M", bound=BaseModel)
SPECS_DIR = data_dir("model_specs")


class CatalogError(RuntimeError):
    """A catalog file that does not validate; the message names the file and the field."""


class GpuCatalog(BaseModel):
    source: str
    gpus: list[Gpu]


def _load(path: Path, model: type[M]) -> M:
    try:
        return model.model_validate_json(path.read_bytes())
    except OSError as exc:  # unreadable (permissions), missing, or a folder where a file should be
        raise CatalogError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors())
        raise CatalogError(f"{path}: {problems}") from exc


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelSpec]
    gpus: list[Gpu]
    root: Path = SPECS_DIR  # measurements live in root / "measurements"
    names: dict[str, str] = field(default_factory=dict)  # lowercased slug or hf_repo -> slug

    def __post_init__(self) -> None:
        if not self.names:
            for slug, spec in self.models.items():
                self.names[slug.lower()] = slug
                if spec.hf_repo:
                    self.names.setdefault(spec.hf_repo.lower(), slug)

    def model(self, slug: str) -> ModelSpec:
        """A catalog entry by slug or Hugging Face repo id, case-insensitively (`THUDM/glm-4v-9b`)."""
        return self.resolve(slug)

    def lookup(self, name: str) -> ModelSpec | None:
        """The catalog entry `name` names (slug or repo id, any case), or None."""
        slug = self.names.get(name.strip().lower())
        return self.models[slug] if slug is not None else None

    def resolve(self, name: str) -> ModelSpec:
        """The one place a model name becomes a spec.

        Raises:
            UnknownModel (404): neither a catalog slug nor a catalog repo id. (Hub fetching of unknown
            repo ids hooks in here.)
        """
        spec = self.lookup(name)
        if spec is None:
            raise UnknownModel(name)
        return spec

    def spec_for(self, model: str | None, config: dict | None) -> ModelSpec:
        """The spec a request names: an inline config.json (imported, cached), else `model` resolved."""
        if config is not None:
            from app.catalog.importer import spec_from_config  # adapters: only for a config that is not in the catalog

            return spec_from_config(config)
        if model is None:
            raise UnknownModel("")
        return self.resolve(model)


def load_catalog(root: Path = SPECS_DIR) -> Catalog:
    models = {}
    folder = root / "models"
    try:
        names = sorted(p for p in os.listdir(folder) if p.endswith(".json"))  # glob() hides a permission error
    except OSError as exc:
        raise CatalogError(f"{folder}: the model specs folder cannot be read: {exc.strerror or exc}") from exc
    for path in (folder / name for name in names):
        spec = _load(path, ModelSpec)
        if spec.slug != path.stem:
            raise CatalogError(f"{path}: slug: {spec.slug!r} does not match the file name")
        models[spec.slug] = spec
    if not models:
        raise CatalogError(f"{root / 'models'}: no model specs found")
    gpus = _load(root / "gpus.json", GpuCatalog).gpus
    return Catalog(models=models, gpus=gpus, root=root)
