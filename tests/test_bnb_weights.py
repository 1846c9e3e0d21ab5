"""Our bitsandbytes formats against bitsandbytes and transformers themselves (model_specs/bnb/weights.json, written by
`python -m app.measure bnb-weights`: transformers' bnb quantizer replaces the modules of the model built on the meta
device, bitsandbytes quantizes one real tensor of each replaced shape on the CPU)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator import module_names
from app.estimator.params import Tensor, model_tensors
from app.estimator.quantization import (
    COMPUTE_BYTES,
    FORMATS,
    dequant_scratch,
    skip_split,
    stored_weights,
    tensor_stored,
)

TABLE = json.loads((SPECS_DIR / "bnb" / "weights.json").read_text())
CASES = [(case, fmt) for case, c in TABLE["cases"].items() for fmt in c["formats"]]
# bnb-nf4-dq is the format of pre-quantized bnb-4bit checkpoints, which vLLM loads too: it quantizes the language
# model's decoder linears, MoE experts included (the modules those checkpoints store in 4 bit), not what
# load_in_4bit quantizes on the fly in transformers 5.25 (vision linears too; experts not). Its layout is held to
# bitsandbytes on every case, its module set on the dense text models only
DQ_MODULES_DIFFER = {"gemma-3-4b-it", "qwen2.5-vl-7b-instruct", "glm-4.1v-9b-thinking", "qwen3-30b-a3b",
                     "mixtral-8x7b-v0.1", "lfm2.5-vl-1.6b", "ministral-3-3b-instruct-2512",
                     "llama-4-scout-17b-16e-instruct"}
SKIPS = [(name, fmt) for name, s in TABLE["skip_modules"].items() for fmt in s["formats"]]


def _ours(catalog: Catalog, case: str, slug: str) -> tuple[Counter, int, int]:
    """(quantized (out, in) shapes, their bytes, elements left in 16 bit) as our format stores the model."""
    spec = catalog.model(TABLE["cases"][case]["model"])
    fmt = FORMATS[slug]
    shapes: Counter = Counter()
    quantized = kept = 0
    for t in model_tensors(spec):
        if t.gguf_only:
            continue
        label, size = tensor_stored(spec, fmt, t)
        if label == fmt.linear_label:
            shapes[(t.shape[-2] // t.modules, t.shape[-1])] += t.modules * t.numel // (t.shape[-1] * t.shape[-2])
            quantized += size
        else:
            assert size == t.numel * COMPUTE_BYTES
            kept += t.numel
    return shapes, quantized, kept


def test_the_table_names_its_command_and_versions():
    assert TABLE["command"].startswith("python -m app.measure bnb-weights")
    assert TABLE["versions"]["bitsandbytes"] == "0.50.2" and TABLE["versions"]["transformers"] == "5.25.0"


@pytest.mark.parametrize(("case", "slug"), CASES)
def test_each_shape_stores_what_bitsandbytes_stores(case: str, slug: str):
    """Our layout arithmetic on every replaced shape equals the bytes of the tensors bitsandbytes produced."""
    for row in TABLE["cases"][case]["formats"][slug]["quantized"]:
        t = Tensor("w", tuple(row["shape"]), "language", "linear")
        assert FORMATS[slug].linear_size(t) == sum(row["bytes"].values()), row


@pytest.mark.parametrize(("case", "slug"), CASES)
def test_stored_bytes_equal_bitsandbytes_on_the_real_tensor_list(catalog: Catalog, case: str, slug: str):
    got = TABLE["cases"][case]["formats"][slug]
    shapes, quantized, kept = _ours(catalog, case, slug)
    if slug == "bnb-nf4-dq" and case in DQ_MODULES_DIFFER:
        pytest.skip("pre-quantized bnb-4bit checkpoints: vision 16-bit, experts 4-bit (see DQ_MODULES_DIFFER)")
    assert shapes == Counter({tuple(r["shape"]): r["count"] for r in got["quantized"]})  # the modules bnb replaces
    assert kept == got["elements_16bit"]  # and those transformers leaves in 16 bit
    assert quantized == got["quantized_bytes"]
    spec = catalog.model(TABLE["cases"][case]["model"])
    assert stored_weights(spec, slug).total_bytes == got["total_bytes"]


def test_moe_experts_stay_16bit_under_bitsandbytes():
    """transformers 5.25 keeps MoE experts as 3D parameters, not nn.Linear modules: replace_with_bnb_linear leaves
    them in the load dtype, so a bnb load of a MoE model is mostly 16-bit."""
    for case in ("qwen3-30b-a3b", "mixtral-8x7b-v0.1"):
        f = TABLE["cases"][case]["formats"]["bnb-nf4"]
        assert 2 * f["elements_16bit"] > 0.9 * f["total_bytes"]


def test_bnb_4bit_prefill_counts_the_largest_dequantized_weight(catalog: Catalog):
    """bitsandbytes 0.50.2 (backends/cuda/ops.py gemm_4bit, _dequant_linear_fallback) dequantizes a 4-bit weight into
    an [out, in] tensor of the compute dtype before F.linear over more than 4 rows; Llama-3.1-8B's largest linears
    are the MLP's 14,336 x 4,096 (config.json intermediate_size x hidden_size)."""
    from app.estimator import estimate
    from app.estimator.quantization import dequant_scratch
    from app.estimator.schema import VramRequest

    spec = catalog.model("llama-3.1-8b")

    def act(q: str) -> int:
        req = VramRequest(model=spec.slug, runtime="transformers", quantization=q, context=4096)
        return estimate(spec, req).breakdown.activations

    base = act("bf16")
    assert act("bnb-nf4") - base == act("bnb-fp4") - base == 14_336 * 4_096 * 2
    # double quant: the fp32 absmax dequantized from uint8 and absmax + offset, one per 64 values, beside it
    assert act("bnb-nf4-dq") - base == 14_336 * 4_096 * 2 + 2 * 4 * 14_336 * 4_096 // 64
    assert act("bnb-int8") == base  # LLM.int8()'s own buffers are not modelled
    assert dequant_scratch(spec, "bnb-nf4", 4, 2) == 0  # the fused kernel (_GEMM_4BIT_CUSTOM_FLOOR_M)
    assert dequant_scratch(spec, "bnb-nf4", 5, 2) == 14_336 * 4_096 * 2


