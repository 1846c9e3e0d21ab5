"""Per-token activation bytes of a PyTorch-style prefill: shared by the transformers and vLLM models.

The peak inside one decoder layer is the residual stream plus the larger of the MLP and attention
temporaries (reference s5: "MLP intermediate seq x 2 x ffn, QKV, attention output, residuals").
"""

from __future__ import annotations

from dataclasses import dataclass

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


# --- transformers prefill as its code allocates ---
# Every term below is a tensor seen live at the traced peak of transformers' own classes (fake tensors +
# torch's MemTracker, model_specs/traces/); tests/test_trace_table.py holds the sum to those traces.
INT64_INPUTS = 3  # per token: the input_ids generate() holds, the contiguous copy it passes, position_ids
# Per routed token, MoE experts in transformers' grouped_mm path: fp32 top-k weight, its gathered copy and
# their fp32 cast (3 x 4 bytes); int64 top-k index, sorted values and order, expert id (4 x 8 bytes).
MOE_ROUTING_BYTES = 3 * 4 + 4 * 8
# Scalar and tiny tensors (mask fill values, soft-cap constants; the rotary inv_freq buffers beside the
# weights): under 1 KiB in every trace. Counted so that exact rows do not land a few bytes low.
SMALL_TENSORS_BYTES = 4 << 10
# torch's math SDPA kernel (torch 2.13 _scaled_dot_product_attention_math): fp32 scores and _safe_softmax's fp32
# output per head and token pair; the causal mask as an fp32 additive [tokens, tokens] (held to the traces)
MATH_PAIR_BYTES_PER_HEAD = 2 * 4
MATH_MASK_BYTES = 4


@dataclass(frozen=True, slots=True, repr=False)
class HfCode:
    """What a transformers modeling file does that shapes its peak (read from the file, held to traces).

    eager: the class defaults to eager attention ([batch, heads, tokens, tokens] scores).
    score_compute / score_fp32: score-sized tensors live at the softmax, in the compute dtype and in fp32
        (transformers' eager_attention_forward: the scores, then softmax(dtype=float32) = fp32 copy + output).
    expert_units: multiples of expert_ffn live per routed token (fused gate_up 2F, act F, product F).
    rotary_tables: rotary (cos, sin) pairs held through the forward.
    fp32_routing: the routing weights stay fp32, so the weighted expert outputs and their unsorted copy
        are fp32 (Mixtral); otherwise they are cast to the compute dtype first (Qwen3-MoE).
    """

    eager: bool = False
    score_compute: int = 1
    score_fp32: int = 2
    expert_units: int = 4
    fp32_routing: bool = False
    rotary_tables: int = 1  # (cos, sin) pairs the model computes once per forward (Gemma 3: global + local)
    math: bool = False  # SDPA held to torch's math kernel (attention.py): fp32 scores, quadratic


SDPA = HfCode()
EAGER = HfCode(eager=True)  # transformers' eager_attention_forward (models/llama/modeling_llama.py)


def hf_resident_per_token(lm: LanguageModel, element_bytes: int, code: HfCode = SDPA) -> int:
    """Bytes per token held through the whole prefill: the embedding output (kept by the model's forward),
    the current layer's input, rotary cos and sin ([batch, tokens, head_dim] each), the int64 inputs."""
    return element_bytes * (2 * lm.hidden + 2 * code.rotary_tables * lm.head_dim) + 8 * INT64_INPUTS


def _sdpa_sliding_mask(lm: LanguageModel, tokens: int, code: HfCode) -> bool:
    """SDPA gets an explicit boolean [1, 1, tokens, tokens] mask for sliding-window layers once the
    prompt is longer than the window (full layers pass is_causal, no mask)."""
    return (not code.eager and 0 < lm.sliding_window_layers < lm.layers and lm.sliding_window is not None
            and tokens > lm.sliding_window)


def _score_elements(lm: LanguageModel, batch: int, tokens: int) -> int:
    """[batch, heads, tokens, tokens (+1 sink column)] of one layer's eager attention."""
    return batch * lm.heads * tokens * (tokens + int(lm.attention_sinks))


def hf_mlp_phase(lm: LanguageModel, e: int, batch: int, tokens: int, code: HfCode) -> int:
    """Bytes inside the last layer's MLP on top of the resident ones: the residual after attention, the
    normed MLP input and the MLP's own peak (MoE: one token copy per chosen expert). With eager attention
    the layer still holds the attention probabilities it returned (`hidden_states, _ = self.self_attn(...)`)."""
    n = batch * tokens
    streams = n * e * 2 * lm.hidden
    mlp = n * hf_moe_per_token(lm, e, code) if lm.moe is not None else n * e * mlp_peak(lm)
    kept = _score_elements(lm, batch, tokens) * e if code.eager else 0
    return streams + mlp + kept


