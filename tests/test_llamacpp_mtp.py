"""llama.cpp --spec-type draft-mtp (speculative_method mtp on llama.cpp), sized by the rules of the llama.cpp that
llama-cpp-python 0.3.36 vendors (0c1e570); each test names the source lines its expected value follows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.catalog import Catalog
from app.estimator import VramRequest, estimate
from app.estimator.schema import VramEstimate

MiB, GiB = 1 << 20, 1 << 30
MARGIN = 1024 * MiB


def _buf(e: VramEstimate, name: str, device: str = "gpu") -> int:
    assert e.llamacpp is not None
    return sum(b.bytes for b in e.llamacpp.buffers if b.name == name and b.device == device)


def _est(catalog: Catalog, slug: str = "qwen3.5-27b", **kw) -> VramEstimate:
    spec = catalog.model(slug)
    return estimate(spec, VramRequest(model=slug, runtime="llama.cpp", quantization="q4_k_m", **kw))


@pytest.mark.parametrize(("context", "cells"), [(8192, 8192), (16384, 16384), (5000, 5120)])
def test_draft_kv_is_one_full_attention_layer_in_f16(catalog: Catalog, context: int, cells: int):
    """The MTP context's cache holds the nextn layer only (src/llama-model.cpp L2792-L2804: filter il >=
    n_layer()), n_ctx as the target's (common/speculative.cpp L2530; padded to 256: 5000 -> 5120), types
    --spec-draft-type-k/-v, default f16 (common/common.h L343-L344), whatever -ctk/-ctv the target uses.
    Qwen3.5-27B config.json: num_key_value_heads 4, head_dim 256 -> K and V rows of 4 x 256 f16 = 2048 bytes."""
    lm = catalog.model("qwen3.5-27b").language_model
    assert (lm.kv_heads, lm.head_dim) == (4, 256)
    for extra in ({}, {"cache_type_k": "q8_0", "cache_type_v": "q8_0", "flash_attention": True}):
        e = _est(catalog, context=context, speculative_method="mtp", **extra)
        assert _buf(e, "mtp_kv") == cells * 2 * 2048


@pytest.mark.parametrize(("n_max", "factor"), [(None, 4), (1, 2), (5, 6)])
def test_recurrent_states_kept_for_rollback(catalog: Catalog, n_max: int | None, factor: int):
    """The target context gets n_rs_seq = --spec-draft-n-max (default 3; common/common.h L328, L396-L401,
    common.cpp L1635) on qwen35 (llm_arch_supports_rs_rollback, src/llama-arch.cpp L1123-L1139), and
    llama_memory_recurrent allocates mem_size x (1 + n_rs_seq) rows (src/llama-memory-recurrent.cpp L101)."""
    plain = _buf(_est(catalog, context=8192), "rs")
    kw = {"num_speculative_tokens": n_max} if n_max else {}
    assert plain > 0 and _buf(_est(catalog, context=8192, speculative_method="mtp", **kw), "rs") == factor * plain


def test_target_buffers_otherwise_unchanged(catalog: Catalog):
    """The draft context is a second context: the target's model, KV and compute buffers stay as they were
    (the MTP block is reported apart, as mtp_model)."""
    a, b = _est(catalog, context=8192), _est(catalog, context=8192, speculative_method="mtp")
    for name in ("model", "kv", "compute"):
        assert _buf(a, name) == _buf(b, name)
    assert _buf(b, "mtp_model") > 0 and _buf(b, "mtp_compute") > 0 and _buf(b, "mtp_output", "host") > 0


def test_fit_lowers_context_with_the_draft_counted(catalog: Catalog):
    """--fit with an MTP context: common_fit_params gets the draft as its extra model (common/common.cpp
    L1218-L1231; shares_model: no weights counted twice, fit.cpp L250-L254), whose memory is measured at the
    candidate's n_ctx and added to every projection (fit.cpp L206-L258). Step 2 then interpolates over the sums
    (L424-L431): the expected n_ctx from the estimator's device buffers (mtp_* included) at the two ends."""
    spec = catalog.model("qwen3.5-27b")
    train, low = spec.language_model.max_context, 4096
    base = {"speculative_method": "mtp"}

    def used(n_ctx: int) -> int:
        e = _est(catalog, n_ctx=n_ctx, **base)
        return sum(b.bytes for b in e.llamacpp.buffers if b.device == "gpu"
                   and b.name in ("model", "kv", "rs", "compute", "mtp_model", "mtp_kv", "mtp_compute"))

    free = 24 * GiB
    target = free - MARGIN
    full, small = used(train), used(low)
    assert small < target < full
    ctx = low + (train - low) * (target - small) // (full - small)
    ctx -= ctx % 256
    fit = _est(catalog, n_ctx=0, free_memory=free, **base).llamacpp.fit
    assert fit is not None and fit.status == "context" and fit.n_ctx == ctx and fit.projected == used(ctx)
    assert "--spec-type draft-mtp --spec-draft-n-max 3 " in fit.command
    plain = _est(catalog, n_ctx=0, free_memory=free).llamacpp.fit
    assert plain is not None and plain.n_ctx > fit.n_ctx


@pytest.mark.parametrize(("extra", "field", "says"), [
    ({"model": "llama-3.1-8b-instruct", "speculative_method": "mtp"}, "speculative_method", "no MTP layer"),
    ({"model": "qwen3.5-27b", "speculative_method": "qwen3_5_mtp"}, "speculative_method", "allowed on llama.cpp"),
    ({"model": "qwen3.5-27b", "num_speculative_tokens": 2}, "num_speculative_tokens", "needs speculative_method"),
])
def test_bad_mtp_requests_are_422_naming_the_field(client: TestClient, extra: dict, field: str, says: str):
    r = client.post("/api/vram", json={"runtime": "llama.cpp", "quantization": "q4_k_m", **extra})
    assert r.status_code == 422, r.text
    assert field in r.text and says in r.text
