"""transformers with the repository's own code (trust_remote_code=True) held to its committed traces
(model_specs/traces/remote/: THUDM/glm-4v-9b and THUDM/glm-4-9b-chat's modeling_chatglm.py / visual.py run on
fake tensors under torch's MemTracker by `python -m app.measure trace-remote --all`)."""

from __future__ import annotations

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator import estimate
from app.estimator.errors import InvalidRequest
from app.estimator.runtimes.remote_code import REMOTE_CODE, kv_prefill_bytes
from app.estimator.schema import VramRequest
from app.estimator.traces import compare_trace, load_traces

TRACES = load_traces(SPECS_DIR / "traces" / "remote")
ROWS = [row for f in TRACES for row in f.rows]
TOLERANCE = 0.005
MiB = 1 << 20


def test_every_remote_model_is_traced_with_its_sources_recorded():
    assert {f.model for f in TRACES} == set(REMOTE_CODE)
    for f in TRACES:
        assert f.environment.command.startswith("python -m app.measure trace-remote --all")
        assert f.sources and f.shims
        for src in f.sources:  # a public copy, pinned: repository, path, commit and content hash
            assert "/" in src.repository and src.path and len(src.commit) == 40 and len(src.sha256) == 64
        assert all(row.code == "remote" and row.model == f.model for row in f.rows)
    glm4v = next(f for f in TRACES if f.model == "glm-4v-9b")
    assert {s.file for s in glm4v.sources} == {"modeling_chatglm.py", "visual.py"}
    assert {r.images for r in glm4v.rows} == {0, 1}


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_remote_estimate_within_half_a_percent_of_the_traced_peak(catalog: Catalog, row):
    spec = catalog.model(row.model)
    c = compare_trace(spec, row)
    # the cache's storages after the prefill, byte for byte (glm-4v-9b: V views keep the fused QKV output)
    held = kv_prefill_bytes(spec, 2, row.batch, row.context + row.images * spec.vision.positions_per_image
                            if row.images else row.context)
    assert held == row.kv_cache_bytes
    assert abs(c.estimated_weights - row.parameters_bytes) < MiB
    assert abs(c.error) <= TOLERANCE, (f"{row.label}: estimated {c.estimated_peak:,} vs traced {row.peak_bytes:,} "
                                       f"({c.error:+.3%})")


def test_no_traced_remote_row_is_under_estimated(catalog: Catalog):
    errors = {r.label: compare_trace(catalog.model(r.model), r).error for r in ROWS}
    print("\n" + "\n".join(f"{k:<52}{v:+.4%}" for k, v in errors.items()))
    assert min(errors.values()) > -1e-9, "erring low is the worst error"


def test_the_card_snippet_path_is_the_default(catalog: Catalog):
    for slug in REMOTE_CODE:
        spec = catalog.model(slug)
        default = estimate(spec, VramRequest(model=slug, context=8192))
        remote = estimate(spec, VramRequest(model=slug, context=8192, trust_remote_code=True))
        native = estimate(spec, VramRequest(model=slug, context=8192, trust_remote_code=False))
        assert default.total_bytes == remote.total_bytes != native.total_bytes
        assert any("trust_remote_code=True" in a for a in default.assumptions)
    # glm-4v-9b's cache per token: 40 layers x (rotated K: 2 KV heads x 128, and the fused QKV output its V
    # views: (32 + 2 + 2) x 128 = 4608) x 2 bytes (bf16); the K/V alone are 40,960 bytes
    assert kv_prefill_bytes(catalog.model("glm-4v-9b"), 2, 1, 1) == 40 * (2 * 128 + 4608) * 2


def test_remote_code_for_another_model_is_refused_naming_the_field(catalog: Catalog):
    with pytest.raises(InvalidRequest) as err:
        estimate(catalog.model("llama-3.1-8b"), VramRequest(model="llama-3.1-8b", trust_remote_code=True))
    assert err.value.field == "trust_remote_code"
    with pytest.raises(InvalidRequest) as err:  # glm-4v-9b's file calls torch SDPA itself: no eager path
        estimate(catalog.model("glm-4v-9b"), VramRequest(model="glm-4v-9b", attn_implementation="eager"))
    assert err.value.field == "attn_implementation"


def test_bitsandbytes_with_glm4v_code_quantizes_the_output_layer(catalog: Catalog):
    """transformers' get_keys_to_not_convert keeps 16-bit only the last parameter's module and
    get_output_embeddings(); glm-4v-9b's file builds its vision tower last and defines no output embeddings, so
    its output layer (151,552 x 4,096) is quantized too: NF4 stores half a byte per value plus an fp32 absmax
    per 64 values and its 16-entry fp32 code (bitsandbytes 0.50.2, model_specs/bnb/weights.json) where bf16 stores 2
    bytes."""
    n = 151_552 * 4_096
    saved = 2 * n - (n // 2 + n // 64 * 4 + 16 * 4)
    for slug, expected in (("glm-4v-9b", saved), ("glm-4-9b-chat", 0)):  # chat: output_layer is the last
        spec = catalog.model(slug)
        remote = estimate(spec, VramRequest(model=slug, quantization="bnb-nf4", trust_remote_code=True))
        native = estimate(spec, VramRequest(model=slug, quantization="bnb-nf4", trust_remote_code=False))
        assert native.breakdown.weights - remote.breakdown.weights == expected
