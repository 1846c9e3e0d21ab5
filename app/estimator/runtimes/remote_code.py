"""transformers with the model repository's own code (from_pretrained(..., trust_remote_code=True)).

THUDM/glm-4v-9b and THUDM/glm-4-9b-chat are loaded that way by their cards' snippets: modeling_chatglm.py
(and visual.py, the EVA2-CLIP tower), written for transformers 4.4x. Every term below is a tensor that code
allocates, read from the file and held to its traced allocated peak (model_specs/traces/remote/, fake
tensors + torch MemTracker; python -m app.measure trace-remote --all; tests/test_remote_code.py: within
0.5% of every traced row, KV byte for byte).

What the code does that the native classes do not:
- KV cache, its own layout (a tuple past_key_values, grown with torch.cat):
  * glm-4-9b-chat ("stacked"): each layer returns torch.cat of its K and V ([1, 2, batch, kv_heads, tokens,
    head_dim]) and the model cat-grows one tensor over the layers ("prefilling in decoding, use tensor format
    to save cuda memory"), then splits it into per-layer views; the previous layer's own K/V stays alive
    through the next layer (GLMTransformer.forward's layer_ret).
  * glm-4v-9b ("qkv_view"): each layer caches the rotated K and, for V, a view of the fused QKV projection's
    output: the cache holds that whole [batch, tokens, (heads + 2 kv_heads) x head_dim] storage per layer
    (9,728 bytes per token per layer in bf16 for GLM-4V-9B, 9.5x K and V alone) until the first decode step
    concatenates a compact copy.
- GQA K/V expanded to every query head with .contiguous() before attention (SelfAttention.forward).
- Rotary: the whole seq_length table is rebuilt every forward (RotaryEmbedding.forward_impl), then indexed
  by position_ids ([batch, tokens, head_dim / 4, 2]).
- logits of the last position only (prepare_inputs_for_generation: return_last_logit=True).
- eager attention (glm-4-9b-chat's CoreAttention): baddbmm into a preallocated buffer, fp32 scores
  (apply_query_key_layer_scaling -> attention_softmax_in_fp32) scaled by the layer number, a bool causal
  mask [batch, 1, tokens, tokens], masked_fill, fp32 softmax, cast back.
- images (glm-4v-9b): the processor's fp32 1120x1120 image and its bf16 copy, the tower's 1602 embeddings,
  the per-sample concatenated embeddings and position ids (lists kept through the forward).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.estimator.errors import InvalidRequest, UnknownChoice
from app.estimator.kv_cache import image_positions, kv_bytes
from app.estimator.params import model_tensors
from app.estimator.quantization import COMPUTE_BYTES
from app.estimator.runtimes.activations import compute_bytes
from app.estimator.runtimes.base import CUDA_CONTEXT_BYTES, RuntimeInput, RuntimeMemory
from app.estimator.spec import ModelSpec

INT64_PER_TEXT_TOKEN = 3 * 8  # input_ids and attention_mask generate() holds, position_ids (get_position_ids)
INT64_PER_IMAGE_POSITION = 2 * 8  # glm-4v image branch: new_position_ids (list) and their torch.stack
FP32_IMAGE = 4  # the processor's image tensor (torchvision ToTensor + Normalize: float32), held by generate()


@dataclass(frozen=True, slots=True, repr=False)
class RemoteCode:
    name: str
    source: str  # the traced copies (each trace file names repository, path, commit and sha256)
    kv_layout: str  # "stacked" or "qkv_view" (module docstring)
    attn_implementations: tuple[str, ...]  # what the file offers
    default_attn: str  # what from_pretrained gives it (transformers 4.4x: _supports_sdpa -> "sdpa")
    card_default: bool  # the card's snippet loads it with trust_remote_code=True
    # bitsandbytes (load_in_4bit / load_in_8bit) leaves 16-bit only what transformers' get_keys_to_not_convert
    # names: tied weights, the module of the model's last parameter and get_output_embeddings() (transformers
    # 5.25 quantizers/base.py; 4.4x integrations/bitsandbytes.py: tied weights and the last parameter). These
    # files define no get_output_embeddings; the last parameter (the class built on the meta device by
    # app.measure.remote_code) is transformer.output_layer.weight for glm-4-9b-chat, but
    # transformer.vision.conv.bias for glm-4v-9b, whose tower is built last: there the output layer is
    # quantized too (and, as natively, every Linear of the vision tower).
    bnb_quantizes_output: bool = False


# slug -> the remote code its card runs
REMOTE_CODE: dict[str, RemoteCode] = {
    "glm-4-9b-chat": RemoteCode(
        "THUDM/glm-4-9b-chat modeling_chatglm.py",
        "public copy enterdawn/MSDLLM@2ad99be4 modeling_chatglm.py (model_specs/traces/remote/glm-4-9b-chat.json)",
        "stacked", ("sdpa", "eager", "flash_attention_2"), "sdpa", True),
    "glm-4v-9b": RemoteCode(
        "THUDM/glm-4v-9b modeling_chatglm.py + visual.py",
        "public copies XuRui314/GLM4v-Finetune@513b75de modeling_chatglm.py and huggingface/optimum-habana@1d8504c6 "
        "visual.py (model_specs/traces/remote/glm-4v-9b.json)",
        "qkv_view", ("sdpa",), "sdpa", True,  # CoreAttention calls torch SDPA itself (torch >= 2)
        bnb_quantizes_output=True),
}


def runs_remote(spec: ModelSpec, requested: bool | None) -> bool:
    """Whether the transformers estimate runs the repository's code: as asked, else as the card does.

    Raises:
        InvalidRequest: trust_remote_code=true for a model whose remote code is not modelled.
    """
    if requested is None:
        return spec.slug in REMOTE_CODE and REMOTE_CODE[spec.slug].card_default
    if requested and spec.slug not in REMOTE_CODE:
        raise InvalidRequest("trust_remote_code", f"no remote code is modelled for {spec.slug}; models with "
                             f"their repository's code modelled: {', '.join(sorted(REMOTE_CODE))}")
    return requested


def kv_prefill_bytes(spec: ModelSpec, e: int, batch: int, positions: int) -> int:
    """What the tuple past_key_values holds after the prefill (distinct storages)."""
    lm = spec.language_model
    layout = REMOTE_CODE[spec.slug].kv_layout
    if layout == "qkv_view":  # rotated K + the fused QKV output V is a view of
        per_layer = e * (lm.kv_heads * lm.head_dim + (lm.heads + 2 * lm.kv_heads) * lm.head_dim)
        return batch * positions * lm.layers * per_layer
    return batch * positions * lm.layers * 2 * lm.kv_heads * lm.head_dim * e


@dataclass(frozen=True, slots=True, repr=False)
class Phases:
    mlp: int
    attention: int
    decode: int
    vision: int

    @property
    def peak(self) -> int:
        return max(self.mlp, self.attention, self.decode, self.vision)


def phases(spec: ModelSpec, e: int, batch: int, positions: int, images: int, attn: str) -> Phases:
    """Bytes beside the weights and the prefill's KV cache at each candidate peak (the vision tower runs
    before any KV exists: its phase is what it holds less that cache)."""
    kv_prefill = kv_prefill_bytes(spec, e, batch, positions)
    lm = spec.language_model
    rc = REMOTE_CODE[spec.slug]
    h, f, heads, kv, d = lm.hidden, lm.ffn, lm.heads, lm.kv_heads, lm.head_dim
    n = batch * positions
    text = positions - image_positions(spec, images)
    layer_kv = 2 * kv * d * e  # one layer's compact K and V per position
    ints = batch * (INT64_PER_TEXT_TOKEN * text + (INT64_PER_IMAGE_POSITION * positions if images else 0))
    # the embeddings (ChatGLMModel.forward's inputs_embeds) and the indexed rotary table; the rotary inv_freq
    # buffer beside the weights (RotaryEmbedding(head_dim // 2): head_dim / 4 values in the model dtype)
    resident = ints + n * e * (h + d // 2) + e * (d // 4)
    if rc.kv_layout == "stacked":
        resident += n * layer_kv  # the previous layer's torch.cat of K and V (layer_ret)
    if images:
        v = spec.vision
        pixels = v.in_channels * v.image_size * v.image_size
        resident += n * e * h + batch * images * (e * h * v.embeddings_per_image + (e + FP32_IMAGE) * pixels)
    # last layer, MLP: layer input, attention output, residual sum, post-attention norm; fused gate_up (2F),
    # silu (F), product (F)
    mlp = resident + n * e * (4 * h + 4 * f)
    fused_qkv = 0 if rc.kv_layout == "qkv_view" else (heads + 2 * kv) * d  # qkv_view: that storage is the cache
    # last layer, attention: layer input, input norm, fused QKV output, rotated Q, K and V expanded to all heads
    linear = resident + n * e * (2 * h + fused_qkv + heads * d + 2 * heads * d)
    if attn == "eager":
        # CoreAttention: buffer (e) + baddbmm result (e) + fp32 masked scores + fp32 softmax + probs (e), per
        # head; the bool causal mask [batch, 1, tokens, tokens]
        attention = linear + batch * positions * positions * (heads * (3 * e + 8) + 1)
    else:  # SDPA / flash-attn: the output and an fp32 logsumexp per head and token
        attention = linear + n * (e * heads * d + 4 * heads)
    # decode step: the new compact cache of every layer beside the prefill's, the last layer's expanded K/V
    decode = batch * (positions + 1) * (lm.layers * layer_kv + 2 * e * heads * d + INT64_PER_TEXT_TOKEN)
    vision = 0
    if images:  # before any KV exists: the text embeddings, both image copies, the tower's last MLP (visual.py
        # TransformerLayer: layer input, normed attention output, residual sum, fc1 out and its GELU)
        v = spec.vision
        tower = batch * images * v.encoder_tokens * e * (3 * v.hidden + 2 * v.mlp)
        vision = ints + batch * text * e * h + batch * images * (e + FP32_IMAGE) * pixels + tower - kv_prefill
    return Phases(mlp, attention, decode, vision)


def _weights(inp: RuntimeInput, rc: RemoteCode) -> tuple[int, int]:
    """Weights as this code loads them, and the bytes bitsandbytes saves on the output layer (0 if kept)."""
    fmt = inp.fmt
    if not (rc.bnb_quantizes_output and fmt.slug.startswith("bnb-") and fmt.linear_size is not None):
        return inp.weights.total_bytes, 0
    out = next(t for t in model_tensors(inp.spec) if t.kind == "output")
    saved = out.numel * COMPUTE_BYTES - fmt.linear_size(out)
    return inp.weights.total_bytes - saved, saved


def memory(inp: RuntimeInput, requested_attn: str | None,
           gpu_lines: Callable[[RuntimeInput, int], list[str]]) -> RuntimeMemory:
    spec = inp.spec
    rc = REMOTE_CODE[spec.slug]
    attn = requested_attn or rc.default_attn
    if attn not in rc.attn_implementations:
        raise UnknownChoice("attn_implementation", attn, list(rc.attn_implementations),
                            f"{rc.name} (trust_remote_code=true) offers these")
    e = compute_bytes(inp.fmt)
    weights, quantized_output = _weights(inp, rc)
    kv = kv_prefill_bytes(spec, e, inp.batch, inp.sequence)
    p = phases(spec, e, inp.batch, inp.sequence, inp.images, attn)
    from app.estimator.runtimes.transformers import CUBLAS_WORKSPACE_BYTES

    overhead = inp.gpu_count * (CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES)
    compact = inp.batch * kv_bytes(spec.language_model, inp.kv, inp.sequence)
    where = max(("prefill, last layer's MLP", p.mlp), ("prefill, last layer's attention", p.attention),
                ("the first decode step", p.decode), ("the vision tower", p.vision), key=lambda t: t[1])[0]
    notes = [
        f"transformers with the repository's code (trust_remote_code=True: {rc.name}; traced from {rc.source}), "
        f"attention {attn}" + (" (fp32 [batch, heads, tokens, tokens] scores: quadratic in length)"
                               if attn == "eager" else " (no score matrix, linear in length)"),
        f"peak at {where}; logits of the last position only (return_last_logit=True)",
        "weights + KV + activations are held to the remote code's traced allocated peak (fake tensors, torch "
        "MemTracker)",
        *gpu_lines(inp, 0),
    ]
    if rc.kv_layout == "qkv_view":
        notes.append(f"the prefill's cache holds {kv:,} bytes: each layer's V is a view of the fused QKV output, "
                     f"so the cache keeps that whole tensor ({kv / max(compact, 1):.1f}x the {compact:,} bytes of K "
                     f"and V) until the first decode step copies it; the {kv - compact:,} bytes over K and V are "
                     "counted with the activations")
    else:
        notes.append("KV cache: one tensor cat-grown over the layers at the prefill (old and new copies coexist "
                     "at each layer), then split into per-layer views")
    if quantized_output:
        notes.append(f"bitsandbytes with this code quantizes the output layer too ({quantized_output:,} bytes "
                     "less than with it in 16-bit): transformers keeps 16-bit only the module of the model's last "
                     "parameter (transformer.vision.conv) and get_output_embeddings(), which the file does not "
                     "define")
    if attn == "flash_attention_2":
        notes.append("flash_attention_2: modelled as a fused kernel (output + fp32 logsumexp), not traced here "
                     "(flash-attn has no CPU kernel)")
    # the breakdown's KV is K and V themselves; what the cache's views keep of the fused QKV output until the
    # first decode step is counted with the prefill's temporaries
    return RuntimeMemory(weights, compact, p.peak + kv - compact, overhead, inp.sequence,
                         assumptions=notes)
