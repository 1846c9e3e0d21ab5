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


# --- transformers prefill as its code allocates (issue 11) ---
# Every term below is a tensor seen live at the traced peak of transformers' own classes (fake tensors +
# torch's MemTracker, model_specs/traces/); tests/test_trace_table.py holds the sum to those traces.
INT64_INPUTS = 3  # per token: the input_ids generate() holds, the contiguous copy it passes, position_ids
SOFTMAX_FP32_COPIES = 2  # eager: softmax(dtype=float32) copies the scores to fp32, then writes fp32 output


def hf_resident_per_token(lm: LanguageModel, element_bytes: int) -> int:
    """Bytes per token held through the whole prefill: the embedding output (kept by the model's forward),
    the current layer's input, rotary cos and sin ([batch, tokens, head_dim] each), the int64 inputs."""
    return element_bytes * (2 * lm.hidden + 2 * lm.head_dim) + 8 * INT64_INPUTS


def hf_mlp_phase_per_token(lm: LanguageModel, element_bytes: int) -> int:
    """Bytes per token inside the last layer's MLP on top of the resident ones: the residual after
    attention, the normed MLP input and the MLP's own peak (mlp_peak)."""
    return element_bytes * (2 * lm.hidden + mlp_peak(lm))


def hf_attention_phase(lm: LanguageModel, element_bytes: int, batch: int, tokens: int, eager: bool) -> int:
    """Bytes inside the last layer's attention on top of the resident ones: the normed input, the rotated
    queries, the K/V that repeat_kv expands to every query head (eager), and the scores.

    Eager attention materialises [batch, heads, tokens, tokens] scores in the compute dtype plus two fp32
    copies at the softmax: quadratic in length. SDPA (flash kernel) writes the output and an fp32
    logsumexp per head and token instead: linear.
    """
    q = lm.heads * lm.head_dim
    n = batch * tokens
    if not eager:
        return n * (element_bytes * (lm.hidden + 2 * q) + 4 * lm.heads)
    expanded = 2 * q if lm.kv_heads < lm.heads else 0
    scores = batch * lm.heads * tokens * tokens * (element_bytes + 4 * SOFTMAX_FP32_COPIES)
    return n * element_bytes * (lm.hidden + q + expanded) + scores


def hf_attention_masks(lm: LanguageModel, element_bytes: int, batch: int, tokens: int, eager: bool) -> int:
    """Eager attention gets additive [batch, 1, tokens, tokens] masks in the compute dtype, built once per
    forward and held through it: one for full attention, one more when some layers slide (SDPA without
    padding passes is_causal and no mask)."""
    if not eager:
        return 0
    kinds = 1 + int(0 < lm.sliding_window_layers < lm.layers)
    return kinds * batch * tokens * tokens * element_bytes


def hf_prefill_bytes(lm: LanguageModel, element_bytes: int, batch: int, tokens: int, eager: bool) -> int:
    """Peak temporaries of a transformers prefill (DynamicCache, logits of the last position only): the
    resident tensors plus the larger of the last layer's MLP and attention, beside weights and KV cache."""
    n = batch * tokens
    resident = n * hf_resident_per_token(lm, element_bytes) + hf_attention_masks(lm, element_bytes, batch,
                                                                                   tokens, eager)
    mlp = n * hf_mlp_phase_per_token(lm, element_bytes)
    return resident + max(mlp, hf_attention_phase(lm, element_bytes, batch, tokens, eager))
