"""KV-cache element types and bytes per token, from the real KV heads and head dim.

bytes = 2 (K and V) x layers x kv_heads x head_dim x bytes per element x tokens x batch
(MLA caches one latent of kv_lora_rank + qk_rope_head_dim per layer instead of K and V;
sliding-window layers hold at most `sliding_window` tokens). Which layers slide is
`LanguageModel.layer_types` (Gemma 2 and gpt-oss alternate, Gemma 3 five of six, Qwen2 from
max_window_layers on); the total only needs their count, `sliding_window_layers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.estimator import cache
from app.estimator.gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from app.estimator.spec import LanguageModel, ModelSpec


@dataclass(frozen=True, slots=True, repr=False)
class KvType:
    slug: str
    label: str
    block: int  # elements per block
    block_bytes: int  # bytes per block
    source: str

    def __hash__(self) -> int:  # the slug names the type (the caches of estimate() key on it, per request)
        return hash(self.slug)

    def bytes_for(self, elements: int) -> int:
        """Bytes of `elements` values stored in this type (whole blocks, as ggml_row_size)."""
        return -(-elements // self.block) * self.block_bytes


def _ggml(slug: str) -> KvType:
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[slug.upper()]]
    return KvType(slug, slug.upper(), block, size, "llama.cpp --cache-type-k/-v; gguf GGML_QUANT_SIZES")


KV_TYPES: dict[str, KvType] = {k.slug: k for k in [
    KvType("fp32", "FP32", 1, 4, "IEEE float32"),
    KvType("fp16", "FP16", 1, 2, "IEEE float16"),
    KvType("bf16", "BF16", 1, 2, "bfloat16"),
    KvType("fp8", "FP8 (e4m3)", 1, 1, "vLLM --kv-cache-dtype fp8"),
    *(_ggml(s) for s in ("q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl")),
]}


def kv_row_elements(lm: LanguageModel) -> int:
    """Cached values per token per layer (K and V together, or the MLA latent) of a uniform model; per-layer
    geometry: app.estimator.cache."""
    if lm.mla is not None:
        return lm.mla.kv_lora_rank + lm.mla.qk_rope_head_dim
    return 2 * lm.kv_heads * lm.head_dim


def kv_bytes(lm: LanguageModel, kv: KvType, tokens: int) -> int:
    """KV bytes for `tokens` cached positions of one sequence, layer by layer (app.estimator.cache: K and V
    rows quantized separately; sliding/chunked layers keep their window; shared and recurrent layers none)."""
    return cache.kv_bytes(lm, kv, tokens)


def layer_tokens(lm: LanguageModel, tokens: int) -> list[int]:
    """Positions each layer caches for a `tokens`-long sequence (the per-layer window pattern)."""
    return [layer.positions(tokens) for layer in cache.layer_caches(lm)]


def image_positions(spec: ModelSpec, images: int) -> int:
    """KV positions images add beyond the text tokens (GLM-4V-9B: 1,602 embeddings - 3 placeholders)."""
    return 0 if spec.vision is None else images * spec.vision.positions_per_image
