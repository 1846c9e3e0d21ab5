"""GGUF architectures: the metadata keys llama.cpp reads, in both directions (spec -> keys, keys -> spec).

Key names follow llama.cpp `gguf-py/gguf/constants.py` (`Keys.LLM`, `{arch}.` prefix); what each
architecture reads follows `src/models/<arch>.cpp` (`load_arch_hparams`) and `src/llama-model.cpp`
(`load_hparams`) of the build vendored in llama-cpp-python 0.3.36. A table, not an if-chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.estimator.spec import LanguageModel


@dataclass(frozen=True, slots=True)
class GgufArch:
    """One `general.architecture` value and how its GGUF files describe the model."""

    name: str
    swa_pattern: int = 0  # llama.cpp load_swa_pattern(ml, n): layer il is SWA when il % n < n - 1
    default_swa: int = 0  # n_swa when the file has no sliding_window key (gemma2.cpp: 4096)
    rope_dims: Callable[[LanguageModel], int] = lambda lm: lm.head_dim
    extra: Callable[[LanguageModel], dict[str, Any]] = lambda lm: {}
    # n_embd rows its graph keeps beyond the common ones at the (attention, output) moments; fitted to the
    # llama.cpp grid (model_specs/llamacpp): gemma2's softcapping, chatglm's fused QKV, qwen3's q/k norms
    compute_rows: tuple[int, int] = (0, 0)


def _gemma2(lm: LanguageModel) -> dict[str, Any]:
    # Gemma-2 config.json: attn_logit_softcapping 50.0, final_logit_softcapping 30.0
    return {"attention.sliding_window": lm.sliding_window or 4096,
            "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0}


def _moe(lm: LanguageModel) -> dict[str, Any]:
    if lm.moe is None:
        return {}
    out: dict[str, Any] = {"expert_count": lm.moe.experts, "expert_used_count": lm.moe.experts_per_token,
                           "expert_feed_forward_length": lm.moe.expert_ffn}
    if lm.moe.shared_experts:
        out["expert_shared_count"] = lm.moe.shared_experts
    return out


ARCHS: dict[str, GgufArch] = {a.name: a for a in [
    GgufArch("llama"),
    GgufArch("qwen2"),
    GgufArch("qwen3", compute_rows=(1, 0)),  # not in the grid: assumed as qwen3moe (same q/k norms)
    GgufArch("qwen3moe", extra=_moe, compute_rows=(1, 0)),
    GgufArch("gemma2", swa_pattern=2, default_swa=4096, extra=_gemma2, compute_rows=(1, 1)),
    GgufArch("chatglm", rope_dims=lambda lm: lm.head_dim // 2, compute_rows=(-2, 1)),  # rotates half a head
    GgufArch("glm4", rope_dims=lambda lm: lm.head_dim // 2),
]}

# Catalog slug -> general.architecture of the GGUF files llama.cpp's convert_hf_to_gguf.py writes for it
# (the HF `architectures` entry: LlamaForCausalLM -> llama, ChatGLMModel -> chatglm, ...).
SLUG_ARCH: dict[str, str] = {
    "llama-3.1-8b": "llama", "llama-3.1-8b-instruct": "llama", "llama-3.3-70b-instruct": "llama",
    "mistral-7b-instruct-v0.2": "llama", "mistral-7b-instruct-v0.3": "llama",
    "qwen2.5-7b-instruct": "qwen2", "qwen2.5-7b": "qwen2", "deepseek-r1-distill-qwen-7b": "qwen2",
    "qwen3-14b": "qwen3", "qwen3-8b": "qwen3", "qwen3-30b-a3b": "qwen3moe",
    "gemma-2-9b-it": "gemma2", "gemma-2-9b": "gemma2",
    "glm-4-9b-chat": "chatglm", "glm-4-9b": "chatglm", "glm-4-9b-chat-1m": "chatglm",
    "glm-4-9b-0414": "glm4", "glm-z1-9b-0414": "glm4", "glm-4-32b-0414": "glm4",
}


def is_swa_layer(arch: GgufArch, il: int) -> bool:
    """llama_hparams::set_swa_pattern(n, dense_first=false): layer il is SWA when il % n < n - 1."""
    n = arch.swa_pattern
    return n > 0 and il % n < n - 1


def metadata(arch: GgufArch, lm: LanguageModel) -> dict[str, Any]:
    """`{arch}.*` keys (without the prefix) a converted file of this model carries, as llama.cpp reads them."""
    return {
        "context_length": lm.max_context,
        "embedding_length": lm.hidden,
        "block_count": lm.layers,
        "feed_forward_length": lm.ffn,
        "attention.head_count": lm.heads,
        "attention.head_count_kv": lm.kv_heads,
        "attention.key_length": lm.head_dim,
        "attention.value_length": lm.head_dim,
        "attention.layer_norm_rms_epsilon": 1e-5,
        "rope.dimension_count": arch.rope_dims(lm),
        "vocab_size": lm.vocab,
        **arch.extra(lm),
    }
