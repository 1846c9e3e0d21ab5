"""The architecture registry: one entry per Hugging Face `model_type`, keyed by that name.

Each entry turns a config.json dict into LanguageModel (and VisionTower) fields, with the config key
each value came from. `transformers_class` names the class whose parameter count the tests hold
ours to (None: remote code only, checked against published checkpoint sizes instead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.catalog.adapters import (
    deepseek_v4,
    dense,
    gemma4,
    glm,
    glm_mla,
    hybrid,
    llama4,
    mimo,
    moe,
    step3p7,
    vision,
    vision_dynamic,
)
from app.catalog.adapters.common import Adapted
from app.catalog.config import Cfg


@dataclass(frozen=True, slots=True)
class Architecture:
    model_type: str
    adapt: Callable[[Cfg], Adapted]
    family: str
    transformers_class: str | None


ARCHITECTURES: dict[str, Architecture] = {a.model_type: a for a in [
    Architecture("llama", dense.llama, "Llama", "LlamaForCausalLM"),
    Architecture("mistral", dense.mistral, "Mistral", "MistralForCausalLM"),
    Architecture("mixtral", moe.mixtral, "Mixtral", "MixtralForCausalLM"),
    Architecture("qwen2", dense.qwen2, "Qwen2", "Qwen2ForCausalLM"),
    Architecture("qwen2_moe", moe.qwen2_moe, "Qwen2-MoE", "Qwen2MoeForCausalLM"),
    Architecture("qwen3", dense.qwen3, "Qwen3", "Qwen3ForCausalLM"),
    Architecture("qwen3_moe", moe.qwen3_moe, "Qwen3-MoE", "Qwen3MoeForCausalLM"),
    Architecture("gemma", dense.gemma, "Gemma", "GemmaForCausalLM"),
    Architecture("gemma2", dense.gemma2, "Gemma 2", "Gemma2ForCausalLM"),
    Architecture("gemma3_text", dense.gemma3_text, "Gemma 3", "Gemma3ForCausalLM"),
    Architecture("gemma3", vision.gemma3, "Gemma 3", "Gemma3ForConditionalGeneration"),
    Architecture("phi3", dense.phi3, "Phi-3", "Phi3ForCausalLM"),
    Architecture("deepseek_v2", moe.deepseek_v2, "DeepSeek-V2", "DeepseekV2ForCausalLM"),
    Architecture("deepseek_v3", moe.deepseek_v3, "DeepSeek-V3", "DeepseekV3ForCausalLM"),
    Architecture("gpt_oss", moe.gpt_oss, "gpt-oss", "GptOssForCausalLM"),
    Architecture("glm", glm.glm, "GLM-4", "GlmForCausalLM"),
    Architecture("glm4", glm.glm4, "GLM-4-0414", "Glm4ForCausalLM"),
    Architecture("chatglm", glm.chatglm, "GLM-4", None),
    Architecture("glm4v", vision.glm4v, "GLM-4.1V", "Glm4vForConditionalGeneration"),
    Architecture("qwen3_next", hybrid.qwen3_next, "Qwen3-Next", "Qwen3NextForCausalLM"),
    Architecture("qwen3_5", hybrid.qwen3_5, "Qwen3.5", "Qwen3_5ForConditionalGeneration"),
    Architecture("qwen3_5_moe", hybrid.qwen3_5_moe, "Qwen3.5-MoE", "Qwen3_5MoeForConditionalGeneration"),
    Architecture("nemotron_h", hybrid.nemotron_h, "Nemotron-H", "NemotronHForCausalLM"),
    Architecture("lfm2", hybrid.lfm2, "LFM2", "Lfm2ForCausalLM"),
    Architecture("lfm2_vl", hybrid.lfm2_vl, "LFM2-VL", "Lfm2VlForConditionalGeneration"),
    Architecture("granitemoehybrid", hybrid.granitemoehybrid, "Granite 4.0-H", "GraniteMoeHybridForCausalLM"),
    # 2026 families (architectures-2026.md) that need no new cache kind
    Architecture("olmo3", dense.olmo3, "OLMo 3", "Olmo3ForCausalLM"),
    Architecture("glm4_moe", moe.glm4_moe, "GLM-4.5", "Glm4MoeForCausalLM"),
    Architecture("ernie4_5_moe", moe.ernie4_5_moe, "ERNIE 4.5", "Ernie4_5_MoeForCausalLM"),
    Architecture("minimax_m2", moe.minimax_m2, "MiniMax-M2", "MiniMaxM2ForCausalLM"),
    Architecture("kimi_k2", moe.kimi_k2, "Kimi K2", None),  # remote code; DeepseekV3ForCausalLM's layout
    Architecture("kimi_k25", vision_dynamic.kimi_k25, "Kimi K2.5", None),  # remote-code keys; see tests
    Architecture("mistral3", vision_dynamic.mistral3, "Mistral 3", "Mistral3ForConditionalGeneration"),
    Architecture("ministral3", vision_dynamic.ministral3, "Ministral 3", None),  # text or multimodal: see tests
    Architecture("qwen2_5_vl", vision_dynamic.qwen2_5_vl, "Qwen2.5-VL", "Qwen2_5_VLForConditionalGeneration"),
    Architecture("qwen3_vl", vision_dynamic.qwen3_vl, "Qwen3-VL", "Qwen3VLForConditionalGeneration"),
    Architecture("qwen3_vl_moe", vision_dynamic.qwen3_vl_moe, "Qwen3-VL-MoE", "Qwen3VLMoeForConditionalGeneration"),
    # 2026 families with per-layer cache kinds (architectures-2026.md)
    Architecture("gemma4", gemma4.gemma4, "Gemma 4", "Gemma4ForConditionalGeneration"),
    Architecture("gemma4_text", gemma4.gemma4_text, "Gemma 4", "Gemma4ForCausalLM"),
    Architecture("llama4", llama4.llama4, "Llama 4", "Llama4ForConditionalGeneration"),
    Architecture("llama4_text", llama4.llama4_text, "Llama 4", "Llama4ForCausalLM"),
    Architecture("deepseek_v32", moe.deepseek_v32, "DeepSeek-V3.2", "DeepseekV32ForCausalLM"),
    Architecture("glm4_moe_lite", glm_mla.glm4_moe_lite, "GLM-4.7-Flash", "Glm4MoeLiteForCausalLM"),
    Architecture("glm_moe_dsa", glm_mla.glm_moe_dsa, "GLM-5", "GlmMoeDsaForCausalLM"),
    Architecture("mimo_v2_flash", mimo.mimo_v2_flash, "MiMo-V2-Flash", "MiMoV2FlashForCausalLM"),
    Architecture("step3p7", step3p7.step3p7, "Step-3.7", "Step3p7ForConditionalGeneration"),
    Architecture("deepseek_v4", deepseek_v4.deepseek_v4, "DeepSeek-V4", "DeepseekV4ForCausalLM"),
]}
