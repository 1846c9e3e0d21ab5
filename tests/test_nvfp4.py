"""NVFP4 / ModelOpt checkpoints as configs describe them: which format, which modules stay unquantized, which
runtimes refuse them and why. Byte counts against vLLM's registered parameters: tests/test_vllm_quant_weights.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR, load_catalog
from app.catalog.importer import spec_from_config
from app.estimator import InvalidRequest, VramRequest, estimate, weights_report

CONFIGS = SPECS_DIR / "configs"


def _config(slug: str) -> dict:
    return json.loads((CONFIGS / slug / "config.json").read_text())


def test_both_nvfp4_releases_are_in_the_catalog():
    catalog = load_catalog()
    assert catalog.model("gemma-4-31b-it-nvfp4").default_format == "nvfp4"  # modelopt, quant_algo NVFP4
    assert catalog.model("qwen3.6-27b-nvfp4").default_format == "modelopt-mixed"  # quant_algo MIXED_PRECISION


def test_gemma_ignore_list_keeps_attention_and_vision_in_bf16():
    """ignore: model.language_model.layers.N.self_attn* for every layer, model.vision_tower*, embed_vision*."""
    groups = {(g.name, g.part): g.type for g in weights_report(load_catalog().model("gemma-4-31b-it-nvfp4")).groups}
    for name in ("blk.N.attn_q.weight", "blk.N.attn_k.weight", "blk.N.attn_v.weight", "blk.N.attn_output.weight"):
        assert groups[(name, "language")] == "BF16"
    for name in ("blk.N.ffn_gate.weight", "blk.N.ffn_up.weight", "blk.N.ffn_down.weight"):
        assert groups[(name, "language")] == "NVFP4 (W4A4)"
    assert {ty for (_, part), ty in groups.items() if part == "vision"} == {"BF16"}


def test_qwen36_quantized_layers_pick_each_module():
    """quantized_layers: linear_attn and self_attn projections FP8, mlp and lm_head W4A16_NVFP4; in_proj_a/b are
    not listed (bf16)."""
    spec = load_catalog().model("qwen3.6-27b-nvfp4")
    config = _config("qwen3.6-27b-nvfp4")["quantization_config"]["quantized_layers"]
    assert config["model.language_model.layers.0.linear_attn.in_proj_qkv"]["quant_algo"] == "FP8"
    assert "model.language_model.layers.0.linear_attn.in_proj_a" not in config
    assert config["lm_head"]["quant_algo"] == "W4A16_NVFP4"
    groups = {g.name: g.type for g in weights_report(spec).groups if g.part == "language"}
    assert groups["blk.N.attn_qkv.weight"] == groups["blk.N.attn_q.weight"] == "FP8 e4m3 per-tensor (static)"
    assert groups["blk.N.ssm_alpha.weight"] == groups["blk.N.ssm_beta.weight"] == "BF16"
    assert groups["blk.N.ffn_up.weight"] == groups["output.weight"] == "NVFP4 (W4A16)"


@pytest.mark.parametrize(("q", "fmt"), [
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "ignore": ["lm_head"]}, "nvfp4"),
    ({"quant_method": "modelopt", "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}},
     "fp8-static"),
    ({"quant_method": "modelopt", "quant_algo": "W4A16_NVFP4"}, "nvfp4-w4a16"),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {
        "weights": {"num_bits": 4, "type": "float", "group_size": 16, "strategy": "tensor_group"},
        "input_activations": {"num_bits": 4, "type": "float", "group_size": 16}}}}, "nvfp4"),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {
        "weights": {"num_bits": 4, "type": "float", "group_size": 16, "strategy": "tensor_group"}}}},
     "nvfp4-w4a16"),
])
def test_quantization_config_picks_the_nvfp4_formats(q: dict, fmt: str):
    config = _config("qwen3-8b")
    config["quantization_config"] = q
    assert spec_from_config(config).default_format == fmt


def test_modelopt_exclude_pattern_covers_the_module_and_its_children():
    """ModelOpt writes `module*`; vLLM reads it as `module` and `module.*` (modelopt.py apply_vllm_mapper);
    exact module names exclude that module alone."""
    config = _config("qwen3-8b")
    config["quantization_config"] = {"quant_method": "modelopt", "quant_algo": "NVFP4",
                                     "ignore": ["lm_head", "model.layers.3.mlp*", "model.layers.5.self_attn.o_proj"]}
    named = spec_from_config(config).language_model.stored_schemes
    assert named["blk.3.ffn_up.weight"] == named["blk.3.ffn_down.weight"] == "unquantized"
    assert named["blk.4.ffn_up.weight"] == "nvfp4"
    assert named["blk.5.attn_output.weight"] == "unquantized" and named["blk.6.attn_output.weight"] == "nvfp4"
    assert named["blk.*.attn_q.weight"] == "nvfp4"


def test_unknown_modelopt_algo_is_a_422_naming_it():
    config = _config("qwen3-8b")
    config["quantization_config"] = {"quant_method": "modelopt", "quant_algo": "INT4_AWQ"}
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == "config.quantization_config.quant_algo"
    assert "NVFP4" in err.value.message


@pytest.mark.parametrize("slug", ["gemma-4-31b-it-nvfp4", "qwen3.6-27b-nvfp4"])
def test_runtimes_answer_nvfp4_checkpoints_honestly(slug: str, client):
    spec = load_catalog().model(slug)
    assert estimate(spec, VramRequest(model=slug)).request.runtime == "vllm"
    r = client.get("/api/vram", params={"model": slug, "runtime": "llama.cpp"})
    assert r.status_code == 422
    assert "not a GGUF" in r.text and "runtime" in r.text
    r = client.get("/api/vram", params={"model": slug, "runtime": "transformers"})
    assert r.status_code == 422
    assert "modelopt" in r.text


@pytest.mark.parametrize("endpoint", ["/api/vram", "/api/weights"])
def test_mixed_layout_is_only_the_checkpoint_own(endpoint: str, client):
    r = client.get(endpoint, params={"model": "qwen3-8b", "quantization": "modelopt-mixed"})
    assert r.status_code == 422
    assert "quantization" in r.text and "not stored in it" in r.text


def test_a_user_picked_nvfp4_quantizes_decoder_linears_only():
    """--quantization nvfp4 on a bf16 model: the default rule (decoder linears), embeddings and lm_head bf16."""
    groups = {g.name: g.type for g in weights_report(load_catalog().model("qwen3-8b"), "nvfp4").groups}
    assert groups["blk.N.attn_q.weight"] == "NVFP4 (W4A4)"
    assert groups["token_embd.weight"] == groups["output.weight"] == "BF16"


def test_configs_name_their_public_copies():
    for slug in ("gemma-4-31b-it-nvfp4", "qwen3.6-27b-nvfp4"):
        source = json.loads((CONFIGS / slug / "source.json").read_text())
        shared = Path("/work/shared/configs-2026") / slug / "config.json"
        assert source["repo"].startswith("nvidia/") and source["revision"] in source["url"]
        if shared.is_file():
            assert shared.read_bytes() == (CONFIGS / slug / "config.json").read_bytes()


@pytest.mark.parametrize(("q", "group"), [
    ({"quant_method": "gptq", "bits": 4, "group_size": 128}, None),
    ({"quant_method": "gptq", "bits": 4, "group_size": 32}, 32),
    ({"quant_method": "gptq", "bits": 4, "group_size": -1}, -1),
    ({"quant_method": "awq", "bits": 4, "group_size": 64, "version": "gemm"}, 64),
])
def test_gptq_awq_group_size_is_the_checkpoints(q: dict, group):
    config = _config("qwen3-8b")
    config["quantization_config"] = q
    spec = spec_from_config(config)
    assert spec.language_model.stored_group_size == group
    label = {None: "g128", -1: "per-channel"}.get(group, f"g{group}")
    assert {g.type for g in weights_report(spec).groups if g.name == "blk.N.attn_q.weight"} == {
        f"{'AWQ' if q['quant_method'] == 'awq' else 'GPTQ'} int4 {label}"}


def test_bad_group_size_is_a_422_naming_it():
    config = _config("qwen3-8b")
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 0}
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == "config.quantization_config.group_size"


@pytest.mark.parametrize("slug", ["gemma-4-31b-it-nvfp4", "qwen3.6-27b-nvfp4"])
def test_vllm_auto_kv_cache_is_the_checkpoints_fp8(slug: str):
    """kv_cache_scheme {dynamic false, num_bits 8, type float}: vLLM's --kv-cache-dtype auto resolves to fp8
    (utils/torch_utils.py resolve_kv_cache_dtype_string, in the 0.19, 0.32 and 0.34 wheels); an explicit
    kv_cache wins; releases before 0.19 (not checked) keep the model dtype."""
    spec = load_catalog().model(slug)
    assert _config(slug)["quantization_config"]["kv_cache_scheme"] == {"dynamic": False, "num_bits": 8,
                                                                       "type": "float"}
    assert spec.language_model.stored_kv_cache == "fp8"
    assert estimate(spec, VramRequest(model=slug)).request.kv_cache == "fp8"
    assert estimate(spec, VramRequest(model=slug, kv_cache="bf16")).request.kv_cache == "bf16"
    assert estimate(spec, VramRequest(model=slug, vllm_version="0.15.0")).request.kv_cache == "bf16"


@pytest.mark.parametrize(("q", "kv"), [
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "kv_cache_scheme": None}, None),
    ({"quant_method": "modelopt", "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}}, "fp8"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4",
      "kv_cache_scheme": {"dynamic": False, "num_bits": 4, "type": "float"}}, None),
    ({"quant_method": "fp8", "weight_block_size": [128, 128]}, None),
])
def test_stored_kv_cache_reads_modelopt_schemes(q: dict, kv):
    config = _config("qwen3-8b")
    config["quantization_config"] = q
    assert spec_from_config(config).language_model.stored_kv_cache == kv
