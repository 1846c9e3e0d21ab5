"""A Hugging Face config.json dict in, a ModelSpec out: the one entry point for inline configs, Hub
fetches and the committed catalog (`python -m app.catalog.build`).

Results are cached per config hash (plus repo/revision/url), so a repeated import costs one hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from typing import Any

from pydantic import ValidationError

from app.catalog.adapters import ARCHITECTURES, generic
from app.catalog.cards import card_for
from app.catalog.config import Cfg, UnsupportedArchitecture
from app.catalog.quant_layout import stored_schemes
from app.catalog.stored import modelopt_algo, stored_format, stored_group_size, stored_kv_cache
from app.estimator.errors import InvalidRequest
from app.estimator.images import image_grid
from app.estimator.params import language_tensors
from app.estimator.spec import Card, LanguageModel, ModelSpec, VisionTower

CACHE_SIZE = 256
_CACHE: OrderedDict[str, ModelSpec] = OrderedDict()
_PLACEHOLDER_CARD = Card(source="-", fields=[], description=[])


def supported_types() -> list[str]:
    return sorted(ARCHITECTURES)


def _key(config: dict[str, Any], repo: str | None, revision: str | None, url: str | None) -> str | None:
    try:
        text = json.dumps([config, repo, revision, url], sort_keys=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return None  # not JSON-shaped (non-string keys, cycles): import it, don't cache it
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _slug(repo: str | None, key: str | None) -> str:
    if repo:
        slug = re.sub(r"[^a-z0-9.\-]+", "-", repo.rsplit("/", 1)[-1].lower()).strip("-.")
        if slug and slug[0].isalnum():
            return slug
    return f"config-{(key or '0' * 12)[:12]}"


def _source(repo: str | None, revision: str | None, url: str | None) -> str:
    where = f"{repo} : config.json" if repo else "config.json supplied with the request"
    if revision:
        where += f" @ {revision}"
    return f"{where} ({url})" if url else where


def _invalid(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    return InvalidRequest("config", f"config gives an inconsistent model ({where}: {first['msg']})")


def _build(config: dict[str, Any], repo: str | None, revision: str | None, url: str | None,
           key: str | None) -> ModelSpec:
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type.strip():
        raise UnsupportedArchitecture(str(model_type)[:60], supported_types())
    arch = ARCHITECTURES.get(model_type)
    if arch is None and not generic.readable(config):
        generic.refuse(model_type)
        raise UnsupportedArchitecture(model_type[:60], supported_types())
    if arch is None:  # no adapter: the generic reader answers, marked unchecked, or refuses with the reason
        adapted, family = generic.adapt(config, model_type[:60]), f"{model_type[:60]} (generic)"
    else:
        adapted, family = arch.adapt(Cfg(config, model_type)), arch.family
    source = _source(repo, revision, url)
    stored = stored_format(config)
    if stored is not None:
        adapted.lm_sources["stored_format"] = "config.json quantization_config"
    group = stored_group_size(config, stored)
    if group is not None:
        adapted.lm_sources["stored_group_size"] = "config.json quantization_config.group_size"
    kv = stored_kv_cache(config)
    if kv is not None:
        adapted.lm_sources["stored_kv_cache"] = "config.json quantization_config.kv_cache_scheme"
    lm = LanguageModel(source=source, field_sources=adapted.lm_sources, stored_format=stored,
                       stored_group_size=group, stored_kv_cache=kv, **adapted.lm)
    if stored is not None:
        q = config["quantization_config"]
        gdn = {i for i, t in enumerate(lm.layer_types or ()) if t == "linear_attention"}
        schemes = stored_schemes(config, stored, modelopt_algo(q), language_tensors(lm), gdn)
        if schemes is not None:
            lm.field_sources["stored_schemes"] = "config.json quantization_config (ignore / quantized_layers)"
            lm = lm.model_copy(update={"stored_schemes": schemes})
    vision = None
    if adapted.vision is not None:
        vision = VisionTower(source=source, field_sources=adapted.vision_sources, **adapted.vision)
        if vision.resize is not None and vision.default_image is not None:  # tokens of the stated default image
            patches, tokens, _ = image_grid(vision, *vision.default_image)
            vision = vision.model_copy(update={"embeddings_per_image": tokens, "patches_per_image": patches,
                                               "image": vision.default_image})
    name = repo.rsplit("/", 1)[-1] if repo else f"{family} (config.json)"
    spec = ModelSpec(slug=_slug(repo, key), name=name, family=family, hf_repo=repo or "",
                     vendor=repo.split("/", 1)[0] if repo and "/" in repo else "", released="", license="",
                     modality="multimodal" if vision else "text", language_model=lm, vision=vision,
                     card=_PLACEHOLDER_CARD)
    return spec.model_copy(update={"card": card_for(spec)})


def spec_from_config(config: dict, *, repo: str | None = None, revision: str | None = None,
                     source_url: str | None = None) -> ModelSpec:
    """The ModelSpec a Hugging Face config.json describes.

    Args:
        config: the parsed config.json (its `model_type` picks the adapter).
        repo: the Hub repo id it came from (names the spec; slug = lowercased name after the slash).
        revision: the commit the file was read at, recorded in the spec's source.
        source_url: where the file was read, recorded in the spec's source.

    Returns:
        A validated ModelSpec whose field_sources name the config key of each value (cached per hash).

    Raises:
        InvalidRequest (422): `config.model_type` not in the registry (lists the supported types),
        a missing key (`config.<key>`), a wrong type or out-of-range value, or an inconsistent model.
    """
    if not isinstance(config, dict):
        raise InvalidRequest("config", "config must be a JSON object (the model's config.json)")
    key = _key(config, repo, revision, source_url)
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    try:
        spec = _build(config, repo, revision, source_url, key)
    except ValidationError as exc:
        raise _invalid(exc) from None
    except InvalidRequest:
        raise
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError, RecursionError) as exc:
        raise InvalidRequest("config", f"config could not be read: {type(exc).__name__}") from None
    if key is not None:
        _CACHE[key] = spec
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return spec
