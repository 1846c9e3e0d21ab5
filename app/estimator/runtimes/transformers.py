"""Hugging Face transformers + PyTorch: eager load of every tensor, DynamicCache, generate().

Weights + KV cache + activations follow transformers' own code and are held to its traced allocated
peak (model_specs/traces/, `python -m app.measure trace`: the real classes run the prefill and one
decode step on fake tensors under torch's MemTracker). What a GPU adds on top of the allocated peak
(CUDA context, cuBLAS workspaces, the caching allocator's reserve) is listed line by line and is not
yet measured on a GPU.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache as cache_by_width

from app.estimator import cache
from app.estimator.quantization import (
    BNB_FUSED_MAX_ROWS,
    LLM_INT8_THRESHOLD,
    applied_skip,
    dequant_scratch,
    int8_scratch,
)
from app.estimator.runtimes import attention as kernels
from app.estimator.runtimes import remote_code
from app.estimator.runtimes.activations import EAGER, SDPA, HfCode, compute_bytes, hf_prefill_bytes, vision_pass_bytes
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, MiB, RuntimeInput, RuntimeMemory
from app.estimator.spec import ModelSpec

# PyTorch's cuBLAS + cuBLASLt workspaces on Hopper (CUDABlasHandlePool: 32 MiB each on sm90+).
CUBLAS_WORKSPACE_BYTES = 2 * 32 * MiB
# The caching allocator reserves in 2 MiB blocks and keeps freed blocks: reserved/allocated - 1.
ALLOCATOR_SLACK = 0.0  # not yet measured on a GPU
NOT_MEASURED = "not yet measured on a GPU"

# Families whose transformers class defaults to eager attention, with the reason and what its modeling file
# allocates (the trace records the implementation `from_config` picks: model_specs/traces/*.json).
EAGER_ATTENTION: dict[str, tuple[str, HfCode]] = {
    # models/gemma2/modeling_gemma2.py: soft-capped scores, softmax(dtype=float32)
    "Gemma 2": ("transformers' Gemma2 defaults to eager attention (attention logit soft-capping)",
                HfCode(eager=True)),
    # models/gpt_oss/modeling_gpt_oss.py: scores, [scores | sink] and its max-shifted copy, softmax in bf16;
    # experts: gate_up + bias, clamped gate and up, gate x sigmoid, (up + 1) x glu
    "gpt-oss": ("transformers' GptOss defaults to eager attention (learned attention sinks)",
                HfCode(eager=True, score_compute=3, score_fp32=0, expert_units=9)),
    # models/deepseek_v4/modeling_deepseek_v4.py: _supports_sdpa / _supports_flash_attn / _supports_flex_attn
    # False; eager_attention_forward as gpt-oss's ([scores | sink], max-shifted, softmax in the compute dtype), a
    # "main" and a "compress" rotary table per forward. Not traced: the peak of this family is not held to a trace.
    "DeepSeek-V4": ("transformers' DeepseekV4 ships eager attention only (per-head sinks, head_dim 512)",
                    HfCode(eager=True, score_compute=3, score_fp32=0, rotary_tables=2)),
}


# SDPA families whose modeling file differs from the default in what it allocates.
SDPA_CODE: dict[str, HfCode] = {
    # models/mixtral/modeling_mixtral.py: fp32 routing weights, so the weighted expert outputs are fp32
    "Mixtral": HfCode(fp32_routing=True),
    # models/gemma3/modeling_gemma3.py: a global and a local rotary embedding, both computed per forward
    "Gemma 3": HfCode(rotary_tables=2),
}


def eager_reason(spec: ModelSpec) -> str | None:
    return EAGER_ATTENTION[spec.family][0] if spec.family in EAGER_ATTENTION else None


def hf_code(spec: ModelSpec, attn: str | None = None) -> HfCode:
    """What the modeling file allocates with the attention implementation `attn` (default: the class's)."""
    attn = kernels.resolve(attn, spec.family in EAGER_ATTENTION)
    if attn == "eager":
        return EAGER_ATTENTION[spec.family][1] if spec.family in EAGER_ATTENTION else EAGER
    code = SDPA_CODE.get(spec.family, SDPA)
    return replace(code, math=True) if attn == "sdpa_math" else code


def prefill_kv_bytes(inp: RuntimeInput) -> int:
    """DynamicCache after the prefill: a sliding-window layer keeps a view of the whole prompt's K/V
    (DynamicSlidingWindowLayer slices the concatenated tensor), so every layer holds the full length
    until the first decode step. Shared and recurrent layers hold no K/V (app.estimator.cache)."""
    return inp.batch * cache.kv_bytes(inp.spec.language_model, inp.kv, inp.sequence, windows=False)


@cache_by_width  # one per compute dtype width (2 or 4 bytes)
def state_rule(compute: int) -> cache.StateRule:
    """transformers 5.25 cache_utils.LinearAttentionLayer: conv_states keep the last conv_kernel_size inputs in
    the compute dtype (update_conv_state); recurrent_states are the kernel's final state: float32 for Gated
    DeltaNet (models/qwen3_5/modeling_qwen3_5.py torch_chunk_gated_delta_rule runs in float32) and for Mamba2
    (models/nemotron_h/modeling_nemotron_h.py, A = -exp(A_log.float())); DeepSeek-V4's CSA overlap: kv in the
    compute dtype, the gate float32 (chunk_gate + the float32 position_bias, models/deepseek_v4
    DeepseekV4CSACompressor); checked by the traces."""
    return cache.StateRule(conv_bytes=compute, recurrent_bytes=4, ssm_bytes=4, conv_keeps_kernel=True,
                           overlap_kv_bytes=compute, overlap_gate_bytes=4,
                           source="transformers cache_utils.LinearAttentionLayer, models/deepseek_v4 CSA cache")


def _gpu_lines(inp: RuntimeInput, slack: int) -> list[str]:
    return [
        f"GPU addition, {NOT_MEASURED}: CUDA context {CUDA_CONTEXT_BYTES // MiB} MiB per GPU "
        "(PyTorch lazy module loading, 0.27-0.4 GiB)",
        f"GPU addition, {NOT_MEASURED}: cuBLAS + cuBLASLt workspaces {CUBLAS_WORKSPACE_BYTES // MiB} MiB per GPU "
        "(PyTorch CUDABlasHandlePool, sm90)",
        f"GPU addition, {NOT_MEASURED}: caching allocator reserve over the allocated peak {slack // MiB} MiB "
        "(2 MiB blocks, freed blocks stay reserved)",
    ]


def memory(inp: RuntimeInput) -> RuntimeMemory:
    req = inp.request
    requested = req.attn_implementation if req else None
    if remote_code.runs_remote(inp.spec, req.trust_remote_code if req else None):
        return remote_code.memory(inp, requested, _gpu_lines)
    lm, spec = inp.spec.language_model, inp.spec
    e = compute_bytes(inp.fmt)
    attn = kernels.resolve(requested, spec.family in EAGER_ATTENTION)
    eager = eager_reason(spec) if attn == "eager" else None
    if attn == "eager" and eager is None:
        eager = "attn_implementation=eager requested (transformers' eager_attention_forward)"
    text = hf_prefill_bytes(lm, e, inp.batch, inp.sequence, hf_code(spec, attn))
    skip = applied_skip(inp.fmt, req.llm_int8_skip_modules if req else None)
    scratch = dequant_scratch(spec, inp.fmt.slug, inp.batch * inp.sequence, e, skip, inp.batch)
    int8_low, int8_high = int8_scratch(spec, inp.fmt.slug, inp.batch * inp.sequence, skip)
    text += scratch  # the largest quantized linear's dequantized weight, beside the prefill's activations
    vision = 0
    if spec.vision is not None and inp.images:
        vision = vision_pass_bytes(spec.vision, inp.batch * inp.images, e)
    activations = max(text, vision)
    kv = prefill_kv_bytes(inp)
    slack = int(ALLOCATOR_SLACK * (inp.weights.total_bytes + kv + activations))
    overhead = inp.gpu_count * (CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES) + slack
    attention = (f"eager attention: {eager}; its [batch, heads, tokens, tokens] scores make memory grow with "
                 "the square of the length" if eager else "SDPA attention (flash kernel, linear in length)")
    if attn == "sdpa_math":
        attention = ("SDPA held to its math kernel (attn_implementation=sdpa_math): fp32 [batch, heads, tokens, "
                     "tokens] scores, quadratic in length")
    elif attn == "flash_attention_2":
        attention = "flash_attention_2 (flash-attn: no score matrix, linear in length; not traced here)"
    notes = [
        f"transformers: every tensor on the GPU, DynamicCache, {attention}",
        "peak at the prefill of the whole prompt, in the last layer; generate() keeps logits of the last "
        "position only (logits_to_keep=1, then an fp32 copy)",
        "weights + KV + activations are held to transformers' traced allocated peak (fake tensors, "
        "torch MemTracker)",
        *_gpu_lines(inp, slack),
    ]
    sliding = 0 < lm.sliding_window_layers < lm.layers and inp.sequence > (lm.sliding_window or 0)
    if attn in ("sdpa", "sdpa_math") and sliding:
        notes.append("SDPA gets an explicit [tokens x tokens] mask for the sliding-window layers (and a copy "
                     "in the compute dtype during the call): that part grows with the square of the length")
    if lm.sliding_window_layers:
        notes.append("sliding-window layers keep the whole prompt's K/V until the first decoded token "
                     "(DynamicSlidingWindowLayer)")
    if scratch:
        notes.append(f"bitsandbytes dequantizes each 4-bit weight into a {e}-byte [out, in] tensor before its matmul "
                     f"over more than {BNB_FUSED_MAX_ROWS} tokens (bitsandbytes 0.50.2 gemm_4bit; from 5 to 1536 "
                     f"tokens its per-GPU heuristic may run the fused kernel instead): the largest, "
                     f"{scratch // MiB} MiB, is counted at the peak (not measured on a GPU here)")
    if int8_low:
        notes.append(f"LLM.int8() matmul scratch, not in the total (bitsandbytes 0.50.2 MatMul8bitLt.forward: "
                     f"int8_vectorwise_quant, int8_mixed_scaled_mm; read from its code, not measured on a GPU): "
                     f"the largest 8-bit linear over {inp.batch * inp.sequence:,} tokens allocates "
                     f"{int8_low // MiB:,} MiB beside its input and output (fp16 copy, abs and mask of the input, "
                     f"int8 copy, int32 product, fp16 output before the bf16 one) with no outlier column, up to "
                     f"{int8_high // MiB:,} MiB if every input column holds a value >= {LLM_INT8_THRESHOLD} "
                     f"(llm_int8_threshold; the outliers depend on the activations)")
    if vision:
        notes.append(f"vision encoder runs over {spec.vision.encoder_tokens:,} tokens per image before prefill")
    mem = RuntimeMemory(inp.weights.total_bytes, kv, activations, overhead, inp.sequence, assumptions=notes)
    mem.state_rule = rule = state_rule(e)
    if cache.has_state(lm):
        mem.state_per_sequence = cache.state_bytes_per_sequence(lm, rule)
        mem.state = inp.batch * mem.state_per_sequence
        for kind in sorted(cache.kinds(lm)[1]):
            notes += [n.format(e=e, state=mem.state_per_sequence) for n in STATE_NOTES.get(kind, STATE_NOTES[""])]
    if "compressed" in cache.kinds(lm)[0]:
        notes += COMPRESSED_NOTES
    return mem


# What the cache report's per-sequence state is, per layer kind that keeps one
STATE_NOTES: dict[str, tuple[str, ...]] = {
    "": ("recurrent layers: conv state of conv_kernel inputs in {e}-byte elements, recurrent/SSM state in float32: "
         "{state:,} bytes per sequence, whatever the context (LinearAttentionLayer)",
         "activations of the recurrent layers (Gated DeltaNet / Mamba2 / short-conv kernels) are not modelled yet: "
         "the activation figure follows the attention layers only"),
    "compressed": ("DeepSeek-V4 CSA layers keep the last closed window's overlap half (kv in {e}-byte elements, "
                   "gate in float32): {state:,} bytes per sequence (DeepseekV4CSACache)",),
}
COMPRESSED_NOTES = [
    "DeepSeek-V4: every layer keeps a sliding window of K = V rows (sliding-only layers store K and V apart, "
    "DynamicSlidingWindowLayer); CSA / HCA layers add one compressed entry per compress rate positions (CSA: and "
    "an indexer key); after the prefill the compressor buffers still hold every prompt position's kv_proj and "
    "gate_proj outputs (slices of them) until the first decoded token",
    "DeepSeek-V4's transformers peak is not traced here yet: the activation figure is the eager-attention "
    "estimate of the attention layers only (not the compressors, the indexer, the compressed entries in the "
    "score matrix or the hyper-connection streams); the KV and compressor figures are traced "
    "(model_specs/traces/cache/deepseek-v4-flash.json)",
]
