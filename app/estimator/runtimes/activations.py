"""Per-token activation bytes of a PyTorch-style prefill: shared by the transformers and vLLM models.

The peak inside one decoder layer is the residual stream plus the larger of the MLP and attention
temporaries (reference s5: "MLP intermediate seq x 2 x ffn, QKV, attention output, residuals").
"""

from __future__ import annotations

from app.estimator.quantization import Format
from app.estimator.spec import LanguageModel, VisionTower

RESIDUAL_STREAMS = 2  # residual + normed copy of the hidden state


def compute_bytes(fmt: Format) -> int:
    """Bytes of an activation: fp32 checkpoints compute in fp32, everything else in 16-bit."""
    return 4 if fmt.element_bytes == 4 else 2


def mlp_peak(lm: LanguageModel) -> int:
    """Elements per token at the MLP peak: fused gate_up (2F) + act(gate) (F) + product (F) = 4F;
    separate gate/up: act(gate) + up + product = 3F (transformers GlmMLP / LlamaMLP)."""
    width = lm.moe.expert_ffn * lm.moe.experts_per_token if lm.moe else lm.ffn
    if lm.ffn_kind == "gelu":
        return 2 * width
    return (4 if lm.fused_gate_up else 3) * width


def attention_peak(lm: LanguageModel) -> int:
    """Elements per token in attention with SDPA (linear in length): q, k, v, the K/V that
    repeat_kv expands to every query head when kv_heads < heads, and the attention output."""
    q, kv = lm.heads * lm.head_dim, lm.kv_heads * lm.head_dim
    expanded = 2 * q if lm.kv_heads < lm.heads else 0
    return q + 2 * kv + expanded + q


def layer_peak_per_token(lm: LanguageModel) -> int:
    return RESIDUAL_STREAMS * lm.hidden + max(mlp_peak(lm), attention_peak(lm))


def prefill_bytes(lm: LanguageModel, tokens: int, element_bytes: int) -> int:
    """Peak temporaries of one decoder layer over `tokens` prompt tokens."""
    return tokens * element_bytes * layer_peak_per_token(lm)


def vision_pass_bytes(v: VisionTower, images: int, element_bytes: int) -> int:
    """Peak temporaries of the ViT over `images` images at once."""
    return images * v.encoder_tokens * element_bytes * vision_peak_per_token(v)


def vision_peak_per_token(v: VisionTower) -> int:
    """ViT block peak with SDPA: residual streams + the MLP (fc1 output and its activation)."""
    mlp = 2 * v.mlp if v.mlp_kind == "gelu" else 3 * v.mlp
    return RESIDUAL_STREAMS * v.hidden + max(mlp, 7 * v.hidden)  # 7h: qkv (3h), q/k/v copies (3h), out (h)
