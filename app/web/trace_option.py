"""/api/vram?trace=true: trace the model's real transformers code beside the formula.

torch and transformers are imported only when a request asks for a trace, and only if the server's
environment has them; otherwise the request gets a 422 naming the field.
"""

from __future__ import annotations

import importlib.util

from app.estimator import InvalidRequest, ModelSpec, VramEstimate
from app.estimator.schema import TracedPeak
from app.estimator.traces import compare_trace

TRACEABLE_FORMATS = ("bf16", "fp16", "fp32")


def torch_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _check(est: VramEstimate) -> None:
    r = est.request
    if not torch_available():
        raise InvalidRequest("trace", "trace=true needs torch and transformers installed in the server's "
                                      "environment (pip install torch transformers); they are not")
    if r.runtime != "transformers":
        raise InvalidRequest("trace", f"trace=true traces transformers' code; runtime is {r.runtime!r}")
    if r.quantization not in TRACEABLE_FORMATS:
        raise InvalidRequest("trace", f"trace=true builds float weights only ({', '.join(TRACEABLE_FORMATS)}); "
                                      f"quantization is {r.quantization!r}")
    if r.images:
        raise InvalidRequest("trace", "trace=true traces text prompts; set images=0")


def with_trace(spec: ModelSpec, est: VramEstimate) -> VramEstimate:
    """The estimate with the traced peak of the same prompt length, batch and dtype attached.

    Raises:
        InvalidRequest: field `trace`, when torch is missing or the request cannot be traced.
    """
    _check(est)
    import torch
    import transformers

    from app.measure.trace import Untraceable, trace

    r = est.request
    try:
        (row,) = trace(spec, [r.context], [r.batch], r.quantization)
    except Untraceable as exc:
        raise InvalidRequest("trace", f"{spec.name} cannot be traced: {exc}") from None
    c = compare_trace(spec, row)
    peak = TracedPeak(
        architecture=row.architecture, attn_implementation=row.attn_implementation,
        parameters_bytes=row.parameters_bytes, kv_cache_bytes=row.kv_cache_bytes,
        temporaries_bytes=row.temporaries_bytes, peak_bytes=row.peak_bytes, formula_bytes=c.estimated_peak,
        error=round(c.error, 6), seconds=row.seconds, torch=torch.__version__, transformers=transformers.__version__,
        note="allocated peak only: the CUDA context, cuBLAS workspaces and allocator reserve in `overhead` are "
             "GPU additions, not yet measured on a GPU",
    )
    return est.model_copy(update={"trace": peak})
