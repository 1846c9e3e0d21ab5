"""The GPU catalog and the fit verdicts."""

from __future__ import annotations

from app.catalog import Catalog
from app.estimator import ModelSpec, VramRequest, estimate


def test_catalog_has_fifteen_gpus_of_every_kind(catalog: Catalog):
    assert len(catalog.gpus) >= 15
    assert {g.kind for g in catalog.gpus} == {"consumer", "workstation", "datacenter", "apple"}
    assert all(g.source and g.memory_bytes > 0 and g.bandwidth_gb_s > 0 for g in catalog.gpus)


def test_requested_gpu_first_then_by_memory(glm4v: ModelSpec, catalog: Catalog):
    e = estimate(glm4v, VramRequest(model="glm-4v-9b", quantization="q4_k_m", gpu="h200"), catalog.gpus)
    assert e.fits[0].gpu == "h200"
    rest = [f.memory_bytes for f in e.fits[1:]]
    assert rest == sorted(rest)


def test_headroom_is_memory_minus_total(glm4v: ModelSpec, catalog: Catalog):
    e = estimate(glm4v, VramRequest(model="glm-4v-9b", quantization="q4_k_m", context=8192, images=1,
                                    gpu="rtx-4090", gpu_count=2), catalog.gpus)
    f = e.fits[0]
    assert f.count == 2 and f.memory_bytes == 2 * 24564 * 2**20
    assert f.headroom_bytes == f.memory_bytes - e.total_bytes and f.fits


def test_apple_counts_only_the_metal_working_set(glm4v: ModelSpec, catalog: Catalog):
    e = estimate(glm4v, VramRequest(model="glm-4v-9b"), catalog.gpus)
    mac = next(f for f in e.fits if f.gpu == "apple-m3-max-64gb")
    assert mac.headroom_bytes == int(64 * 2**30 * 0.75) - e.total_bytes
