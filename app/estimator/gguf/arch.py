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


@dataclass(frozen=True, slots=True, repr=False)
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


def _per_layer(lm: LanguageModel, value: Callable[[int], int]) -> list[int]:
    return [value(il) for il in range(lm.layers)]


def _kinds(lm: LanguageModel) -> tuple[str, ...]:
    return lm.layer_types or ("full",) * lm.layers


def _attends(lm: LanguageModel, il: int) -> bool:
    return _kinds(lm)[il] in ("full", "sliding", "chunked")


def _qwen35(lm: LanguageModel) -> dict[str, Any]:
    """convert_hf_to_gguf.py Qwen3_5TextModel (Qwen3NextModel): the gated delta net's sizes as ssm.* keys
    (src/models/qwen35.cpp load_arch_hparams: conv_kernel, inner_size = value heads x value head dim,
    state_size = head dim, time_step_rank = value heads, group_count = key heads), full_attention_interval, and
    the M-RoPE sections (required by the loader; [11, 11, 10] of the Qwen3.5 configs' rope_parameters)."""
    la = lm.linear_attention
    assert la is not None
    full = [il for il, kind in enumerate(_kinds(lm)) if kind == "full"]
    return {"ssm.conv_kernel": la.conv_kernel, "ssm.inner_size": la.value_heads * la.value_head_dim,
            "ssm.state_size": la.key_head_dim, "ssm.time_step_rank": la.value_heads, "ssm.group_count": la.key_heads,
            "full_attention_interval": full[0] + 1, "rope.dimension_sections": [11, 11, 10, 0], **_moe(lm),
            **({"expert_shared_feed_forward_length": lm.moe.shared_expert_ffn} if lm.moe else {})}


def _gpt_oss(lm: LanguageModel) -> dict[str, Any]:
    """convert_hf_to_gguf.py GptOssModel: sliding_window; llama.cpp's loader applies its pattern 2 itself."""
    return {"attention.sliding_window": lm.sliding_window, **_moe(lm)}


def _lfm2(lm: LanguageModel) -> dict[str, Any]:
    """convert_hf_to_gguf.py LFM2Model: head_count_kv per layer, 0 on the short-conv layers (src/models/lfm2.cpp:
    is_recr = n_head_kv(il) == 0), shortconv.l_cache = conv_L_cache."""
    assert lm.short_conv is not None
    return {"attention.head_count_kv": _per_layer(lm, lambda il: lm.kv_heads if _attends(lm, il) else 0),
            "shortconv.l_cache": lm.short_conv.conv_kernel}


def _nemotron_h(lm: LanguageModel) -> dict[str, Any]:
    """convert_hf_to_gguf.py NemotronHModel: per-layer head_count_kv (attention layers only) and feed_forward_length
    (MLP layers only): src/models/nemotron-h.cpp marks layer il recurrent when both are 0; the Mamba-2 mixer's
    sizes as ssm.* keys (inner_size = heads x head_dim, time_step_rank = heads); layer_norm_epsilon is required."""
    m = lm.mamba
    assert m is not None
    ffn = lm.layer_ffn or ("dense",) * lm.layers
    return {"attention.head_count_kv": _per_layer(lm, lambda il: lm.kv_heads if _attends(lm, il) else 0),
            "feed_forward_length": _per_layer(lm, lambda il: lm.ffn if ffn[il] != "none" else 0),
            "attention.layer_norm_epsilon": 1e-5, "ssm.conv_kernel": m.conv_kernel,
            "ssm.inner_size": m.heads * m.head_dim, "ssm.state_size": m.state_size, "ssm.time_step_rank": m.heads,
            "ssm.group_count": m.groups}


def _llama4(lm: LanguageModel) -> dict[str, Any]:
    """convert_hf_to_gguf.py Llama4Model: interleave_moe_layer_step and the expert width (src/models/llama4.cpp
    requires both); no sliding_window key, so the loader sets chunked attention of 8192 on 3 layers in 4."""
    ffn = lm.layer_ffn or ("moe",) * lm.layers
    step = next(il for il, kind in enumerate(ffn) if kind == "moe") + 1
    return {"interleave_moe_layer_step": step, **_moe(lm)}


