"""Every registry entry against transformers' own class, built on the meta device (no weights).

Expected values are `sum(p.numel() for p in model.parameters())` of the transformers class, never our
arithmetic. Configs: the committed released config.json where the catalog has one of that
architecture, else the transformers configuration class's own defaults (named per case).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.catalog import SPECS_DIR
from app.catalog.adapters import ARCHITECTURES
from app.catalog.importer import spec_from_config
from app.estimator import count_parameters

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONFIGS = SPECS_DIR / "configs"

# model_type -> catalog slug whose committed config.json is the released-size input (None: class defaults)
CASES: dict[str, str | None] = {
    "llama": "llama-3.1-70b",
    "mistral": "mistral-nemo-base-2407",
    "mixtral": "mixtral-8x7b-v0.1",
    "qwen2": "qwen2.5-7b-instruct",
    "qwen2_moe": None,  # Qwen2MoeConfig defaults: Qwen1.5-MoE-A2.7B's dimensions
    "qwen3": "qwen3-14b",
    "qwen3_moe": "qwen3-30b-a3b",
    "gemma": None,  # GemmaConfig defaults: gemma-7b's dimensions
    "gemma2": "gemma-2-9b-it",
    "gemma3_text": None,  # Gemma3TextConfig defaults
    "gemma3": None,  # Gemma3Config defaults (Gemma 3 text + SigLIP vision)
    "phi3": "phi-3.5-mini-instruct",
    "deepseek_v2": "fixture:deepseek-v2-lite",  # tests/fixtures/configs/README.md
    "deepseek_v3": "deepseek-v3",
    "gpt_oss": "gpt-oss-120b",
    "glm": None,  # GlmConfig defaults: GLM-4-9B-Chat (THUDM/glm-4-9b-chat-hf)
    "glm4": None,  # Glm4Config defaults: GLM-4-9B-0414
    "glm4v": None,  # Glm4vConfig defaults: GLM-4.1V-9B-Thinking
    "qwen3_next": "qwen3-next-80b-a3b-instruct",
    "qwen3_5": "qwen3.5-27b",
    "qwen3_5_moe": "qwen3.6-35b-a3b",
    "nemotron_h": "nemotron-3-nano-30b-a3b",
    "lfm2": None,  # Lfm2Config defaults: LiquidAI/LFM2-1.2B
    "lfm2_vl": "lfm2.5-vl-1.6b",
    "granitemoehybrid": None,  # GraniteMoeHybridConfig defaults (no Granite 4.0-H config.json was found)
    "olmo3": "olmo-3.1-32b-instruct",
    "glm4_moe": "glm-4.5-air",
    "ernie4_5_moe": "ernie-4.5-21b-a3b-thinking",
    "minimax_m2": "minimax-m2.5",
    "mistral3": "devstral-small-2-24b-instruct-2512",
    "qwen2_5_vl": "qwen2.5-vl-7b-instruct",
    "qwen3_vl": "qwen3-vl-8b-instruct",
    "qwen3_vl_moe": "qwen3-vl-30b-a3b-instruct",
    "gemma4": "gemma-4-26b-a4b",
    "gemma4_text": None,  # Gemma4TextConfig defaults: per-layer embeddings (E2B-style), K and V full layers
    "llama4": "llama-4-scout-17b-16e-instruct",
    "llama4_text": None,  # Llama4TextConfig defaults: Scout's text dimensions
    "deepseek_v32": "deepseek-v3.2",
    "glm4_moe_lite": None,  # Glm4MoeLiteConfig defaults: GLM-4.7-Flash's dimensions (no config.json was found)
    "glm_moe_dsa": "glm-5.2",
    "mimo_v2_flash": "mimo-v2-flash",
    "step3p7": "step-3.7-flash",  # aiconfigurator's flattened copy: its text keys given as text_config (below)
    "deepseek_v4": "deepseek-v4-flash",  # deepseek-v4-pro: test_every_catalog_config_equals_transformers
}



def transformers_kwargs(config: dict) -> dict:
    """The config's keys as transformers' configuration class takes them: a catalog copy that keeps the text
    model's keys at the top level (aiconfigurator's flattened Step-3.7-Flash) hands them over as text_config,
    where Step3p7Config reads them (given at the top level it would ignore them and build its defaults)."""
    from app.measure.trace import config_kwargs

    return config_kwargs(config)


def _config(model_type: str) -> dict:
    slug = CASES[model_type]
    if slug is not None and slug.startswith("fixture:"):
        return json.loads((Path(__file__).parent / "fixtures" / "configs" / f"{slug[8:]}.json").read_text())
    if slug is not None:
        return json.loads((CONFIGS / slug / "config.json").read_text())
    return transformers.AutoConfig.for_model(model_type).to_dict()


def _transformers_count(config: dict) -> int:
    arch = ARCHITECTURES[config["model_type"]]
    cfg = transformers.AutoConfig.for_model(config["model_type"], **transformers_kwargs(config))
    with torch.device("meta"):
        model = getattr(transformers, arch.transformers_class)(cfg)
    return sum(p.numel() for p in model.parameters())


def test_every_registry_entry_has_a_case():
    with_class = {t for t, a in ARCHITECTURES.items() if a.transformers_class}
    assert with_class == set(CASES)


@pytest.mark.parametrize("model_type", sorted(CASES))
def test_parameters_equal_transformers(model_type: str):
    config = _config(model_type)
    assert count_parameters(spec_from_config(config)).total == _transformers_count(config)


@pytest.mark.parametrize("slug", sorted(p.name for p in CONFIGS.iterdir() if (p / "config.json").is_file()))
def test_every_catalog_config_equals_transformers(slug: str):
    """Each committed release config, not just one per architecture."""
    config = json.loads((CONFIGS / slug / "config.json").read_text())
    if not ARCHITECTURES[config["model_type"]].transformers_class:
        pytest.skip("remote-code architecture")
    assert count_parameters(spec_from_config(config)).total == _transformers_count(config)


def test_chatglm_equals_glm_for_causal_lm():
    """chatglm is remote code (THUDM modeling_chatglm.py), so transformers has no class for it.

    transformers' GlmForCausalLM is the class THUDM's converted `-hf` checkpoints load into, with the
    same tensors (the fused query_key_value split into q/k/v). We give the chatglm adapter the chatglm
    spelling of GlmConfig's default dimensions (GLM-4-9B-Chat) and compare with that class.
    """
    glm = transformers.GlmConfig()
    chatglm = {
        "model_type": "chatglm", "num_layers": glm.num_hidden_layers, "hidden_size": glm.hidden_size,
        "num_attention_heads": glm.num_attention_heads, "multi_query_attention": True,
        "multi_query_group_num": glm.num_key_value_heads, "kv_channels": glm.head_dim,
        "ffn_hidden_size": glm.intermediate_size, "padded_vocab_size": glm.vocab_size,
        "seq_length": glm.max_position_embeddings, "add_qkv_bias": True, "add_bias_linear": False,
        "rmsnorm": True, "torch_dtype": "bfloat16",
    }
    with torch.device("meta"):
        model = transformers.GlmForCausalLM(glm)
    assert count_parameters(spec_from_config(chatglm)).total == sum(p.numel() for p in model.parameters())


def test_released_counts_quoted_by_vendors():
    """Sanity anchors from the vendors' own cards (rounded there, so compared rounded here)."""
    def billions(slug: str) -> float:
        config = json.loads((CONFIGS / slug / "config.json").read_text())
        return round(count_parameters(spec_from_config(config)).total / 1e9, 1)
    assert billions("qwen2.5-7b-instruct") == 7.6  # Qwen2.5-7B-Instruct card: "Number of Parameters: 7.61B"
    assert billions("qwen3-30b-a3b") == 30.5  # Qwen3-30B-A3B card: "30.5B in total"
    assert billions("deepseek-v3") == 671.0  # DeepSeek-V3 card: 671B total (MTP module excluded)


