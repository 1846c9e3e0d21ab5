"""Exact parameter counts, tensor by tensor, from the released architecture.

Tensor names follow GGUF (`blk.N.attn_qkv.weight`, `v.blk.N.ffn_up.weight`, ...) because llama.cpp's
per-tensor quantization rules select tensors by those names. Shapes are PyTorch order
([out, in] for a linear), so the last dimension is the row a quantization block runs along.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod
from typing import Literal

from app.estimator.memo import per_spec
from app.estimator.spec import LanguageModel, ModelSpec, VisionTower

Part = Literal["language", "vision"]
Kind = Literal["embedding", "output", "linear", "norm", "bias", "conv", "position", "router"]


@dataclass(frozen=True, slots=True, repr=False)
class Tensor:
    name: str
    shape: tuple[int, ...]
    part: Part
    kind: Kind
    layer: int | None = None
    gguf_only: bool = False  # present in GGUF files only (Llama-3.1's rope_freqs), not a parameter
    modules: int = 1  # same-shaped nn.Linear modules this fused tensor is in the transformers class (SigLIP q/k/v: 3)
    nn_linear: bool = False  # an nn.Linear in the transformers class though its kind is not linear (patch_linear)

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def row(self) -> int:
        """Length of one row (GGML ne[0]), the dimension quantization blocks run along."""
        return self.shape[-1]

    @property
    def rows(self) -> int:
        return self.numel // self.row


def _norm(name: str, width: int, norm: str, part: Part, layer: int | None) -> list[Tensor]:
    out = [Tensor(f"{name}.weight", (width,), part, "norm", layer)]
    if norm == "layernorm":
        out.append(Tensor(f"{name}.bias", (width,), part, "norm", layer))
    return out


def _linear(name: str, out: int, inp: int, bias: bool, part: Part, layer: int | None) -> list[Tensor]:
    tensors = [Tensor(f"{name}.weight", (out, inp), part, "linear", layer)]
    if bias:
        tensors.append(Tensor(f"{name}.bias", (out,), part, "bias", layer))
    return tensors


def _attention(lm: LanguageModel, i: int) -> list[Tensor]:
    p, h = f"blk.{i}", lm.hidden
    if lm.mla is not None:
        m = lm.mla
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            q = _linear(f"{p}.attn_q_a", m.q_lora_rank, h, False, "language", i)
            q += _norm(f"{p}.attn_q_a_norm", m.q_lora_rank, lm.norm, "language", i)
            q += _linear(f"{p}.attn_q_b", lm.heads * qk, m.q_lora_rank, False, "language", i)
        else:
            q = _linear(f"{p}.attn_q", lm.heads * qk, h, False, "language", i)
        if lm.indexer is not None and i not in lm.indexer.shared_layers:  # DSA indexer (DeepseekV32Indexer)
            x = lm.indexer
            q += _linear(f"{p}.indexer.attn_q_b", x.heads * x.head_dim, m.q_lora_rank, False, "language", i)
            q += _linear(f"{p}.indexer.attn_k", x.head_dim, h, False, "language", i)
            q += _norm(f"{p}.indexer.k_norm", x.head_dim, "layernorm", "language", i)
            q += _linear(f"{p}.indexer.proj", x.heads, h, False, "language", i)
        return [
            *q,
            *_linear(f"{p}.attn_kv_a_mqa", m.kv_lora_rank + m.qk_rope_head_dim, h, False, "language", i),
            *_norm(f"{p}.attn_kv_a_norm", m.kv_lora_rank, lm.norm, "language", i),
            *_linear(f"{p}.attn_kv_b", lm.heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank,
                     False, "language", i),
            *_linear(f"{p}.attn_output", h, lm.heads * m.v_head_dim, lm.linear_bias, "language", i),
        ]
    # per-layer-type geometry (Gemma 4 full layers: global_head_dim, num_global_key_value_heads, K = V)
    geometry = lm.kv_geometry.get(lm.layer_types[i]) if lm.layer_types is not None else None  # type: ignore[call-overload]
    head_dim = geometry.head_dim if geometry is not None else lm.head_dim
    kv_heads = geometry.kv_heads if geometry is not None else lm.kv_heads
    no_v = geometry is not None and (geometry.k_eq_v or geometry.v_from_k)  # values from the key projection
    # Gemma 4 num_kv_shared_layers: the last layers read another layer's cache and build no k/v projections
    shared = i >= lm.layers - lm.kv_shared_layers
    v_dim = (geometry.v_head_dim if geometry is not None else None) or lm.v_head_dim or head_dim  # MiMo: 128
    heads = (geometry.heads if geometry is not None else None) or lm.heads  # Step-3.7 sliding layers: their own
    q, kv, v = heads * head_dim, kv_heads * head_dim, kv_heads * v_dim
    out_bias = lm.linear_bias if lm.output_bias is None else lm.output_bias
    extra: list[Tensor] = []
    if lm.qk_norm:  # per-head RMSNorm on q and k (Qwen3 q_norm/k_norm, Gemma 3); all heads: OLMo 3, MiniMax-M2
        q_width, k_width = (q, kv) if lm.qk_norm_full else (head_dim, head_dim)
        extra += _norm(f"{p}.attn_q_norm", q_width, "rmsnorm", "language", i)
        if not shared:
            extra += _norm(f"{p}.attn_k_norm", k_width, "rmsnorm", "language", i)
    sinks = lm.attention_sinks and (lm.sink_layer_type is None or lm.layer_types is None
                                    or lm.layer_types[i] == lm.sink_layer_type)
    if sinks:  # gpt-oss: one learned sink logit per query head (MiMo-V2-Flash: sliding layers only)
        extra.append(Tensor(f"{p}.attn_sinks.weight", (heads,), "language", "norm", i))
    if lm.attn_head_gate:  # Step3p7Attention g_proj: Linear(hidden, heads, bias=False), a sigmoid gate per head
        extra += _linear(f"{p}.attn_gate", heads, h, False, "language", i)
    q_out = 2 * q if lm.attn_output_gate else q  # Qwen3-Next / Qwen3.5: q_proj also yields the output gate
    if lm.fused_qkv:
        qkv = _linear(f"{p}.attn_qkv", q + 2 * kv, h, lm.qkv_bias, "language", i)
    else:
        qkv = _linear(f"{p}.attn_q", q_out, h, lm.qkv_bias, "language", i)
        if not shared:
            qkv += _linear(f"{p}.attn_k", kv, h, lm.qkv_bias, "language", i)
            if not no_v:
                qkv += _linear(f"{p}.attn_v", v, h, lm.qkv_bias, "language", i)
    return [*qkv, *extra, *_linear(f"{p}.attn_output", h, heads * v_dim, out_bias, "language", i)]


def _dense_ffn(prefix: str, hidden: int, ffn: int, kind: str, fused: bool, bias: bool,
               part: Part, layer: int | None, suffix: str = "") -> list[Tensor]:
    up = f"{prefix}.ffn_up{suffix}"
    down = _linear(f"{prefix}.ffn_down{suffix}", hidden, ffn, bias, part, layer)
    if kind == "gelu":
        return [*_linear(up, ffn, hidden, bias, part, layer), *down]
    if fused:  # gate and up stored as one [2*ffn, hidden] matrix (GLM's dense_h_to_4h / gate_up_proj)
        return [*_linear(up, 2 * ffn, hidden, bias, part, layer), *down]
    gate = _linear(f"{prefix}.ffn_gate{suffix}", ffn, hidden, bias, part, layer)
    return [*gate, *_linear(up, ffn, hidden, bias, part, layer), *down]


def layer_ffn(lm: LanguageModel, i: int) -> str:
    """dense, moe or none: the spec's layer_ffn, else MoE after the first dense layers (dense without MoE)."""
    if lm.layer_ffn is not None:
        return lm.layer_ffn[i]
    return "dense" if lm.moe is None or i < lm.moe.first_dense_layers else "moe"


