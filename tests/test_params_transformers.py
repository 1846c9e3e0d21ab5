"""The per-tensor counter against transformers' own classes, built on the meta device (no weights).

Covers the catalog's architectures at full size and, on small configs, the MoE and MLA paths that no
catalog model uses yet.
"""

from __future__ import annotations

import pytest

from app.catalog import Catalog
from app.estimator import ModelSpec, count_parameters
from app.estimator.spec import MLA, LanguageModel, MoE

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _count(model_cls, config) -> int:
    with torch.device("meta"):
        model = model_cls(config)
    return sum(p.numel() for p in model.parameters())


def _lm(**kw) -> LanguageModel:
    base = dict(source="test config", layers=2, hidden=64, heads=4, kv_heads=2, head_dim=16, ffn=96,
                ffn_kind="swiglu", vocab=1000, tied_embeddings=False, qkv_bias=False, linear_bias=False,
                norm="rmsnorm", max_context=4096, fused_qkv=False, dtype="bfloat16")
    return LanguageModel(**{**base, **kw})


def _spec(lm: LanguageModel) -> ModelSpec:
    card = {"source": "test", "fields": [], "description": []}
    return ModelSpec(slug="t", name="t", family="t", hf_repo="t", released="2024-01-01", license="t",
                     modality="text", language_model=lm, card=card)


def test_glm_language_model_equals_glm_for_causal_lm(catalog: Catalog):
    cfg = transformers.GlmConfig(max_position_embeddings=8192)  # defaults are GLM-4-9B-Chat
    assert count_parameters(catalog.model("glm-4v-9b")).language == _count(transformers.GlmForCausalLM, cfg)


def test_glm_0414_equals_glm4_for_causal_lm(catalog: Catalog):
    lm = catalog.model("glm-4-32b-0414").language_model
    cfg = transformers.Glm4Config(vocab_size=lm.vocab, hidden_size=lm.hidden, intermediate_size=lm.ffn,
                                  num_hidden_layers=lm.layers, num_attention_heads=lm.heads,
                                  num_key_value_heads=lm.kv_heads, head_dim=lm.head_dim, attention_bias=lm.qkv_bias)
    assert count_parameters(catalog.model("glm-4-32b-0414")).language == _count(transformers.Glm4ForCausalLM, cfg)


def test_llama_equals_llama_for_causal_lm(llama: ModelSpec):
    lm = llama.language_model
    cfg = transformers.LlamaConfig(vocab_size=lm.vocab, hidden_size=lm.hidden, intermediate_size=lm.ffn,
                                   num_hidden_layers=lm.layers, num_attention_heads=lm.heads,
                                   num_key_value_heads=lm.kv_heads, tie_word_embeddings=False)
    assert count_parameters(llama).total == _count(transformers.LlamaForCausalLM, cfg)


def test_glm41v_equals_glm4v_for_conditional_generation(catalog: Catalog):
    assert count_parameters(catalog.model("glm-4.1v-9b-thinking")).total == _count(
        transformers.Glm4vForConditionalGeneration, transformers.Glm4vConfig())


def test_moe_counts_equal_qwen2_moe():
    """Routed experts, a shared expert and the router (Qwen2-MoE layout, no shared-expert gate)."""
    lm = _lm(moe=MoE(experts=4, experts_per_token=2, expert_ffn=32, shared_experts=1), qkv_bias=True)
    cfg = transformers.Qwen2MoeConfig(vocab_size=1000, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, num_experts=4,
                                      num_experts_per_tok=2, moe_intermediate_size=32,
                                      shared_expert_intermediate_size=32, tie_word_embeddings=False)
    got = count_parameters(_spec(lm)).total
    shared_expert_gate = 2 * 64  # Qwen2-MoE's sigmoid gate on the shared expert: hidden -> 1 per layer
    assert got + shared_expert_gate == _count(transformers.Qwen2MoeForCausalLM, cfg)


def test_mla_counts_equal_deepseek_v2():
    mla = MLA(q_lora_rank=24, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16)
    lm = _lm(kv_heads=4, mla=mla)
    cfg = transformers.DeepseekV2Config(vocab_size=1000, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4, q_lora_rank=24,
                                        kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16,
                                        n_routed_experts=4, first_k_dense_replace=2, tie_word_embeddings=False)
    assert count_parameters(_spec(lm)).total == _count(transformers.DeepseekV2ForCausalLM, cfg)
