"""Loads and validates `model_specs/` once at startup; a bad file stops startup naming file and field.

No web imports: the GPU measurement harness loads the catalog too (app.deps holds the dependency)."""

from __future__ import annotations

from dataclasses import dataclass
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
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors())
        raise CatalogError(f"{path}: {problems}") from exc


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelSpec]
    gpus: list[Gpu]
    root: Path = SPECS_DIR  # measurements live in root / "measurements"

    def model(self, slug: str) -> ModelSpec:
        try:
            return self.models[slug]
        except KeyError:
            raise UnknownModel(slug) from None


def load_catalog(root: Path = SPECS_DIR) -> Catalog:
    models = {}
    for path in sorted((root / "models").glob("*.json")):
        spec = _load(path, ModelSpec)
        if spec.slug != path.stem:
            raise CatalogError(f"{path}: slug: {spec.slug!r} does not match the file name")
        models[spec.slug] = spec
    if not models:
        raise CatalogError(f"{root / 'models'}: no model specs found")
    gpus = _load(root / "gpus.json", GpuCatalog).gpus
    return Catalog(models=models, gpus=gpus, root=root)