def test_gemma3_1b_equals_keras_hub_preset():
    """keras-team/keras-hub keras_hub/src/models/gemma3/gemma3_presets.py: gemma3_instruct_1b "params": 999885952."""
    config = json.loads((CONFIGS / "gemma-3-1b-it" / "config.json").read_text())
    assert count_parameters(spec_from_config(config)).total == 999_885_952


def test_catalog_dir_exists():
    assert Path(CONFIGS).is_dir()


@pytest.mark.parametrize("slug", ["gemma-2-9b-it", "gemma-2-2b-it", "gpt-oss-20b", "qwen2.5-7b-instruct", "qwen3-14b"])
def test_layer_types_equal_transformers_config(slug: str):
    """Which layers slide: transformers' own config resolution (layer_types) is the truth."""
    config = json.loads((CONFIGS / slug / "config.json").read_text())
    theirs = transformers.AutoConfig.for_model(config["model_type"], **{k: v for k, v in config.items()
                                                                        if k != "model_type"}).layer_types
    ours = spec_from_config(config).language_model.layer_types
    assert ours == tuple("sliding" if t == "sliding_attention" else "full" for t in theirs)


def test_gemma3_five_sliding_layers_per_full_one():
    cfg = transformers.Gemma3TextConfig()
    spec = spec_from_config(cfg.to_dict())
    assert spec.language_model.layer_types == tuple(
        "sliding" if t == "sliding_attention" else "full" for t in cfg.layer_types)