def _ffn(lm: LanguageModel, i: int) -> list[Tensor]:
    p = f"blk.{i}"
    moe = lm.moe
    if moe is None or layer_ffn(lm, i) == "dense":
        return _dense_ffn(p, lm.hidden, lm.ffn, lm.ffn_kind, lm.fused_gate_up, lm.linear_bias, "language", i)
    e, f, h = moe.experts, moe.expert_ffn, lm.hidden
    tensors = [Tensor(f"{p}.ffn_gate_inp.weight", (e, h), "language", "router", i)]
    if moe.router_bias:
        tensors.append(Tensor(f"{p}.ffn_gate_inp.bias", (e,), "language", "bias", i))
    if moe.router_scales:  # Gemma 4 Gemma4TextRouter: scale [hidden], per_expert_scale [experts]
        tensors.append(Tensor(f"{p}.ffn_gate_inp.scale", (h,), "language", "norm", i))
        tensors.append(Tensor(f"{p}.ffn_gate_inp.expert_scale", (e,), "language", "norm", i))
    d = moe.latent_size or h  # Nemotron 3 Super: experts run in a latent behind two projections
    if moe.latent_size:
        tensors += _linear(f"{p}.ffn_latent_in", d, h, lm.linear_bias, "language", i)
        tensors += _linear(f"{p}.ffn_latent_out", h, d, lm.linear_bias, "language", i)
    mats = (("gate", (e, f, d)), ("up", (e, f, d)), ("down", (e, d, f)))
    for name, shape in mats if moe.gated else mats[1:]:
        tensors.append(Tensor(f"{p}.ffn_{name}_exps.weight", shape, "language", "linear", i))
        if moe.expert_bias:
            tensors.append(Tensor(f"{p}.ffn_{name}_exps.bias", shape[:2], "language", "bias", i))
    shared = moe.shared_expert_ffn or moe.shared_experts * f
    if shared:
        kind = "swiglu" if moe.gated else "gelu"
        tensors += _dense_ffn(p, h, shared, kind, False, False, "language", i, "_shexp")
    if moe.shared_expert_gate:  # Qwen2-MoE: sigmoid(hidden -> 1) scales the shared expert
        tensors.append(Tensor(f"{p}.ffn_gate_inp_shexp.weight", (1, h), "language", "router", i))
    return tensors


