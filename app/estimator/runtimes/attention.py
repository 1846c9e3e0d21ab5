"""Attention kernels of transformers + PyTorch, where they change memory: which one runs by default on a CUDA
GPU, and what each allocates beside the layer's other tensors.

Default (what runs on a CUDA GPU, not what a CPU trace ran):
- transformers 5.25.0 modeling_utils.PreTrainedModel.get_correct_attn_implementation: with no
  attn_implementation requested it takes "sdpa" when the class sets _supports_sdpa, else "eager"; it never
  picks flash_attention_2 by itself (only when requested, after _flash_attn_can_dispatch). A model whose
  modeling file builds its own eager scores (Gemma 2 soft-capping, gpt-oss sinks) defaults to eager there.
- torch SDPA's CUDA kernel order (torch 2.x aten/src/ATen/native/transformers/cuda/sdp_utils.cpp,
  select_sdp_backend: flash, then memory-efficient, then math): flash takes fp16/bf16 on sm80+ with head_dim
  <= 256 (a multiple of 8) and no explicit mask (is_causal); memory-efficient takes fp32 too and explicit
  masks; the math kernel only runs when neither takes the inputs. For the bf16/fp16 models here with head_dim
  <= 256 that is flash (no mask) or memory-efficient (a sliding-window mask): both write the output and an fp32
  logsumexp per head and token, no [tokens x tokens] scores. The CPU trace dispatches
  _scaled_dot_product_flash_attention_for_cpu, which allocates the same (model_specs/traces/).
- sdpa_math (torch 2.13 _scaled_dot_product_attention_math, held to model_specs/traces/attention/): bf16/fp16
  inputs are up-cast to fp32 (allowFP16BF16ReductionMathSDP is off by default), the fp32 scores and
  _safe_softmax's fp32 output per head, the causal mask as an fp32 additive [tokens, tokens]: quadratic
  (activations.hf_math_attention_phase).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, repr=False)
class Kernel:
    slug: str
    label: str
    scores: bool  # materializes [batch, heads, tokens, tokens]
    source: str


KERNELS: dict[str, Kernel] = {k.slug: k for k in (
    Kernel("sdpa", "SDPA, flash or memory-efficient kernel (no score matrix)", False,
           "torch.nn.functional.scaled_dot_product_attention; CUDA kernel order flash > efficient > math"),
    Kernel("sdpa_math", "SDPA math kernel (fp32 scores materialized)", True,
           "torch _scaled_dot_product_attention_math: fp32 up-cast, scores, causal mask, _safe_softmax"),
    Kernel("eager", "eager attention (the model's own matmul + softmax: scores materialized)", True,
           "transformers eager_attention_forward, or the model file's own"),
    Kernel("flash_attention_2", "flash-attn 2 (no score matrix)", False,
           "flash_attn.flash_attn_func: output and an fp32 logsumexp per head and token"),
)}

def resolve(requested: str | None, eager_family: bool) -> str:
    """The attention implementation transformers 5.25 runs on a CUDA GPU when none is requested."""
    if requested is not None:
        return requested
    return "eager" if eager_family else "sdpa"
