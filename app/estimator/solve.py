"""Solvers over `estimate`: does a request fit in a given memory, and the largest context that does.

Every answer comes from `estimate` itself (the fit verdict of the runtime that would run it), so the
solver can never disagree with the breakdown it stands beside. Memory is monotone in the context for
every runtime (padding only makes steps), so a binary search over the context is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from app.estimator.errors import InvalidRequest
from app.estimator.estimate import estimate
from app.estimator.gpus import Gpu
from app.estimator.quantization import FORMATS
from app.estimator.schema import MAX_CONTEXT, VramRequest
from app.estimator.spec import ModelSpec

_TARGET = "target"  # slug of the synthetic GPU that stands for a typed-in memory size


class ContextFit(BaseModel):
    """Per format: whether the request fits, and the largest context (tokens per sequence) that does."""

    quantization: str = Field(description="Weight format slug.")
    runtime: str = Field(description="Runtime the format resolves to.")
    fits: bool = Field(description="Whether the request, at its own context, fits.")
    headroom_bytes: int = Field(description="Usable memory minus what the request needs; negative: short by.")
    max_context: int | None = Field(description="Largest context that fits (None: not even 1 token fits).")
    capped: bool = Field(description="max_context stopped at the model's configured maximum, not at memory.")


def target_gpu(memory_bytes: int, usable_fraction: float = 1.0) -> Gpu:
    """A GPU standing for `memory_bytes` of memory (a named GPU, or a size the user typed)."""
    return Gpu(slug=_TARGET, name=f"{memory_bytes / 2**30:.2f} GiB", kind="datacenter",
               memory_bytes=memory_bytes, usable_fraction=usable_fraction, bandwidth_gb_s=1.0,
               source="memory size given by the user")


def _verdict(spec: ModelSpec, req: VramRequest, gpu: Gpu) -> tuple[bool, int]:
    est = estimate(spec, req.model_copy(update={"gpu": gpu.slug}), [gpu])
    return bool(est.runs()), est.margin_bytes() or 0  # the answer's one verdict (vLLM: whether it starts)


def text_ceiling(spec: ModelSpec, req: VramRequest) -> int:
    """The most text tokens a sequence may hold: the model's positions less the request's image positions
    (GLM-4V-9B with one image: 8,192 less its image positions, not 8,192)."""
    images = estimate(spec, req.model_copy(update={"context": 1, "gpu": None})).detail.image_positions
    return max(1, spec.language_model.max_context - images)


def largest_context(spec: ModelSpec, req: VramRequest, gpu: Gpu, ceiling: int | None = None) -> int | None:
    """Largest `context` for which `req` fits on `gpu` (x req.gpu_count), searched in [1, ceiling].

    Args:
        spec: the model.
        req: the request; its `context` is what varies, everything else is kept.
        gpu: the memory to fit in (see `target_gpu` for a typed-in size).
        ceiling: the largest context considered; default the model's configured maximum.

    Returns:
        The context in tokens, or None when not even one token fits.

    Raises:
        InvalidRequest: the request is not valid for this model whatever the context.
    """
    hi = min(ceiling or spec.language_model.max_context, MAX_CONTEXT)
    probe = req
    if not _verdict(spec, probe.model_copy(update={"context": 1}), gpu)[0]:
        return None
    lo = 1
    while lo < hi:  # invariant: lo fits; the answer lies in [lo, hi]
        mid = (lo + hi + 1) // 2
        if _verdict(spec, probe.model_copy(update={"context": mid}), gpu)[0]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def fit_table(spec: ModelSpec, req: VramRequest, gpu: Gpu, formats: Sequence[str] | None = None) -> list[ContextFit]:
    """`ContextFit` for every format (or `formats`) the request can run with; formats whose runtime
    refuses the request's other settings are left out."""
    rows = []
    for slug in formats or list(FORMATS):
        r = req.model_copy(update={"quantization": slug})
        try:
            ok, headroom = _verdict(spec, r, gpu)
            runtime = estimate(spec, r.model_copy(update={"gpu": None})).request.runtime
        except InvalidRequest:
            continue
        ceiling = text_ceiling(spec, r)
        best = largest_context(spec, r, gpu, ceiling)
        rows.append(ContextFit(quantization=slug, runtime=runtime, fits=ok, headroom_bytes=headroom,
                               max_context=best, capped=best == ceiling))
    return rows