def test_active_parameters_equal_vendor_cards():
    """Active parameters per token, rounded as each vendor's model card quotes them."""
    from app.estimator.params import count_active_parameters

    def active(slug: str) -> int:
        return count_active_parameters(spec_from_config(json.loads((CONFIGS / slug / "config.json").read_text())))

    assert 3.3e9 <= active("qwen3-30b-a3b") < 3.4e9  # Qwen3-30B-A3B card: "3.3B" activated (3.35B, truncated)
    assert 22e9 <= active("qwen3-235b-a22b") < 23e9  # Qwen3-235B-A22B card: "22B" activated
    assert 37e9 <= active("deepseek-v3") < 38e9  # DeepSeek-V3 card: "37B" activated per token
    assert round(active("mixtral-8x7b-v0.1") / 1e9, 1) == 12.9  # Mistral AI: 12.9B used per token
    assert 39e9 <= active("mixtral-8x22b-v0.1") < 40e9  # Mistral AI: "39B" active of 141B
    # OpenAI's gpt-oss model card: 3.61B / 5.13B active, counted without the embedding table
    embedding = 201088 * 2880  # vocab_size x hidden_size of both gpt-oss configs
    assert round((active("gpt-oss-20b") - embedding) / 1e9, 2) == 3.61
    assert round((active("gpt-oss-120b") - embedding) / 1e9, 2) == 5.13
    assert active("qwen3-14b") == count_parameters(spec_from_config(
        json.loads((CONFIGS / "qwen3-14b" / "config.json").read_text()))).total  # dense: all of them


def test_gemma3_minimal_text_config_uses_transformers_defaults():
    """Released Gemma 3 configs leave most text_config keys to Gemma3TextConfig's defaults; a config with
    only the keys that differ must count like transformers, which fills in the same defaults."""
    config = {"model_type": "gemma3", "mm_tokens_per_image": 256, "torch_dtype": "bfloat16",
              "text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240,
                              "num_hidden_layers": 34, "sliding_window": 1024},
              "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "image_size": 896,
                                "intermediate_size": 4304, "num_attention_heads": 16, "num_hidden_layers": 27,
                                "patch_size": 14, "vision_use_head": False}}
    spec = spec_from_config(config)
    assert spec.language_model.head_dim == 256 and spec.language_model.kv_heads == 4
    assert count_parameters(spec).total == _transformers_count(config)
