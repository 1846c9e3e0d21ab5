"""The config importer: 422s that name the key, field sources, stored formats, the cache, and no other
exception for any dict (Hypothesis)."""

from __future__ import annotations

import contextlib
import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.catalog import SPECS_DIR, load_catalog
from app.catalog.adapters import ARCHITECTURES
from app.catalog.build import build
from app.catalog.importer import spec_from_config
from app.estimator import InvalidRequest, UnknownChoice, weights_report
from app.estimator.spec import ModelSpec

CONFIGS = SPECS_DIR / "configs"
SLUGS = sorted(p.name for p in CONFIGS.iterdir() if (p / "config.json").is_file())


def _config(slug: str) -> dict:
    return json.loads((CONFIGS / slug / "config.json").read_text())


def test_committed_specs_equal_a_fresh_import():
    """`python -m app.catalog.build --check`: nothing to regenerate."""
    assert build(check=True) == []


def test_every_generated_spec_names_its_public_source():
    for slug in SLUGS:
        source = json.loads((CONFIGS / slug / "source.json").read_text())
        assert source["url"].startswith("https://github.com/"), slug
        assert len(source["revision"]) == 40, slug
        spec = load_catalog().model(slug)
        assert source["url"] in spec.language_model.source
        assert spec.vendor and spec.family


def test_unknown_model_type_lists_supported_types():
    with pytest.raises(UnknownChoice) as err:
        spec_from_config({"model_type": "no_such_arch"})
    assert err.value.field == "config.model_type"
    assert set(err.value.allowed) == set(ARCHITECTURES)


@pytest.mark.parametrize(("slug", "key"), [("qwen3-14b", "num_hidden_layers"), ("llama-3.1-70b", "hidden_size"),
                                           ("deepseek-v3", "kv_lora_rank"), ("gpt-oss-20b", "num_local_experts")])
def test_missing_key_is_named(slug: str, key: str):
    config = _config(slug)
    del config[key]
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == f"config.{key}"


@pytest.mark.parametrize("value", ["big", -4, 0, 2.5, True, [1], 10**12])
def test_bad_value_is_named(value):
    config = _config("qwen2.5-7b-instruct")
    config["hidden_size"] = value
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == "config.hidden_size"


def test_nested_text_config_missing():
    with pytest.raises(InvalidRequest) as err:
        spec_from_config({"model_type": "gemma3", "vision_config": {}})
    assert err.value.field == "config.text_config"


def test_inconsistent_heads_is_a_422():
    config = _config("qwen3-14b")
    config["num_key_value_heads"] = 7
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == "config.num_key_value_heads"


def test_field_sources_name_the_config_keys():
    lm = spec_from_config(_config("qwen3-14b")).language_model
    assert lm.field_sources["layers"] == "config.json num_hidden_layers"
    assert lm.field_sources["kv_heads"] == "config.json num_key_value_heads"
    assert lm.field_sources["head_dim"] == "config.json head_dim"
    assert lm.field_sources["tied_embeddings"] == "config.json tie_word_embeddings"


def test_import_is_cached_per_config():
    a = spec_from_config(_config("qwen3-8b"), repo="Qwen/Qwen3-8B")
    b = spec_from_config(_config("qwen3-8b"), repo="Qwen/Qwen3-8B")
    assert a is b
    assert spec_from_config(_config("qwen3-8b")) is not a  # a different source is a different spec


@pytest.mark.parametrize(("q", "fmt"), [
    ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "gptq-int4"),
    ({"quant_method": "gptq", "bits": 8}, "gptq-int8"),
    ({"quant_method": "awq", "bits": 4, "version": "gemm"}, "awq-int4"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "bnb-nf4"),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-int8"),
    ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "fp8"),
    ({"quant_method": "fp8", "weight_block_size": [128, 128]}, "fp8-block128"),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {
        "num_bits": 8, "type": "float", "strategy": "channel"}}}}, "fp8"),
    ({"quant_method": "mxfp4"}, "mxfp4"),
])
def test_quantization_config_picks_the_stored_format(q: dict, fmt: str):
    config = _config("qwen2.5-7b-instruct")
    config["quantization_config"] = q
    spec = spec_from_config(config)
    assert spec.language_model.stored_format == fmt
    assert weights_report(spec).quantization == fmt


