"""Repo ids not in the catalog: config.json from the Hugging Face Hub, imported, estimated.

The one door the API uses for `model` + `config`: catalog slugs, catalog repo ids and inline configs go
to the catalog as before; any other `owner/name` is fetched (app/hub/_client.py), imported with the catalog's
importer at the commit the Hub reports, and the answer names that commit (`hub`) and compares our stored
weight bytes with the repo's model.safetensors.index.json `metadata.total_size`.
With fetching off (VRAM_OFFLINE=1) such ids are unknown models (404).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.catalog import Catalog
from app.estimator import InvalidRequest, ModelSpec, VramEstimate, VramRequest, estimate, weights_report
from app.estimator.schema import HubSource

if TYPE_CHECKING:
    from app.hub._client import HubConfig


def _hub_source(got: HubConfig, spec: ModelSpec) -> HubSource:
    stored = weights_report(spec)
    total = got.index_total_size
    return HubSource(repo=got.repo, revision=got.revision, pinned=got.pinned, config_url=got.source_url,
                     index_total_size=total, stored_bytes=stored.total_bytes, stored_format=stored.quantization,
                     matches_index=None if total is None else stored.total_bytes == total, notes=got.notes)


def spec_for(catalog: Catalog, model: str | None, config: dict[str, Any] | None) -> tuple[ModelSpec, HubSource | None]:
    """The spec a request names, and its Hub source when it was fetched (None otherwise)."""
    if config is not None or model is None or "/" not in model or catalog.lookup(model) is not None:
        return catalog.spec_for(model, config), None
    # httpx and the importer's adapters only when a repo id leaves the catalog (a fast `vram` start)
    from app.catalog.importer import spec_from_config
    from app.hub._client import fetch_config

    got = fetch_config(model.strip())
    try:
        spec = spec_from_config(got.config, repo=got.repo, revision=got.revision, source_url=got.source_url)
    except InvalidRequest as exc:
        raise InvalidRequest("model", f"{got.repo}'s config.json (Hugging Face Hub, {got.revision}): "
                                      f"{exc.message}") from None
    return spec, _hub_source(got, spec)


def _notes(source: HubSource) -> tuple[list[str], list[str]]:
    """(assumptions, warnings) lines that name the commit and the index cross-check."""
    pinned = f"commit {source.revision}" if source.pinned else f"revision {source.revision!r} (not pinned)"
    assumptions = [f"config.json read from the Hugging Face Hub: {source.repo} at {pinned} ({source.config_url})"]
    warnings = list(source.notes)
    if source.matches_index:
        assumptions.append(f"weights cross-checked: {source.stored_bytes:,} bytes stored ({source.stored_format}), "
                           "equal to the repo's model.safetensors.index.json total_size")
    elif source.index_total_size is not None:
        warnings.append(f"our stored weight bytes ({source.stored_bytes:,}, {source.stored_format}) differ from "
                        f"the repo's model.safetensors.index.json total_size ({source.index_total_size:,}) by "
                        f"{source.stored_bytes - source.index_total_size:+,} bytes")
    return assumptions, warnings


def estimate_for(catalog: Catalog, params: VramRequest) -> VramEstimate:
    """estimate() for whatever `params` names; a Hub-fetched model's answer carries `hub` and its notes."""
    spec, source = spec_for(catalog, params.model, params.config)
    answer = estimate(spec, params, catalog.gpus)
    if source is None:
        return answer
    assumptions, warnings = _notes(source)
    return answer.model_copy(update={"hub": source, "assumptions": [*answer.assumptions, *assumptions],
                                     "warnings": [*answer.warnings, *warnings]})