def language_tensors(lm: LanguageModel) -> list[Tensor]:
    """Every tensor of the decoder, in GGUF file order."""
    tensors = [Tensor("token_embd.weight", (lm.vocab, lm.hidden), "language", "embedding")]
    if lm.gguf_rope_freqs:
        tensors.append(Tensor("rope_freqs.weight", (lm.gguf_rope_freqs,), "language", "norm", gguf_only=True))
    ple = lm.per_layer_input
    if ple:  # Gemma 4 per-layer embeddings: one packed table and a projection into it (Gemma4TextModel)
        width = lm.layers * ple
        tensors.append(Tensor("per_layer_token_embd.weight", (lm.per_layer_vocab or lm.vocab, width), "language",
                              "embedding"))
        tensors += _linear("per_layer_model_proj", width, lm.hidden, False, "language", None)
        tensors += _norm("per_layer_proj_norm", ple, lm.norm, "language", None)
    # Gemma 2/3: post_attention, post_ffw; Gemma 4 MoE layers add post_ffw_1, post_ffw_2, pre_ffw_2
    extra_norms = ("post_attention_norm", "post_ffw_norm", "post_ffw_norm_1", "post_ffw_norm_2",
                   "pre_ffw_norm_2")[: lm.norms_per_layer - 2]
    from app.estimator.params_mixers import MIXERS, compressed_attention, hyper_connection, layer_hyper_connections

    types = lm.layer_types or ("full",) * lm.layers
    # DeepSeek-V4: its sliding layers run DeepseekV4Attention too (without a compressor)
    attention = compressed_attention if lm.compressed_attention is not None else _attention
    for i in range(lm.layers):
        if types[i] != "none":  # a block without a token mixer (Nemotron-H MLP / MoE blocks) has no attn_norm
            tensors += _norm(f"blk.{i}.attn_norm", lm.hidden, lm.norm, "language", i)
            tensors += MIXERS[types[i]](lm, i) if types[i] in MIXERS else attention(lm, i)
        for name in extra_norms:
            tensors += _norm(f"blk.{i}.{name}", lm.hidden, lm.norm, "language", i)
        if layer_ffn(lm, i) != "none":
            tensors += _norm(f"blk.{i}.ffn_norm", lm.hidden, lm.norm, "language", i)
            tensors += _ffn(lm, i)
        if ple:  # Gemma4TextDecoderLayer per_layer_input_gate, per_layer_projection, post_per_layer_input_norm
            tensors += _linear(f"blk.{i}.inp_gate", ple, lm.hidden, False, "language", i)
            tensors += _linear(f"blk.{i}.proj", lm.hidden, ple, False, "language", i)
            tensors += _norm(f"blk.{i}.post_norm", lm.hidden, lm.norm, "language", i)
        if lm.hyper_connections:  # DeepSeek-V4 mHC: a mixer before attention and one before the FFN
            tensors += layer_hyper_connections(lm, i)
    if lm.hyper_connections:  # DeepseekV4HyperHead collapses the streams before the final norm
        tensors += hyper_connection(lm, "output_hc", None, lm.hyper_connections, 1)
    tensors += _norm("output_norm", lm.hidden, lm.norm, "language", None)
    if not lm.tied_embeddings:
        tensors.append(Tensor("output.weight", (lm.vocab, lm.hidden), "language", "output"))
    return tensors


