"""The calculator page's state from its URL: every field the URL holds (runtime flags and a typed GPU memory
included), the valid ones kept when others are bad (each bad one named), and a model the catalog lacks
fetched from the Hub as the API does, else a "not found" answer with the catalog's close matches. Never
another model's figures."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import ValidationError

from app import hub
from app.catalog import Catalog
from app.estimator import InvalidRequest, UnknownModel, VramEstimate, VramRequest, estimate
from app.estimator.gpus import Gpu
from app.estimator.solve import target_gpu
from app.estimator.spec import ModelSpec
from app.hub import HubError
from app.web.views import GIB, GPU_MEMORY_GIB

DEFAULT_MODEL = "glm-4v-9b"
T = TypeVar("T")
PAGE_ONLY = ("gpu_memory",)  # page fields that are not API fields: a memory size typed instead of a GPU


@dataclass(frozen=True)
class NotFound:
    """A model name neither the catalog nor the Hub answered: why, and the catalog's close matches."""

    name: str
    reason: str
    matches: list[ModelSpec]


@dataclass
class CalcState:
    spec: ModelSpec
    estimate: VramEstimate
    params: VramRequest
    gpu_memory: float | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (field, message), one per bad field


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def close_matches(catalog: Catalog, name: str, limit: int = 5) -> list[ModelSpec]:
    """Catalog models whose name, slug or repo resembles `name` (case, spaces and punctuation ignored):
    "llama 3.1 8b" finds Llama-3.1-8B."""
    key = _key(name.split("/")[-1]) or _key(name)
    word = re.match(r"[a-z]{4,}", key)  # "mistral" of Mistral-7B-Instruct: the family's name
    scored = []
    for spec in catalog.models.values():
        names = {_key(n) for n in (spec.name, spec.slug, spec.hf_repo.split("/")[-1])}
        best = max(1.0 if key and (key == n or (len(key) >= 4 and (key in n or n in key)))
                   else difflib.SequenceMatcher(None, key, n).ratio() for n in names)
        if word and best < 0.6 and any(n.startswith(word.group()) for n in names):
            best = 0.6
        if best >= 0.6:
            scored.append((-best, spec.name, spec))
    return [s for _, _, s in sorted(scored, key=lambda t: t[:2])[:limit]]


def find_spec(catalog: Catalog, name: str) -> ModelSpec | NotFound:
    """The catalog's model, else the Hub's (a repo id, as the API fetches it), else NotFound saying why."""
    spec = catalog.lookup(name)
    if spec is not None:
        return spec
    try:
        return hub.spec_for(catalog, name, None)[0]
    except (UnknownModel, InvalidRequest, HubError) as exc:
        if "/" not in name:
            reason = f"{name!r} is not in the catalog, and it is not a Hugging Face repo id (owner/name)."
        elif isinstance(exc, hub.HubUnavailable | hub.HubDisabled):
            reason = f"{name!r} is not in the catalog, and the Hugging Face Hub could not be reached: {exc}"
        else:
            reason = f"{name!r} is not in the catalog, and the Hugging Face Hub did not answer it: {exc}"
        return NotFound(name, reason, close_matches(catalog, name))


def _bad_fields(exc: ValidationError | InvalidRequest) -> list[tuple[str, str]]:
    if isinstance(exc, InvalidRequest):
        return [(exc.field, exc.message)]
    return [(str(e["loc"][0]) if e["loc"] else "form", _thousands(e["msg"])) for e in exc.errors()]


def lenient(build: Callable[[Mapping[str, str]], T], query: Mapping[str, str]) -> tuple[T, list[tuple[str, str]]]:
    """build(query), dropping each field it refuses and naming it, until the rest is accepted."""
    data, errors = dict(query), []
    for _ in range(len(data) + 1):
        try:
            return build(data), errors
        except (ValidationError, InvalidRequest) as exc:
            bad = _bad_fields(exc)
            errors += bad
            dropped = {f for f, _ in bad} & set(data)
            data = {k: v for k, v in data.items() if k not in dropped} if dropped else {}
    return build({}), errors


def _thousands(message: str) -> str:
    """Limits as people read them: 10000000 -> 10,000,000."""
    return re.sub(r"\d{5,}", lambda m: f"{int(m.group()):,}", message)


def _typed_memory(raw: str) -> float:
    try:
        return GPU_MEMORY_GIB.validate_python(raw)
    except ValidationError:
        raise InvalidRequest("gpu_memory", "GPU memory is a number of GiB above 0, up to 16,384") from None


def calc_state(catalog: Catalog, spec: ModelSpec, name: str, query: Mapping[str, str]) -> CalcState:
    """The page's estimate for every valid field of the URL; each bad field is dropped and named."""
    data = {k: v for k, v in query.items() if v != "" and k not in PAGE_ONLY}  # blank = the field's default
    data["model"] = name if catalog.lookup(name) is None else spec.slug
    errors: list[tuple[str, str]] = []
    memory, gpus = None, list(catalog.gpus)
    raw = (query.get("gpu_memory") or "").strip()
    if raw:
        try:
            memory = _typed_memory(raw)
        except InvalidRequest as exc:
            errors.append((exc.field, exc.message))
    for _ in range(len(data) + 1):  # each round drops at least one bad field
        try:
            params = VramRequest.model_validate(data)
            typed: Gpu | None = target_gpu(int(memory * GIB)) if memory else None
            if typed is not None:
                params = params.model_copy(update={"gpu": typed.slug})
            est = hub.estimate_for(catalog, params) if data["model"] != spec.slug else \
                estimate(spec, params, [*gpus, *([typed] if typed else [])])
            return CalcState(spec, est, params, memory, errors)
        except (ValidationError, InvalidRequest) as exc:
            bad = _bad_fields(exc)
            errors += bad
            dropped = {f for f, _ in bad} & (set(data) - {"model"})
            data = {k: v for k, v in data.items() if k not in dropped} if dropped else {"model": data["model"]}
    raise AssertionError("unreachable: the model alone always validates")  # pragma: no cover