def hf_moe_per_token(lm: LanguageModel, e: int, code: HfCode) -> int:
    """transformers' grouped experts, per token: the router logits [tokens, experts] it keeps, plus per
    routed token copy the larger of two moments: inside the expert (gathered input, gate_up, act,
    product) or combining (gathered input, expert output, weighted output, unsorted copy)."""
    moe = lm.moe
    width = 2 * moe.expert_ffn if lm.ffn_kind == "gelu" else code.expert_units * moe.expert_ffn
    inside = e * (lm.hidden + width)
    combining = lm.hidden * (2 * e + 2 * (4 if code.fp32_routing else e))
    return moe.experts * e + moe.experts_per_token * (max(inside, combining) + MOE_ROUTING_BYTES)


def hf_attention_phase(lm: LanguageModel, e: int, batch: int, tokens: int, code: HfCode) -> int:
    """Bytes inside the last layer's attention on top of the resident ones: the normed input, the rotated
    queries, the K/V that repeat_kv expands to every query head (eager), and the scores.

    Eager attention materialises [batch, heads, tokens, tokens] scores: quadratic in length. SDPA (flash
    kernel) writes the output and an fp32 logsumexp per head and token instead: linear.
    """
    q = lm.heads * lm.head_dim
    n = batch * tokens
    if code.math:
        return hf_math_attention_phase(lm, e, batch, tokens)
    if not code.eager:
        # SDPA turns a boolean mask into an additive one in the compute dtype for the call
        converted = batch * tokens * tokens * e if _sdpa_sliding_mask(lm, tokens, code) else 0
        return n * (e * (lm.hidden + 2 * q) + 4 * lm.heads) + converted
    expanded = 2 * q if lm.kv_heads < lm.heads else 0
    scores = _score_elements(lm, batch, tokens) * (code.score_compute * e + code.score_fp32 * 4)
    return n * e * (lm.hidden + q + expanded) + scores


def hf_math_attention_phase(lm: LanguageModel, e: int, batch: int, tokens: int) -> int:
    """SDPA held to torch's math kernel (attention.py): beside the normed input and the rotated queries, fp32
    copies of Q and the scaled Q, of K and V and (GQA, enable_gqa) K and V repeated to every query head; per
    head and token pair the fp32 scores and _safe_softmax's fp32 output; per token pair (not per sequence)
    the fp32 additive causal mask. Held to model_specs/traces/attention/ (tests/test_attention_kernels.py)."""
    q, kv = lm.heads * lm.head_dim, lm.kv_heads * lm.head_dim
    expanded = 2 * q if lm.kv_heads < lm.heads else 0
    fp32 = 4 * (2 * q + 2 * kv + expanded)
    pairs = batch * tokens * tokens * MATH_PAIR_BYTES_PER_HEAD * lm.heads + MATH_MASK_BYTES * tokens * tokens
    return batch * tokens * (e * (lm.hidden + q) + fp32) + pairs


def hf_attention_masks(lm: LanguageModel, e: int, batch: int, tokens: int, code: HfCode) -> int:
    """Eager attention gets additive [batch, 1, tokens, tokens] masks in the compute dtype, built once per
    forward and held through it: one for full attention, one more when some layers slide. SDPA without
    padding passes is_causal and no mask, except a boolean one for sliding layers (_sdpa_sliding_mask)."""
    if not code.eager:  # without padding the boolean mask is [1, 1, tokens, tokens], broadcast over the batch
        return tokens * tokens if _sdpa_sliding_mask(lm, tokens, code) else 0
    kinds = 1 + int(0 < lm.sliding_window_layers < lm.layers)
    return kinds * batch * tokens * tokens * e


def hf_prefill_bytes(lm: LanguageModel, element_bytes: int, batch: int, tokens: int, code: HfCode = SDPA) -> int:
    """Peak temporaries of a transformers prefill (DynamicCache, logits of the last position only): the
    resident tensors plus the larger of the last layer's MLP and attention, beside weights and KV cache."""
    e = element_bytes
    resident = (batch * tokens * hf_resident_per_token(lm, e, code) + hf_attention_masks(lm, e, batch, tokens, code)
                + SMALL_TENSORS_BYTES)
    return resident + max(hf_mlp_phase(lm, e, batch, tokens, code), hf_attention_phase(lm, e, batch, tokens, code))
