"""Exact parameter counts against the reference (shared/reference/glm-family.md) and transformers."""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator import ModelSpec, count_parameters
from app.estimator.params import model_tensors

# shared/reference/glm-family.md and quantization-and-runtimes.md (Meta-Llama-3.1-8B)
EXPECTED = [
    ("glm-4v-9b", 9_399_951_360, 4_506_369_536, 13_906_320_896),
    ("glm-4-9b", 9_399_951_360, 0, 9_399_951_360),
    ("glm-4-9b-chat", 9_399_951_360, 0, 9_399_951_360),
    ("glm-4-9b-chat-1m", 9_483_857_920, 0, 9_483_857_920),
    ("glm-4-9b-0414", 9_400_279_040, 0, 9_400_279_040),
    ("glm-z1-9b-0414", 9_400_279_040, 0, 9_400_279_040),
    ("glm-4-32b-0414", 32_566_081_536, 0, 32_566_081_536),
    ("llama-3.1-8b", 8_030_261_248, 0, 8_030_261_248),
]


@pytest.mark.parametrize(("slug", "language", "vision", "total"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_parameter_counts_match_reference(catalog: Catalog, slug: str, language: int, vision: int, total: int):
    got = count_parameters(catalog.model(slug))
    assert (got.language, got.vision, got.total) == (language, vision, total), f"{slug}: expected {total:,}, got {got}"


def _sum(spec: ModelSpec, predicate) -> int:
    return sum(t.numel for t in model_tensors(spec) if predicate(t))


def test_glm4v_parts_match_reference(glm4v: ModelSpec):
    """The reference's per-part table: embedding, one layer, ViT, projector."""
    assert _sum(glm4v, lambda t: t.name == "token_embd.weight") == 620_756_992
    assert _sum(glm4v, lambda t: t.name == "output.weight") == 620_756_992
    assert _sum(glm4v, lambda t: t.part == "language" and t.layer == 0) == 203_960_832
    assert _sum(glm4v, lambda t: t.part == "vision" and not t.name.startswith("mm.")) == 4_291_915_264
    assert _sum(glm4v, lambda t: t.name.startswith("mm.conv")) == 29_364_224
    assert _sum(glm4v, lambda t: t.name.startswith("mm.") and t.name[3:6] in ("boi", "eoi")) == 8_192
    assert _sum(glm4v, lambda t: t.name.startswith("mm.")) == 214_454_272


def test_llama_gguf_file_adds_rope_freqs(llama: ModelSpec):
    """Llama-3.1 GGUF files carry a 64-element rope_freqs tensor that is not a parameter."""
    extra = [t for t in model_tensors(llama) if t.gguf_only]
    assert [(t.name, t.numel) for t in extra] == [("rope_freqs.weight", 64)]
    assert sum(t.numel for t in model_tensors(llama)) == 8_030_261_312


def test_glm41v_vision_tower(catalog: Catalog):
    got = count_parameters(catalog.model("glm-4.1v-9b-thinking"))
    # transformers 5.24 Glm4vForConditionalGeneration() on the meta device: 10,292,777,472 (vision 892,498,432)
    assert (got.vision, got.total) == (892_498_432, 10_292_777_472)