def test_the_vision_towers_measured_have_their_own_q_k_v_modules():
    """SigLIP2 (LFM2.5-VL), Pixtral (Ministral 3) and Llama 4's tower: separate q_proj, k_proj, v_proj, each with
    its own quant state; SigLIP2's and Llama 4's patch embeddings are nn.Linear, which bitsandbytes quantizes."""
    for case, tower in (("lfm2.5-vl-1.6b", "model.vision_tower.encoder.layers.N.self_attn"),
                        ("ministral-3-3b-instruct-2512", "model.vision_tower.transformer.layers.N.attention"),
                        ("llama-4-scout-17b-16e-instruct", "vision_model.model.layers.N.self_attn")):
        names = {row[0] for row in TABLE["cases"][case]["linear_modules"]}
        assert {f"{tower}.{m}" for m in ("q_proj", "k_proj", "v_proj")} <= names
    for case, patch in (("lfm2.5-vl-1.6b", "model.vision_tower.embeddings.patch_embedding"),
                        ("llama-4-scout-17b-16e-instruct", "vision_model.patch_embedding.linear")):
        assert patch in {row[0] for row in TABLE["cases"][case]["linear_modules"]}


def _our_modules(catalog: Catalog, case: str) -> Counter:
    """(module name with layer indices as N, out, in) -> count, from our tensors and app/estimator/module_names."""
    spec = catalog.model(TABLE["cases"][case]["model"])
    naming = module_names.naming(spec)
    assert naming is not None, spec.family
    out: Counter = Counter()
    for t in model_tensors(spec):
        if not t.gguf_only and (FORMATS["bnb-nf4"].quantizes(t) or t.kind == "output"):
            names = module_names.module_names(naming, t)
            assert names is not None, t.name
            for name in names:
                out[(re.sub(r"\.\d+\.", ".N.", name), t.shape[-2] // t.modules, t.shape[-1])] += 1
    return out


@pytest.mark.parametrize("case", list(TABLE["cases"]))
def test_module_names_are_the_classes_own(catalog: Catalog, case: str):
    """Every linear bitsandbytes may convert, named as transformers' class names it (what llm_int8_skip_modules
    matches): the same names, shapes and counts as the class built on the meta device. A tied output layer has no
    tensor of its own here (the class's lm_head holds the embedding)."""
    spec = catalog.model(TABLE["cases"][case]["model"])
    theirs = Counter({(n, o, i): c for n, o, i, c in TABLE["cases"][case]["linear_modules"]
                      if not (spec.language_model.tied_embeddings and n.endswith("lm_head"))})
    assert _our_modules(catalog, case) == theirs


@pytest.mark.parametrize(("name", "slug"), SKIPS)
def test_skip_modules_store_what_bitsandbytes_stores(catalog: Catalog, name: str, slug: str):
    """BitsAndBytesConfig(llm_int8_skip_modules=...): the modules left 16-bit and the bytes, exactly as transformers'
    quantizer and bitsandbytes give them (a suffix, a prefix at a module boundary, a regex from the start; `mlp` and
    `visual` match no linear; with a list, lm_head is quantized unless named)."""
    row = TABLE["skip_modules"][name]
    got = row["formats"][slug]
    spec = catalog.model(row["model"])
    fmt, skip = FORMATS[slug], tuple(row["llm_int8_skip_modules"])
    split = skip_split(spec, fmt, skip)
    shapes: Counter = Counter()
    kept = 0
    for t in model_tensors(spec):
        if t.gguf_only:
            continue
        quantized, left = split(t)
        if quantized:
            shapes[(t.shape[-2] // t.modules, t.shape[-1])] += quantized
        kept += t.numel - quantized * (t.numel // t.modules)
    assert shapes == Counter({tuple(r["shape"]): r["count"] for r in got["quantized"]})
    assert kept == got["elements_16bit"]
    assert stored_weights(spec, slug, skip).total_bytes == got["total_bytes"]


def test_a_skip_list_drops_transformers_defaults():
    """Measured: with llm_int8_skip_modules=["mlp"] transformers converts lm_head too (no default added) and `mlp`
    matches no linear, so the load is smaller than the default one; `visual` is no prefix of model.visual.*."""
    default = TABLE["cases"]["llama-3.1-8b-instruct"]["formats"]["bnb-nf4"]
    mlp = TABLE["skip_modules"]["llama-3.1-8b-instruct mlp"]["formats"]["bnb-nf4"]
    assert mlp["linears_left_16bit"] == [] and default["linears_left_16bit"] == ["lm_head"]
    assert mlp["total_bytes"] < default["total_bytes"]
    visual = TABLE["skip_modules"]["qwen2.5-vl-7b-instruct visual"]["formats"]["bnb-nf4"]
    assert visual["linears_left_16bit"] == []


def test_a_skipped_largest_linear_is_not_dequantized(catalog: Catalog):
    """bitsandbytes dequantizes only Linear4bit weights: with down_proj skipped, Qwen3-8B's largest 4-bit linear is
    gate_proj / up_proj (12,288 x 4,096, config.json intermediate_size x hidden_size), the same size; with every
    MLP linear skipped it is q_proj / o_proj (4,096 x 4,096). A quantized lm_head runs over one position per
    sequence (logits_to_keep=1): dequantized only past 4 sequences."""
    spec = catalog.model("qwen3-8b")
    assert dequant_scratch(spec, "bnb-nf4", 4096, 2, (".*mlp", "lm_head")) == 4_096 * 4_096 * 2
    assert dequant_scratch(spec, "bnb-nf4", 4096, 2, ("down_proj", "lm_head")) == 12_288 * 4_096 * 2
    assert dequant_scratch(spec, "bnb-nf4", 4096, 2, ("down_proj",), 1) == 12_288 * 4_096 * 2
    assert dequant_scratch(spec, "bnb-nf4", 4096, 2, ("down_proj",), 5) == 151_936 * 4_096 * 2


def test_llm_int8_scratch_is_a_labelled_line_outside_the_total(catalog: Catalog):
    """bitsandbytes 0.50.2 MatMul8bitLt.forward for a bf16 input of m rows (read from its code, not measured):
    quantization phase 6 m in + 4 m (fp16 copy, abs, bool mask, int8 copy, row stats); matmul phase with no
    outliers m in + 4 m + 6 m out (int8 copy and stats kept, int32 product, fp16 output beside the bf16 one).
    Llama-3.1-8B at 4,096 tokens: the largest is gate_proj/up_proj's matmul phase (14,336 x 4,096, config.json
    intermediate_size x hidden_size); with every input column an outlier, down_proj's fp32 dequantized columns
    (2 x 4 bytes) and their int8 gather, 9 x 4,096 x 14,336, on top of its kept tensors."""
    from app.estimator import estimate
    from app.estimator.quantization import int8_scratch
    from app.estimator.schema import VramRequest

    spec, m = catalog.model("llama-3.1-8b"), 4096
    low = m * 4096 + 4 * m + 6 * m * 14_336
    high = m * 14_336 + 4 * m + 8 * 14_336 + 2 * m * 14_336 + 9 * 4096 * 14_336
    assert int8_scratch(spec, "bnb-int8", m) == (low, high)
    assert int8_scratch(spec, "bnb-nf4", m) == (0, 0)
    est = estimate(spec, VramRequest(model=spec.slug, runtime="transformers", quantization="bnb-int8", context=m))
    assert any(a.startswith("LLM.int8() matmul scratch, not in the total") and f"{low // 2**20:,} MiB" in a
               for a in est.assumptions)
    # skipping the MLP's linears leaves q_proj / o_proj (4,096 x 4,096) the largest
    assert int8_scratch(spec, "bnb-int8", m, (".*mlp",))[0] == m * 4096 + 4 * m + 6 * m * 4096
