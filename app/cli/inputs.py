"""What MODEL may be on the command line: anything the API takes, or a local file.

    a catalog slug or a Hugging Face repo id  -> `model`, through the API's door (app.hub:
                                                 catalog look-up, else a fetch from the Hub)
    a config.json (or a folder holding one)   -> its contents as `config`, as POST /api/vram takes them
    a .gguf file (or one part of a split one) -> the GGUF header reader (estimate only), as /api/gguf
    owner/name:file.gguf or a Hub file URL    -> its header fetched by range requests, as /api/gguf's `hf`
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from app import hub
from app.catalog import Catalog
from app.cli.options import WHERE, request_data
from app.estimator import FORMATS, Gpu, ModelSpec, UnknownChoice, VramEstimate, VramRequest
from app.problems import Problem, Refused, invalid_field
from app.units import parse_size

_SPLIT = re.compile(r"(?P<stem>.+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.gguf", re.IGNORECASE)


def _refuse(message: str, status: int = 422) -> Refused:
    return Refused(Problem(404, message) if status == 404 else invalid_field(WHERE, "model", message))


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _refuse(f"{path} is not a JSON file: {exc}") from exc
    if not isinstance(config, dict):
        raise _refuse(f"{path} is not a config.json: it holds no JSON object")
    return config


def _hub_gguf(model: str) -> bool:
    """MODEL is a GGUF on the Hub (`owner/name:file.gguf` or a Hub file URL), as /api/gguf's `hf`."""
    return (model.lower().endswith(".gguf") and not Path(model).exists()
            and (":" in model.split("/")[-1] or model.startswith(("http://", "https://"))))


def _model_file(model: str) -> Path | None:
    """The local file MODEL names (a folder stands for its config.json), or None for a name."""
    if _hub_gguf(model):
        return None
    path = Path(model)
    if path.is_dir() and (path / "config.json").is_file():
        path = path / "config.json"
    if path.suffix.lower() not in (".json", ".gguf"):
        return None
    if not path.is_file():
        raise _refuse(f"{model}: no such file", 404)
    return path


def gguf_parts(path: Path, cap: int) -> list[tuple[str, bytes]]:
    """The first `cap` bytes (the header) of a .gguf file, or of each part of a split one
    (name-00001-of-00003.gguf: all parts are read, as /api/gguf takes them)."""
    m = _SPLIT.fullmatch(path.name)
    paths = [path] if m is None else [path.with_name(f"{m['stem']}-{i:05d}-of-{m['n']}.gguf")
                                      for i in range(1, int(m["n"]) + 1)]
    parts = []
    for p in paths:
        if not p.is_file():
            raise _refuse(f"{p}: no such file (a part of the split GGUF {path.name})", 404)
        with p.open("rb") as f:
            parts.append((p.name, f.read(cap)))
    return parts


def _estimate_gguf(path: Path, req: VramRequest, gpus: list[Gpu]) -> VramEstimate:
    from app.estimator.gguf.estimate import estimate_gguf  # numpy and gguf's reader only for a GGUF file
    from app.estimator.gguf.reader import MAX_HEADER_BYTES

    return estimate_gguf(gguf_parts(path, MAX_HEADER_BYTES), req, gpus)  # the header lies within the cap


def request_for(model: str, options: dict[str, Any]) -> VramRequest:
    """The API's request for MODEL and the options given: a name as `model`, a config.json's contents
    as `config` (as POST /api/vram takes them), a GGUF file by its name.

    Raises:
        Refused: a file that is not there (404) or not JSON (422).
        ValidationError: an option the request model refuses (422).
    """
    path = _model_file(model)
    if _hub_gguf(model):
        named: dict[str, Any] = {"model": model.rsplit("/", 1)[-1].rsplit(":", 1)[-1]}
    elif path is None:
        named = {"model": model}
    elif path.suffix.lower() == ".gguf":
        named = {"model": path.name}
    else:
        named = {"config": _read_config(path)}
    return VramRequest.model_validate({**request_data(options), **named})


def estimate_for(catalog: Catalog, model: str, req: VramRequest) -> VramEstimate:
    """The API's answer: `app.hub.estimate_for` (catalog, Hub, config.json), or for a .gguf
    file the GGUF header reader, as /api/gguf."""
    if _hub_gguf(model):
        from app.estimator.gguf.estimate import estimate_gguf

        parts = [(h.filename, h.header) for h in hub.fetch_gguf_header(model, field="model")]
        return estimate_gguf(parts, req, catalog.gpus)
    path = _model_file(model)
    if path is not None and path.suffix.lower() == ".gguf":
        return _estimate_gguf(path, req, catalog.gpus)
    return hub.estimate_for(catalog, req)


def spec_for(catalog: Catalog, model: str, req: VramRequest) -> ModelSpec:
    """The spec MODEL names, through the API's own door (`app.hub.spec_for`).

    Raises:
        UnknownModel: not in the catalog nor on the Hub (404).
        Refused: a GGUF file (it has no spec; only `estimate_for` takes it) (422).
        InvalidRequest: a config the importer refuses (422, naming the config key).
    """
    path = _model_file(model)
    if _hub_gguf(model) or (path is not None and path.suffix.lower() == ".gguf"):
        raise _refuse(f"{model}: a GGUF file is estimated as it is (vram estimate FILE); fit takes a catalog "
                      "model, a Hugging Face repo id or a config.json")
    return hub.spec_for(catalog, req.model, req.config)[0]


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
        from app.estimator.solve import target_gpu  # the context solver: `vram fit` only

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