def test_unknown_quant_method_is_named():
    config = _config("qwen2.5-7b-instruct")
    config["quantization_config"] = {"quant_method": "hqq"}
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == "config.quantization_config.quant_method"


def test_released_formats_follow_the_configs():
    catalog = load_catalog()
    assert catalog.model("gpt-oss-20b").default_format == "mxfp4"  # quantization_config quant_method mxfp4
    assert catalog.model("deepseek-v3").default_format == "fp8-block128"  # fp8, weight_block_size [128, 128]
    assert catalog.model("qwen3-14b").default_format == "bf16"
    groups = {g.name: g.type for g in weights_report(catalog.model("gpt-oss-20b")).groups}
    assert groups["blk.N.ffn_up_exps.weight"] == "MXFP4"
    assert groups["blk.N.attn_q.weight"] == "BF16"  # modules_to_not_convert: self_attn, router, embeddings


def test_catalog_answers_by_repo_id_any_case():
    catalog = load_catalog()
    assert catalog.model("Qwen/Qwen2.5-7B-Instruct").slug == "qwen2.5-7b-instruct"
    assert catalog.model("qwen/qwen2.5-7b-instruct").slug == "qwen2.5-7b-instruct"
    assert catalog.model("THUDM/glm-4v-9b").slug == "glm-4v-9b"
    assert catalog.model("QWEN3-14B").slug == "qwen3-14b"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _import(config: object) -> None:
    with contextlib.suppress(InvalidRequest):
        assert isinstance(spec_from_config(config), ModelSpec)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.text(max_size=12), JSON, max_size=6) | JSON)
def test_fuzz_any_value_is_a_spec_or_a_422(config):
    _import(config)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(slug=st.sampled_from(SLUGS), data=st.data())
def test_fuzz_mutated_real_configs(slug: str, data):
    """Real configs with keys dropped or replaced by junk reach deep into every adapter."""
    config = copy.deepcopy(_config(slug))
    for key in data.draw(st.lists(st.sampled_from(sorted(config)), max_size=4, unique=True)):
        if data.draw(st.booleans()):
            del config[key]
        else:
            config[key] = data.draw(JSON)
    _import(config)


@pytest.mark.parametrize("model_type", sorted(set(ARCHITECTURES) - {"gemma3_text"}))
def test_each_type_with_only_model_type_is_a_422(model_type: str):
    with pytest.raises(InvalidRequest):
        spec_from_config({"model_type": model_type})


def test_gemma3_text_alone_is_gemma3_text_configs_defaults():
    """Gemma3TextConfig() is complete on its own (released Gemma 3 text_configs rely on it), so a bare
    {"model_type": "gemma3_text"} is its default model, as transformers builds it."""
    lm = spec_from_config({"model_type": "gemma3_text"}).language_model
    assert (lm.layers, lm.hidden, lm.heads, lm.kv_heads, lm.head_dim, lm.vocab) == (26, 2304, 8, 4, 256, 262_208)
    assert lm.field_sources["layers"] == "num_hidden_layers absent: transformers Gemma3TextConfig default"


def test_chatglm_with_a_vision_tower_is_refused_not_undercounted():
    """A remote-code GLM-4V config: importing only its text part would under-count the weights."""
    config = {"model_type": "chatglm", "num_layers": 40, "hidden_size": 4096, "num_attention_heads": 32,
              "kv_channels": 128, "ffn_hidden_size": 13696, "padded_vocab_size": 151552, "seq_length": 8192,
              "vision_config": {"num_hidden_layers": 63}}
    with pytest.raises(InvalidRequest) as err:
        spec_from_config(config)
    assert err.value.field == "config.vision_config"