def vision_tensors(v: VisionTower) -> list[Tensor]:
    """ViT blocks, patch/position embeddings and the projector, named as in mmproj GGUF files."""
    patch = v.in_channels * v.temporal_patch * v.patch_size * v.patch_size
    tensors = [Tensor("v.patch_embd.weight", (v.hidden, patch), "vision", "conv", nn_linear=v.patch_linear)]
    if v.patch_bias:
        tensors.append(Tensor("v.patch_embd.bias", (v.hidden,), "vision", "bias"))
    if v.cls_token:
        tensors.append(Tensor("v.class_embd", (v.hidden,), "vision", "position"))
    if v.position_embeddings:
        tensors.append(Tensor("v.position_embd.weight", (v.position_embeddings, v.hidden), "vision", "position"))
    for i in range(v.layers):
        p = f"v.blk.{i}"
        tensors += _norm(f"{p}.ln1", v.hidden, v.norm, "vision", i)
        qkv = _linear(f"{p}.attn_qkv", 3 * v.hidden, v.hidden, v.qkv_bias, "vision", i)
        tensors += [replace(qkv[0], modules=v.qkv_modules), *qkv[1:]]
        tensors += _linear(f"{p}.attn_out", v.hidden, v.hidden, v.linear_bias, "vision", i)
        tensors += _norm(f"{p}.ln2", v.hidden, v.norm, "vision", i)
        for k in range(v.block_norms - 2):  # Gemma 4 vision: post_attention and post_feedforward norms too
            tensors += _norm(f"{p}.ln{k + 3}", v.hidden, v.norm, "vision", i)
        if v.layer_scales:  # Step3p7VisionEncoderLayer lambda_1 / lambda_2: per-channel scales of both branches
            tensors += [Tensor(f"{p}.ls1", (v.hidden,), "vision", "norm", i),
                        Tensor(f"{p}.ls2", (v.hidden,), "vision", "norm", i)]
        if v.qk_norm:
            tensors += _norm(f"{p}.attn_q_norm", v.hidden // v.heads, v.norm, "vision", i)
            tensors += _norm(f"{p}.attn_k_norm", v.hidden // v.heads, v.norm, "vision", i)
        tensors += _dense_ffn(p, v.hidden, v.mlp, v.mlp_kind, False, v.linear_bias, "vision", i)
    for k in range(v.extra_norms):
        tensors += _norm(f"v.extra_norm.{k}", v.hidden, v.norm, "vision", None)
    for t in v.projector:
        tensors.append(Tensor(f"mm.{t.name}", t.shape, "vision", t.kind))
    return tensors


@per_spec
def model_tensors(spec: ModelSpec) -> tuple[Tensor, ...]:
    """All tensors of the model (language model, then vision tower), computed once per spec."""
    vision = vision_tensors(spec.vision) if spec.vision is not None else []
    return tuple(language_tensors(spec.language_model) + vision)


@dataclass(frozen=True, slots=True, repr=False)
class ParameterCount:
    language: int
    vision: int

    @property
    def total(self) -> int:
        return self.language + self.vision


@per_spec
def count_parameters(spec: ModelSpec) -> ParameterCount:
    """Exact parameters of the released checkpoint (GGUF-only tensors excluded)."""
    counts = {"language": 0, "vision": 0}
    for t in model_tensors(spec):
        if not t.gguf_only:
            counts[t.part] += t.numel
    return ParameterCount(counts["language"], counts["vision"])


@per_spec
def count_active_parameters(spec: ModelSpec) -> int:
    """Parameters one token runs through: all of them minus the routed experts it is not sent to.

    Embeddings are included (a vendor may quote active counts without them: OpenAI's gpt-oss card does).
    Dense models: equal to the total.
    """
    total = count_parameters(spec).total
    lm = spec.language_model
    moe = lm.moe
    if moe is None:
        return total
    mats = 3 if moe.gated else 2
    d = moe.latent_size or lm.hidden
    per_expert = mats * d * moe.expert_ffn + ((2 * moe.expert_ffn + d) if moe.expert_bias else 0)
    moe_layers = sum(layer_ffn(lm, i) == "moe" for i in range(lm.layers))
    idle = moe_layers * (moe.experts - moe.experts_per_token) * per_expert
    return total - idle
