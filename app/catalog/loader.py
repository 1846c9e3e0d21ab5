"""Loads and validates `model_specs/` once at startup; a bad file stops startup naming file and field.

No web imports: the GPU measurement harness loads the catalog too (app.web.deps holds the dependency)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
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


def _spec(path: Path) -> ModelSpec:
    spec = _load(path, ModelSpec)
    if spec.slug != path.stem:
        raise CatalogError(f"{path}: slug: {spec.slug!r} does not match the file name")
    return spec


class LazySpecs(Mapping[str, ModelSpec]):
    """model_specs/models/*.json by slug (the file name), each read and validated when first asked for: the
    `vram` command answers one model, so it validates one file, not the catalog (the app validates them all at
    startup). Iterating values or items reads every file."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._paths = paths
        self._specs: dict[str, ModelSpec] = {}

    def __getitem__(self, slug: str) -> ModelSpec:
        spec = self._specs.get(slug)
        if spec is None:
            spec = self._specs[slug] = _spec(self._paths[slug])
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


@dataclass(frozen=True, repr=False)
class Catalog:
    models: Mapping[str, ModelSpec]
    gpus: tuple[Gpu, ...]  # one tuple for the catalog's life: the estimator keeps what it derives from it per list
    root: Path = SPECS_DIR  # measurements live in root / "measurements"
    names: dict[str, str] = field(default_factory=dict)  # lowercased slug or hf_repo -> slug
    # LazySpecs: whether `names` holds the repo ids yet (read from every spec on the first name no slug matches)
    _repos: list[bool] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.gpus, tuple):
            object.__setattr__(self, "gpus", tuple(self.gpus))
        if not self.names:
            for slug in self.models:
                self.names[slug.lower()] = slug
            if not isinstance(self.models, LazySpecs):
                self._index_repos()

    def _index_repos(self) -> None:
        for slug, spec in self.models.items():
            if spec.hf_repo:
                self.names.setdefault(spec.hf_repo.lower(), slug)
        self._repos.append(True)

    def model(self, slug: str) -> ModelSpec:
        """A catalog entry by slug or Hugging Face repo id, case-insensitively (`THUDM/glm-4v-9b`)."""
        return self.resolve(slug)

    def lookup(self, name: str) -> ModelSpec | None:
        """The catalog entry `name` names (slug or repo id, any case), or None."""
        key = name.strip().lower()
        slug = self.names.get(key)
        if slug is None and not self._repos:  # a repo id of a lazily read catalog: index them all once
            self._index_repos()
            slug = self.names.get(key)
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


def load_catalog(root: Path = SPECS_DIR, *, lazy: bool = False) -> Catalog:
    """The catalog under `root`, every spec validated now (a bad file stops startup, naming file and field), or with
    `lazy` each spec when first asked for (LazySpecs: the `vram` command)."""
    folder = root / "models"
    try:
        names = sorted(p for p in os.listdir(folder) if p.endswith(".json"))  # glob() hides a permission error
    except OSError as exc:
        raise CatalogError(f"{folder}: the model specs folder cannot be read: {exc.strerror or exc}") from exc
    paths = {name[:-len(".json")]: folder / name for name in names}
    models: Mapping[str, ModelSpec] = LazySpecs(paths) if lazy else {slug: _spec(p) for slug, p in paths.items()}
    if not models:
        raise CatalogError(f"{root / 'models'}: no model specs found")
    gpus = _load(root / "gpus.json", GpuCatalog).gpus
    return Catalog(models=models, gpus=gpus, root=root)
