"""The context solver agrees with `estimate` at its boundary, for every runtime and a typed-in size."""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator import VramRequest, estimate
from app.estimator.solve import fit_table, largest_context, target_gpu

GiB = 1 << 30


def _fits(spec, req, gpu) -> bool:
    return estimate(spec, req.model_copy(update={"gpu": gpu.slug}), [gpu]).fits[0].fits


@pytest.mark.parametrize("quantization,runtime", [("q4_k_m", None), ("bf16", None), ("bf16", "vllm"),
                                                  ("int4", None), ("q8_0", None)])
@pytest.mark.parametrize("memory_gib", [8, 12, 24])
def test_largest_context_is_the_boundary(catalog: Catalog, quantization, runtime, memory_gib):
    spec = catalog.model("llama-3.1-8b")
    req = VramRequest(model=spec.slug, quantization=quantization, runtime=runtime)
    gpu = target_gpu(memory_gib * GiB)
    best = largest_context(spec, req, gpu)
    if best is None:
        assert not _fits(spec, req.model_copy(update={"context": 1}), gpu)
        return
    assert _fits(spec, req.model_copy(update={"context": best}), gpu), (quantization, memory_gib, best)
    if best < spec.language_model.max_context:
        assert not _fits(spec, req.model_copy(update={"context": best + 1}), gpu), (quantization, memory_gib, best)


def test_fit_table_covers_every_format_and_marks_the_cap(catalog: Catalog):
    spec = catalog.model("llama-3.1-8b")
    rows = fit_table(spec, VramRequest(model=spec.slug, context=8192), target_gpu(24 * GiB))
    by = {r.quantization: r for r in rows}
    assert by["fp32"].max_context is None and not by["fp32"].fits  # 32 GB of fp32 weights alone
    assert by["q4_k_m"].capped and by["q4_k_m"].max_context == spec.language_model.max_context
    assert all(r.fits == (r.max_context is not None and r.max_context >= 8192) for r in rows)