def _step35(lm: LanguageModel) -> dict[str, Any]:
    """convert_hf_to_gguf.py Step35Model: sliding_window and the per-layer sliding_window_pattern (src/models/step35.cpp
    requires both), the expert and shared-expert widths. Dense and MoE layers are told apart by their tensors."""
    kinds = _kinds(lm)
    return {"attention.sliding_window": lm.sliding_window,
            "attention.sliding_window_pattern": [kind == "sliding" for kind in kinds], **_moe(lm),
            **({"expert_shared_feed_forward_length": lm.moe.shared_expert_ffn} if lm.moe else {})}


def _gemma4(lm: LanguageModel) -> dict[str, Any]:
    """convert_hf_to_gguf.py Gemma4Model, as src/models/gemma4.cpp load_arch_hparams reads it: the per-layer
    sliding_window_pattern, key/value lengths of full (global) and sliding layers apart, KV heads per layer, the
    per-layer-input width (0 without per-layer embeddings), final_logit_softcapping (Gemma 4 config 30.0)."""
    kinds = _kinds(lm)
    full = (lm.kv_geometry or {}).get("full")
    full_heads, full_dim = (full.kv_heads, full.head_dim) if full else (lm.kv_heads, lm.head_dim)
    return {"attention.sliding_window": lm.sliding_window,
            "attention.sliding_window_pattern": [kind == "sliding" for kind in kinds],
            "attention.head_count_kv": [lm.kv_heads if kind == "sliding" else full_heads for kind in kinds],
            "attention.key_length": full_dim, "attention.value_length": full_dim,
            "attention.key_length_swa": lm.head_dim, "attention.value_length_swa": lm.head_dim,
            "rope.dimension_count": full_dim, "rope.dimension_count_swa": lm.head_dim,
            "embedding_length_per_layer_input": lm.per_layer_input, "final_logit_softcapping": 30.0, **_moe(lm)}


ARCHS: dict[str, GgufArch] = {a.name: a for a in [
    GgufArch("llama"),
    GgufArch("qwen2"),
    GgufArch("qwen3", compute_rows=(1, 0)),  # not in the grid: assumed as qwen3moe (same q/k norms)
    GgufArch("qwen3moe", extra=_moe, compute_rows=(1, 0)),
    GgufArch("gemma2", swa_pattern=2, default_swa=4096, extra=_gemma2, compute_rows=(1, 1)),
    GgufArch("chatglm", rope_dims=lambda lm: lm.head_dim // 2, compute_rows=(-2, 1)),  # rotates half a head
    GgufArch("glm4", rope_dims=lambda lm: lm.head_dim // 2),
    # 2026 architectures (llama.cpp grid rows, model_specs/llamacpp); Qwen3.5 rotates a quarter of each head
    GgufArch("qwen35", rope_dims=lambda lm: lm.head_dim // 4, extra=_qwen35),
    GgufArch("qwen35moe", rope_dims=lambda lm: lm.head_dim // 4, extra=_qwen35),
    GgufArch("gpt-oss", extra=_gpt_oss),
    GgufArch("lfm2", extra=_lfm2),
    GgufArch("nemotron_h", extra=_nemotron_h),
    GgufArch("llama4", extra=_llama4),
    GgufArch("step35", extra=_step35),
    GgufArch("gemma4", extra=_gemma4),
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
    "qwen3.5-9b": "qwen35", "qwen3.5-27b": "qwen35", "qwen3.6-35b-a3b": "qwen35moe", "qwen3.5-35b-a3b": "qwen35moe",
    "qwen3.5-122b-a10b": "qwen35moe", "qwen3.5-397b-a17b": "qwen35moe",
    "gpt-oss-20b": "gpt-oss", "gpt-oss-120b": "gpt-oss",
    "lfm2.5-vl-1.6b": "lfm2", "nemotron-h-56b-base-8k": "nemotron_h", "llama-4-scout-17b-16e-instruct": "llama4",
    "step-3.7-flash": "step35", "gemma-4-26b-a4b": "gemma4", "gemma-4-31b-it-nvfp4": "gemma4",
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
