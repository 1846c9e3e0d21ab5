"""URLs that carry a calculator state, so any state can be shared, reloaded and fetched as JSON."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from app.estimator.schema import ResolvedRequest, VramRequest
from app.estimator.solve import target_gpu

CARD_FIELDS = ("quantization", "context", "images", "gpu")
ALL_FIELDS = ("model", "quantization", "context", "batch", "images", "kv_cache", "runtime", "flash_attention",
              "gpu", "gpu_count")
TYPED_GPU = target_gpu(1).slug  # the solver's stand-in for a memory size the visitor typed (not in /api/gpus)


def flags(params: VramRequest | None) -> dict[str, str]:
    """The fields the request set beyond the resolved ones (runtime flags), as text for a URL: with them
    the URL holds the whole state, so reloading or sharing it gives the same number."""
    if params is None:
        return {}
    given = params.model_dump(exclude_unset=True, exclude={"model", "config", *ALL_FIELDS})
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in given.items() if v is not None}


def _query(state: ResolvedRequest, fields: tuple[str, ...], extra: dict | None = None) -> str:
    values = {f: getattr(state, f) for f in fields}
    pairs = [(f, str(values[f]).lower() if isinstance(values[f], bool) else values[f])
             for f in fields if values[f] is not None and not (f == "gpu" and values[f] == TYPED_GPU)]
    pairs += [(k, v) for k, v in (extra or {}).items() if v is not None]
    return urlencode(pairs)


def card_url(state: ResolvedRequest, gpu_memory: float | None = None) -> str:
    return f"/models/{state.model}?{_query(state, CARD_FIELDS, {'gpu_memory': gpu_memory})}"


def calculator_url(state: ResolvedRequest, given: dict[str, str] | None = None,
                   gpu_memory: float | None = None) -> str:
    return f"/calculator?{_query(state, ALL_FIELDS, {**(given or {}), 'gpu_memory': gpu_memory})}"


def api_url(state: ResolvedRequest, given: dict[str, str] | None = None) -> str:
    """The JSON twin; a typed-in memory size is not an API GPU, so it is left out there."""
    return f"/api/vram?{_query(state, ALL_FIELDS, given)}"


def page_url(current: str | None, state: ResolvedRequest, given: dict[str, str] | None = None) -> str:
    """The page URL for `state` on the page the user is on (HX-Current-URL), card or calculator."""
    path = urlsplit(current or "").path
    if path == f"/models/{state.model}":
        return card_url(state)
    return calculator_url(state, given)
