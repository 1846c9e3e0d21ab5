"""What MODEL may be on the command line: anything the API takes, or a local file.

    a catalog slug or a Hugging Face repo id  -> the catalog's own look-up, as the API does
    a config.json (or a folder holding one)   -> app.catalog.importer.spec_from_config
    a .gguf file                              -> the GGUF header reader
"""

from __future__ import annotations

import json
from pathlib import Path

from app.catalog import Catalog
from app.cli.options import WHERE
from app.estimator import FORMATS, Gpu, ModelSpec, UnknownChoice
from app.estimator.solve import target_gpu
from app.problems import Problem, Refused, invalid_field
from app.units import parse_size


def _refuse(message: str, status: int = 422) -> Refused:
    return Refused(Problem(404, message) if status == 404 else invalid_field(WHERE, "model", message))


def _from_config(path: Path) -> ModelSpec:
    try:
        from app.catalog.importer import spec_from_config
    except ImportError:
        raise _refuse(f"{path}: reading a config.json needs the config importer (app.catalog.importer), "
                      "which this build does not have") from None
    try:
        config = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _refuse(f"{path} is not a JSON file: {exc}") from exc
    if not isinstance(config, dict):
        raise _refuse(f"{path} is not a config.json: it holds no JSON object")
    return spec_from_config(config, source_url=path.resolve().as_uri())


def _from_gguf(path: Path) -> ModelSpec:
    raise _refuse(f"{path}: reading a GGUF file's header is not available in this build")


def spec_for(catalog: Catalog, model: str) -> ModelSpec:
    """The model MODEL names.

    Raises:
        UnknownModel: not in the catalog (404).
        Refused: a file that is not there (404) or cannot be read as a model (422).
        InvalidRequest: a config the importer refuses (422, naming the config key).
    """
    path = Path(model)
    if path.is_dir() and (path / "config.json").is_file():
        path = path / "config.json"
    if path.suffix.lower() not in (".json", ".gguf"):
        return catalog.model(model)
    if not path.is_file():
        raise _refuse(f"{model}: no such file", 404)
    return _from_gguf(path) if path.suffix.lower() == ".gguf" else _from_config(path)


def fit_target(catalog: Catalog, gpu: str | None, memory: str | None) -> Gpu:
    """The memory `vram fit` fits into: a catalog GPU, or a size the user typed.

    Raises:
        Refused: neither or both given, or a size that is not one (422).
        UnknownChoice: a GPU slug not in the catalog (422, listing them).
    """
    if (gpu is None) == (memory is None):
        raise Refused(invalid_field(WHERE, "gpu", "give one of --gpu SLUG (see `vram gpus`) or --memory SIZE "
                                                   "(e.g. 24GiB)"))
    if memory is not None:
        try:
            return target_gpu(parse_size(memory))
        except ValueError as exc:
            raise Refused(invalid_field(WHERE, "memory", str(exc), value=memory)) from exc
    by_slug = {g.slug: g for g in catalog.gpus}
    if gpu not in by_slug:
        raise UnknownChoice("gpu", gpu, list(by_slug))
    return by_slug[gpu]


def check_formats(formats: list[str]) -> list[str]:
    """Format slugs as given; an unknown one is a 422 listing the valid ones (never silently skipped)."""
    for slug in formats:
        if slug not in FORMATS:
            raise UnknownChoice("quantization", slug, list(FORMATS))
    return formats
