"""Stored sizes: llama.cpp's published Llama-3.1-8B table, GGUF mixes, and the GPU formats' layouts."""

from __future__ import annotations

from collections import Counter

import pytest
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from app.estimator import FORMATS, ModelSpec, weights_report
from app.estimator.gguf.rules import FILE_TYPES, tensor_bytes
from app.estimator.params import Tensor
from app.estimator.quantization import stored_weights
from app.estimator.spec import LanguageModel

# llama.cpp tools/quantize/README.md, Meta-Llama-3.1-8B (shared/reference/quantization-and-runtimes.md s1):
# (bits per weight over the file's 8,030,261,312 elements, GiB)
LLAMA_31_8B = {
    "q2_k": (3.1593, 2.95), "q3_k_s": (3.6429, 3.41), "q3_k_m": (3.9960, 3.74), "q3_k_l": (4.2979, 4.02),
    "q4_k_s": (4.6672, 4.36), "q4_k_m": (4.8944, 4.58), "q5_k_s": (5.5704, 5.21), "q5_k_m": (5.7036, 5.33),
    "q6_k": (6.5633, 6.14), "q8_0": (8.5008, 7.95), "iq4_xs": (4.4597, 4.17), "iq4_nl": (4.6818, 4.38),
    "f16": (16.0005, 14.96),
}


@pytest.mark.parametrize("slug", list(LLAMA_31_8B))
def test_llama_31_8b_matches_llama_cpp_table(llama: ModelSpec, slug: str):
    bpw, gib = LLAMA_31_8B[slug]
    w = stored_weights(llama, slug)
    assert w.file_elements == 8_030_261_312
    assert round(w.bits_per_weight, 4) == bpw, f"{slug}: expected {bpw} bpw, got {w.bits_per_weight:.6f}"
    assert round(w.total_bytes / 2**30, 2) == gib, f"{slug}: expected {gib} GiB, got {w.total_bytes / 2**30:.4f}"


def _llama_like(vocab: int, kv_heads: int, ffn: int) -> ModelSpec:
    lm = LanguageModel(source="test", layers=32, hidden=4096, heads=32, kv_heads=kv_heads, head_dim=128, ffn=ffn,
                       ffn_kind="swiglu", vocab=vocab, tied_embeddings=False, qkv_bias=False, linear_bias=False,
                       norm="rmsnorm", max_context=4096, fused_qkv=False, dtype="bfloat16")
    card = {"source": "test", "fields": [], "description": []}
    return ModelSpec(slug="t", name="t", family="t", hf_repo="t", released="2024-01-01", license="t",
                     modality="text", language_model=lm, card=card)


def test_q4_k_m_mix_of_a_32_layer_llama():
    """Reference s1: a 32-layer Llama-shaped Q4_K_M file holds 33 Q6_K, 193 Q4_K and 65 F32 tensors;
    Mistral-7B Q4_K_M is 4.07 GiB (4.83 bpw), Llama-2-7B Q4_K_M 3.80 GiB."""
    mistral = _llama_like(vocab=32000, kv_heads=8, ffn=14336)
    counts = Counter()
    for g in weights_report(mistral, "q4_k_m").groups:
        counts[g.type] += g.count
    assert dict(counts) == {"Q6_K": 33, "Q4_K": 193, "F32": 65}
    w = stored_weights(mistral, "q4_k_m")
    assert (round(w.total_bytes / 2**30, 2), round(w.bits_per_weight, 2)) == (4.07, 4.83)
    llama2 = stored_weights(_llama_like(vocab=32000, kv_heads=32, ffn=11008), "q4_k_m")
    assert round(llama2.total_bytes / 2**30, 2) == 3.80


def test_block_sizes_come_from_gguf_package():
    t = Tensor("blk.0.ffn_down.weight", (4096, 14336), "language", "linear", 0)
    for name in ("Q4_K", "Q6_K", "Q8_0", "IQ4_XS"):
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[name]]
        assert tensor_bytes(GGMLQuantizationType[name], t) == 4096 * 14336 // block * size


