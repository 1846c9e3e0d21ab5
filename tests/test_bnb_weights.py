"""Our bitsandbytes formats against bitsandbytes and transformers themselves (model_specs/bnb/weights.json, written by
`python -m app.measure bnb-weights`: transformers' bnb quantizer replaces the modules of the model built on the meta
device, bitsandbytes quantizes one real tensor of each replaced shape on the CPU)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.catalog import SPECS_DIR, Catalog
from app.estimator.params import Tensor, model_tensors
from app.estimator.quantization import COMPUTE_BYTES, FORMATS, stored_weights, tensor_stored

TABLE = json.loads((SPECS_DIR / "bnb" / "weights.json").read_text())
CASES = [(case, fmt) for case, c in TABLE["cases"].items() for fmt in c["formats"]]
# bnb-nf4-dq is the format of pre-quantized bnb-4bit checkpoints, which vLLM loads too: it quantizes the language
# model's decoder linears, MoE experts included (the modules those checkpoints store in 4 bit), not what
# load_in_4bit quantizes on the fly in transformers 5.25 (vision linears too; experts not). Its layout is held to
# bitsandbytes on every case, its module set on the dense text models only
DQ_MODULES_DIFFER = {"gemma-3-4b-it", "qwen2.5-vl-7b-instruct", "glm-4.1v-9b-thinking", "qwen3-30b-a3b",
                     "mixtral-8x7b-v0.1"}


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
