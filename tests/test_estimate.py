"""estimate(): the contract every caller relies on."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from app.catalog import Catalog
from app.estimator import OutOfRange, UnknownChoice, VramRequest, estimate


def test_breakdown_keys_and_total(glm4v, catalog: Catalog):
    e = estimate(glm4v, VramRequest(model="glm-4v-9b", quantization="q4_k_m", context=8192, images=1), catalog.gpus)
    b = asdict(e.breakdown)
    assert set(b) == {"weights", "kv_cache", "activations", "overhead"}
    assert all(isinstance(v, int) and v >= 0 for v in b.values())
    assert e.total_bytes == sum(b.values())
    assert e.detail.sequence_length == 8192 + 1599
    assert e.request.runtime == "llama.cpp" and e.request.kv_cache == "fp16"


def test_defaults_resolve_to_the_released_dtype(glm4v):
    e = estimate(glm4v, VramRequest(model="glm-4v-9b"))
    assert (e.request.quantization, e.request.runtime, e.request.kv_cache, e.request.context) == (
        "bf16", "transformers", "bf16", 1024)
    assert e.detail.parameters == 13_906_320_896


def test_context_beyond_release_warns_with_the_card(glm4v):
    e = estimate(glm4v, VramRequest(model="glm-4v-9b", context=32768))
    assert any("exceed the released model's trained context of 8,192" in w for w in e.warnings)
    assert any(w.startswith("Card says Context Length 128K") for w in e.warnings)
    ok = estimate(glm4v, VramRequest(model="glm-4v-9b", context=4096))
    assert not any("Context Length" in w for w in ok.warnings)
    assert any("Key-Value Heads 32" in w for w in ok.warnings)


@pytest.mark.parametrize(("slug", "images", "field"), [
    ("glm-4v-9b", 2, "images"), ("glm-4-9b", 1, "images")])
def test_images_out_of_range(catalog: Catalog, slug: str, images: int, field: str):
    with pytest.raises(OutOfRange) as err:
        estimate(catalog.model(slug), VramRequest(model=slug, images=images))
    assert err.value.field == field


@pytest.mark.parametrize(("kw", "field"), [
    ({"quantization": "q9"}, "quantization"),
    ({"quantization": "q4_k_m", "runtime": "transformers"}, "runtime"),
    ({"runtime": "tgi"}, "runtime"),
    ({"kv_cache": "q8_0"}, "kv_cache"),
])
def test_bad_choices_name_the_field_and_the_valid_values(glm4v, kw: dict, field: str):
    with pytest.raises(UnknownChoice) as err:
        estimate(glm4v, VramRequest(model="glm-4v-9b", **kw))
    assert err.value.field == field and err.value.allowed


def test_more_context_never_needs_less_memory(catalog: Catalog):
    from app.estimator import RUNTIMES
    from app.estimator.quantization import FORMATS

    for spec in catalog.models.values():
        for q in ("bf16", "q4_k_m", "awq-int4"):
            if all(spec.family in RUNTIMES[r].unsupported for r in FORMATS[q].runtimes):
                continue  # no runtime of this format runs the family (DeepSeek-V4 in GGUF): a 422, tested apart
            totals = [estimate(spec, VramRequest(model=spec.slug, quantization=q, context=c)).total_bytes
                      for c in (1024, 8192, 65536)]
            assert totals == sorted(totals), (spec.slug, q, totals)