def test_glm_ffn_down_falls_back_from_k_quants(glm4v: ModelSpec):
    """GLM's ffn_down rows are 13,696 long, not a multiple of 256: llama-quantize falls back
    (Q4_K -> Q5_0, Q6_K -> Q8_0, Q3_K -> Q4_0, IQ4_XS -> IQ4_NL)."""
    def down_types(slug: str) -> dict[str, int]:
        return {g.type: g.count for g in weights_report(glm4v, slug).groups if g.name == "blk.N.ffn_down.weight"}

    # use_more_bits over 40 layers: i < 5, i >= 35, and i = 7, 10, ..., 34: 20 layers wanted Q6_K
    assert down_types("q4_k_m") == {"Q8_0": 20, "Q5_0": 20}
    assert down_types("q4_k_s") == {"Q5_1": 5, "Q5_0": 35}  # i < n/8 wanted Q5_K
    assert down_types("q3_k_s") == {"Q4_0": 40}
    assert down_types("iq4_xs") == {"Q5_1": 5, "IQ4_NL": 35}
    assert down_types("q8_0") == {"Q8_0": 40}


def test_glm_fused_qkv_follows_attn_v_rules(glm4v: ModelSpec):
    """llama.cpp's category_is_attn_v includes attn_qkv: Q4_K_M gives it Q6_K in use_more_bits layers."""
    qkv = {g.type: g.count for g in weights_report(glm4v, "q4_k_m").groups if g.name == "blk.N.attn_qkv.weight"}
    assert qkv == {"Q6_K": 20, "Q4_K": 20}


def test_gguf_vision_tower_is_an_f16_mmproj(glm4v: ModelSpec):
    w = stored_weights(glm4v, "q4_k_m")
    vision = [g for g in weights_report(glm4v, "q4_k_m").groups if g.part == "vision"]
    assert {g.type for g in vision} == {"F16", "F32"}
    one_d = sum(g.parameters for g in vision if g.type == "F32")
    assert w.vision_bytes == 2 * 4_506_369_536 + 2 * one_d


def _linear(out: int, inp: int) -> Tensor:
    return Tensor("blk.0.attn_output.weight", (out, inp), "language", "linear", 0)


@pytest.mark.parametrize(("slug", "expected_bpw"), [
    ("bnb-nf4", 4 + 32 / 64 + 512 / (4096 * 4096)),  # 4-bit codes + fp32 absmax per 64 + the 16-entry fp32 code
    ("bnb-fp4", 4 + 32 / 64 + 512 / (4096 * 4096)),
    ("bnb-int8", 8 + 32 / 4096),  # int8 + fp32 scale per output row
    ("awq-int4", 4 + 16 / 128 + 4 / 128),  # 4.15625
    ("gptq-int4", 4 + 16 / 128 + 4 / 128 + 32 / 4096),  # + int32 g_idx per input row
    ("gptq-int8", 8 + 16 / 128 + 8 / 128 + 32 / 4096),
    ("fp8", 8 + 32 / (4096 * 4096)),
])
def test_gpu_format_layouts(slug: str, expected_bpw: float):
    t = _linear(4096, 4096)
    size = FORMATS[slug].linear_size(t)
    assert 8 * size / t.numel == pytest.approx(expected_bpw, abs=1e-12), slug


def test_gpu_formats_leave_embeddings_and_vision_unquantized(glm4v: ModelSpec):
    groups = weights_report(glm4v, "awq-int4").groups
    assert {g.type for g in groups if g.part == "vision"} == {"BF16"}
    assert {g.type for g in groups if g.name in ("token_embd.weight", "output.weight")} == {"BF16"}
    bnb = weights_report(glm4v, "bnb-nf4").groups
    assert {g.type for g in bnb if g.name == "output.weight"} == {"BF16"}
    assert "bnb NF4" in {g.type for g in bnb if g.part == "vision"}  # bitsandbytes replaces every nn.Linear


def test_float_formats_are_exact(glm4v: ModelSpec):
    assert stored_weights(glm4v, "bf16").total_bytes == 2 * 13_906_320_896
    assert stored_weights(glm4v, "fp32").total_bytes == 4 * 13_906_320_896


def test_every_gguf_slug_is_a_file_type():
    assert {s for s, f in FORMATS.items() if f.is_gguf} == set(FILE_TYPES)
    required = {"fp32", "fp16", "bf16", "fp8", "int8", "int4", "bnb-int8", "bnb-nf4", "bnb-fp4", "gptq-int4",
                "gptq-int8", "awq-int4", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q5_0", "q4_k_m", "q4_k_s", "q4_0",
                "q3_k_l", "q3_k_m", "q3_k_s", "q2_k", "iq4_xs", "iq4_nl", "iq3_m", "iq3_xxs", "iq2_m", "iq2_xxs",
                "iq1_m"}
    assert required <= set(FORMATS)
