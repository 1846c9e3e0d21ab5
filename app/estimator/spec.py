"""The model catalog's data model: a card as published, the released architecture, their disagreements.

Every architecture section carries the source of its values (`source`), with per-field overrides in
`field_sources`; the catalog loader refuses a section whose values have no source.
"""

# Annotations evaluated at class creation (no `from __future__ import annotations`): pydantic would otherwise
# compile every field's annotation string when the models are built, a noticeable part of a cold `vram` start.

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Sourced(BaseModel):
    """A section whose values all come from `source`, unless `field_sources` names another."""

    model_config = _STRICT

    source: str = Field(min_length=3, description="Where these values come from (repository : file).")
    field_sources: dict[str, str] = Field(
        default={}, description="Per-field sources that differ from `source`."
    )

    @model_validator(mode="after")
    def _sources_name_fields(self) -> 'Sourced':
        unknown = set(self.field_sources) - set(type(self).model_fields)
        if unknown:
            raise ValueError(f"field_sources names unknown fields: {sorted(unknown)}")
        return self

    def source_of(self, field: str) -> str:
        return self.field_sources.get(field, self.source)


def _drop_defaults(out: dict, model: BaseModel, names: tuple[str, ...]) -> dict:
    """Leave out fields added after the catalog was written while they hold their defaults, so committed spec
    JSON stays byte-identical (app.catalog.build --check)."""
    fields = type(model).model_fields
    for name in names:
        if name in out and getattr(model, name) == fields[name].get_default(call_default_factory=True):
            out.pop(name)
    return out


class MoE(BaseModel):
    """Mixture-of-experts FFN (DeepSeek/Mixtral style): routed experts plus optional shared ones."""

    model_config = _STRICT

    experts: int = Field(ge=2, description="Routed experts per MoE layer.")
    experts_per_token: int = Field(ge=1, description="Experts each token is routed to.")
    expert_ffn: int = Field(ge=1, description="Intermediate size of one routed expert.")
    shared_experts: int = Field(0, ge=0, description="Always-active shared experts per layer.")
    first_dense_layers: int = Field(0, ge=0, description="Leading layers with a dense FFN instead.")
    # --- additive fields: their defaults keep older spec files valid unchanged ---
    shared_expert_ffn: int | None = Field(
        None, ge=1, description="Intermediate size of the shared-expert block (default: shared_experts x expert_ffn).")
    shared_expert_gate: bool = Field(False, description="Sigmoid gate hidden -> 1 on the shared expert (Qwen2-MoE).")
    router_bias: bool = Field(False, description="The router linear carries a bias (gpt-oss).")
    expert_bias: bool = Field(False, description="Expert gate/up and down projections carry biases (gpt-oss).")
    gated: bool = Field(True, description="Experts are gated (gate, up, down); False: up and down only "
                                          "(Nemotron-H relu2 experts).")

    latent_size: int | None = Field(None, ge=1, description="Routed experts work in a latent of this width, "
                                                            "behind hidden -> latent -> hidden projections "
                                                            "(Nemotron 3 Super moe_latent_size).")
    router_scales: bool = Field(False, description="The router carries a scale [hidden] and a per_expert_scale "
                                                   "[experts] (Gemma 4 Gemma4TextRouter).")

    @model_serializer(mode="wrap")
    def _serialize(self, handler):
        return _drop_defaults(handler(self), self, ("gated", "latent_size", "router_scales"))


class MLA(BaseModel):
    """Multi-head latent attention (DeepSeek-V2): the KV cache holds one compressed latent per token."""

    model_config = _STRICT

    q_lora_rank: int = Field(0, ge=0, description="Query low-rank size; 0 means a plain q projection.")
    kv_lora_rank: int = Field(ge=1, description="Compressed KV latent size (cached).")
    qk_nope_head_dim: int = Field(ge=1)
    qk_rope_head_dim: int = Field(ge=1, description="Decoupled rotary key size (cached, shared by heads).")
    v_head_dim: int = Field(ge=1)


class KvGeometry(BaseModel):
    """One layer type's attention KV geometry when it differs from the model's kv_heads x head_dim
    (Gemma 4 full layers: num_global_key_value_heads x global_head_dim, K = V; MiMo's SWA layers)."""

    model_config = _STRICT

    kv_heads: int = Field(ge=1, description="KV heads of these layers.")
    head_dim: int = Field(ge=1, description="Key head dim of these layers.")
    v_head_dim: int | None = Field(None, ge=1, description="Value head dim when it differs from head_dim.")
    k_eq_v: bool = Field(False, description="Keys double as values: one tensor stored, not two.")
    v_from_k: bool = Field(False, description="No v_proj: values are computed from the key projection (Gemma 4 "
                                              "attention_k_eq_v). Weights only: transformers' cache still "
                                              "holds K and V apart (V is v_norm(k), K is rope(k_norm(k))).")
    heads: int | None = Field(None, ge=1, description="Query heads of these layers when they differ from "
                                                      "num_attention_heads (Step-3.7 sliding layers: "
                                                      "attention_other_setting). Weights only: the cache is KV.")

    @model_serializer(mode="wrap")
    def _serialize(self, handler):
        return _drop_defaults(handler(self), self, ("v_from_k", "heads"))


class MtpDraft(BaseModel):
    """The multi-token-prediction layer(s) a checkpoint stores after the decoder, as vLLM loads them for
    --speculative-config '{"method": "mtp"}' (vllm/config/speculative.py turns the target's config into the
    draft's model_type)."""

    model_config = _STRICT

    layers: int = Field(ge=1, description="MTP layers stored (num_nextn_predict_layers / mtp_num_hidden_layers).")
    draft: Literal["deepseek_mtp", "glm4_moe_mtp", "qwen3_next_mtp", "qwen3_5_mtp",
                   "mimo_v2_mtp"] = Field(
        description="vLLM's draft model_type (the registry of app.estimator.runtimes.vllm_mtp).")


class Indexer(BaseModel):
    """Sparse-attention indexer (DeepSeek V3.2 / GLM-5 DSA): a per-token key cache beside the KV/latent."""

    model_config = _STRICT

    heads: int = Field(ge=1, description="index_n_heads (query side; the cached key is one head).")
    head_dim: int = Field(ge=1, description="index_head_dim: elements of the cached key per token.")
    top_k: int = Field(ge=1, description="index_topk: positions selected (does not shrink the stored cache).")
    shared_layers: tuple[int, ...] = Field(
        (), description="Layers that reuse an earlier layer's top-k: no indexer weights, no indexer keys cached "
                        "(GLM-5 indexer_types 'shared').")

    @model_serializer(mode="wrap")
    def _serialize(self, handler):
        return _drop_defaults(handler(self), self, ("shared_layers",))


class LinearAttention(BaseModel):
    """Gated DeltaNet layers (Qwen3-Next, Qwen3.5): a fixed-size recurrent state + a conv state per sequence."""

    model_config = _STRICT

    key_heads: int = Field(ge=1, description="linear_num_key_heads.")
    value_heads: int = Field(ge=1, description="linear_num_value_heads.")
    key_head_dim: int = Field(ge=1, description="linear_key_head_dim.")
    value_head_dim: int = Field(ge=1, description="linear_value_head_dim.")
    conv_kernel: int = Field(ge=1, description="linear_conv_kernel_dim (depthwise causal conv over q, k, v).")

    @property
    def conv_channels(self) -> int:
        """Channels of the causal conv: q and k (key_heads x key_head_dim each) and v."""
        return 2 * self.key_heads * self.key_head_dim + self.value_heads * self.value_head_dim

    @property
    def state_shape(self) -> tuple[int, int, int]:
        """Recurrent state per sequence: [value_heads, key_head_dim, value_head_dim]."""
        return (self.value_heads, self.key_head_dim, self.value_head_dim)


class Mamba2(BaseModel):
    """Mamba2 mixer layers (Nemotron-H, Granite 4.0-H): SSM state + conv state per sequence."""

    model_config = _STRICT

    heads: int = Field(ge=1, description="mamba_num_heads.")
    head_dim: int = Field(ge=1, description="mamba_head_dim.")
    state_size: int = Field(ge=1, description="ssm_state_size (d_state).")
    groups: int = Field(ge=1, description="n_groups (B and C groups).")
    conv_kernel: int = Field(ge=1, description="conv_kernel (d_conv).")
    conv_bias: bool = Field(True, description="use_conv_bias.")
    proj_bias: bool = Field(False, description="use_bias: in_proj and out_proj biases.")

    @property
    def inner(self) -> int:
        return self.heads * self.head_dim

    @property
    def conv_channels(self) -> int:
        """x, B and C go through the conv: inner + 2 x groups x state_size."""
        return self.inner + 2 * self.groups * self.state_size

    @property
    def state_shape(self) -> tuple[int, int, int]:
        """SSM state per sequence: [heads, head_dim, state_size]."""
        return (self.heads, self.head_dim, self.state_size)


class ShortConv(BaseModel):
    """LFM2 short-convolution layers: a conv state of `hidden` channels per sequence, no KV."""

    model_config = _STRICT

    conv_kernel: int = Field(ge=1, description="conv_L_cache (kernel of the depthwise conv).")
    bias: bool = Field(False, description="conv_bias: in_proj, conv and out_proj biases.")


class CompressedAttention(BaseModel):
    """DeepSeek-V4 attention (transformers models/deepseek_v4, 5.25): one shared K = V head (MQA) of head_dim over
    a sliding window on every layer; compressed_sparse (CSA) and heavily_compressed (HCA) layers add a compressor
    that emits one compressed entry per compress rate positions (CSA also a lightning indexer with its own
    compressed keys); q through a q_lora_rank latent, a grouped low-rank output projection."""

    model_config = _STRICT

    q_lora_rank: int = Field(ge=1, description="q_lora_rank (q_a_proj -> q_a_norm -> q_b_proj).")
    o_groups: int = Field(ge=1, description="o_groups: head groups of the grouped output projection.")
    o_lora_rank: int = Field(ge=1, description="o_lora_rank: per-group width of the grouped output projection.")
    compress_rates: dict[Literal["compressed_sparse", "heavily_compressed"], int] = Field(
        description="compress_rates: source positions per compressed entry, per compressed layer type.")
    index_heads: int = Field(ge=1, description="index_n_heads (indexer query heads, CSA layers).")
    index_head_dim: int = Field(ge=1, description="index_head_dim (indexer compressed key width, CSA layers).")
    index_top_k: int = Field(ge=1, description="index_topk: compressed entries a query attends (does not shrink "
                                                "the cache).")


LayerType = Literal["full", "sliding", "chunked", "linear_attention", "mamba2", "short_conv", "compressed_sparse",
                    "heavily_compressed", "none"]
LAYER_TYPES: tuple[str, ...] = get_args(LayerType)
FfnType = Literal["dense", "moe", "none"]
# Per-tensor schemes of a checkpoint that mixes them (app.estimator.quantization.SCHEMES, or the compute dtype)
StoredScheme = Literal["nvfp4", "nvfp4-w4a16", "fp8-static", "unquantized"]


# LanguageModel fields of the per-layer cache model (additive: older specs load and serialize unchanged)
CACHE_MODEL_FIELDS = ("v_head_dim", "kv_geometry", "attention_chunk_size", "kv_shared_layers", "indexer",
                      "linear_attention", "mamba", "short_conv", "state_dtype", "layer_ffn", "attn_output_gate",
                      "per_layer_input", "per_layer_vocab", "sink_layer_type", "attn_head_gate", "mtp_layers",
                      "mtp_draft", "compressed_attention", "hyper_connections", "stored_schemes", "stored_group_size",
                      "stored_kv_cache")


class LanguageModel(Sourced):
    """Decoder-only transformer as released (config.json), with what GGUF files add."""

    layers: int = Field(ge=1, description="Decoder layers.")
    hidden: int = Field(ge=1, description="Hidden size.")
    heads: int = Field(ge=1, description="Query heads.")
    kv_heads: int = Field(ge=1, description="Key/value heads (grouped-query attention when < heads).")
    head_dim: int = Field(ge=1, description="Explicit head dimension (kv_channels / head_dim).")
    ffn: int = Field(ge=1, description="FFN intermediate size.")
    ffn_kind: Literal["swiglu", "gelu", "geglu"] = Field(
        description="SwiGLU (gate+up+down), plain 2-matrix MLP, or GeGLU (gated like SwiGLU, GELU activation).")
    vocab: int = Field(ge=1, description="Rows of the embedding (padded vocabulary).")
    tied_embeddings: bool = Field(description="Output layer shares the embedding matrix.")
    qkv_bias: bool = Field(description="Q, K and V projections carry biases.")
    linear_bias: bool = Field(description="Attention output and FFN linears carry biases.")
    norm: Literal["rmsnorm", "layernorm"] = Field(description="RMSNorm (weight) or LayerNorm (weight+bias).")
    norms_per_layer: int = Field(2, ge=1, description="Norms inside one decoder layer (GLM-4-0414: 4).")
    max_context: int = Field(ge=1, description="Context the released model was trained/configured for.")
    fused_qkv: bool = Field(description="Checkpoint and GGUF store Q, K and V as one attn_qkv tensor.")
    fused_gate_up: bool = Field(False, description="SwiGLU gate and up stored as one [2*ffn, hidden] tensor.")
    gguf_rope_freqs: int = Field(0, ge=0, description="Length of the F32 rope_freqs tensor GGUF files add.")
    sliding_window: int | None = Field(None, ge=1, description="Window of sliding-window layers.")
    sliding_window_layers: int = Field(0, ge=0, description="How many layers use the sliding window.")
    moe: MoE | None = None
    mla: MLA | None = None
    dtype: Literal["bfloat16", "float16", "float32"] = Field(description="torch_dtype of the release.")
    # --- additive fields: their defaults keep older spec files valid unchanged ---
    layer_types: tuple[LayerType, ...] | None = Field(
        None, description="Per-layer kind (config layer_types or the family's pattern): full / sliding / chunked "
                          "attention, linear_attention (Gated DeltaNet), mamba2, short_conv, or none (a block "
                          "without a token mixer); its 'sliding' count equals sliding_window_layers.")
    output_bias: bool | None = Field(
        None, description="Attention output projection bias when it differs from linear_bias (Llama attention_bias).")
    qk_norm: bool = Field(False, description="Per-head RMSNorm on queries and keys (q_norm/k_norm, head_dim wide).")
    attention_sinks: bool = Field(False, description="A learned sink logit per query head and layer (gpt-oss).")
    stored_format: str | None = Field(
        None, description="Weight format slug the released checkpoint is stored in, when quantized "
                          "(from quantization_config); None: the dtype.")
    stored_schemes: dict[str, StoredScheme] | None = Field(
        None, description="How the released checkpoint stores each linear weight when its quantization_config "
                          "says so per module (ignore / exclude_modules lists, ModelOpt quantized_layers): tensor "
                          "name or glob (blk.*.attn_q.weight) -> scheme; tensors not named follow the format.")
    stored_group_size: int | None = Field(
        None, ge=-1, description="GPTQ / AWQ group_size of the released checkpoint when it is not 128 (-1: one "
                                 "group per input row, per-channel scales).")
    stored_kv_cache: Literal["fp8"] | None = Field(
        None, description="KV-cache dtype the checkpoint's quantization_config asks for (ModelOpt kv_cache_scheme / "
                          "kv_cache_quant_algo FP8); vLLM's --kv-cache-dtype auto resolves to it.")
    # --- per-layer cache model: additive, defaults keep older specs unchanged ---
    v_head_dim: int | None = Field(None, ge=1, description="Value head dim when it differs from head_dim.")
    kv_geometry: dict[Literal["full", "sliding", "chunked"], KvGeometry] = Field(
        default={}, description="KV geometry of one layer type when it differs from kv_heads x head_dim.")
    attention_chunk_size: int | None = Field(None, ge=1, description="Positions a chunked-attention layer keeps.")
    kv_shared_layers: int = Field(0, ge=0, description="Last layers that allocate no KV and read the cache of "
                                                       "the last earlier layer of their type (num_kv_shared_layers).")
    indexer: Indexer | None = Field(None, description="Sparse-attention indexer keys cached beside every "
                                                      "attention / MLA layer.")
    linear_attention: LinearAttention | None = Field(None, description="Geometry of linear_attention layers.")
    mamba: Mamba2 | None = Field(None, description="Geometry of mamba2 layers.")
    short_conv: ShortConv | None = Field(None, description="Geometry of short_conv layers.")
    state_dtype: Literal["bfloat16", "float16", "float32"] | None = Field(
        None, description="Recurrent/SSM state dtype the release asks for (mamba_ssm_dtype); None: the model dtype.")
    layer_ffn: tuple[FfnType, ...] | None = Field(
        None, description="Per-layer FFN (dense, moe, none) when it is not the model-wide rule (Nemotron-H).")
    attn_output_gate: bool = Field(False, description="q_proj also yields a sigmoid output gate (Qwen3-Next).")
    attn_head_gate: bool = Field(False, description="g_proj: hidden -> one sigmoid gate per query head on the "
                                                    "attention output, no bias (Step-3.5 / Step-3.7).")
    mtp_layers: int = Field(0, ge=0, description="Multi-token-prediction layers the checkpoint stores after the "
                                                 "decoder (num_nextn_predict_layers): not counted in the weights "
                                                 "(the runtimes' plain model classes skip them).")
    mtp_draft: MtpDraft | None = Field(
        None, description="MTP layer(s) vLLM can load as a speculative draft (--speculative-config method mtp); "
                          "None: none, or a family whose draft is not modelled.")
    per_layer_input: int = Field(0, ge=0, description="Per-layer embeddings (PLE) width per layer "
                                                      "(Gemma 4 hidden_size_per_layer_input); 0: none.")
    per_layer_vocab: int | None = Field(None, ge=1, description="Rows of the per-layer embedding table "
                                                               "(vocab_size_per_layer_input).")
    sink_layer_type: Literal["full", "sliding", "chunked"] | None = Field(
        None, description="attention_sinks only on layers of this type (MiMo-V2-Flash: sliding); None: every layer.")

    compressed_attention: CompressedAttention | None = Field(
        None, description="DeepSeek-V4 attention on every layer (sliding, compressed_sparse, heavily_compressed).")
    hyper_connections: int = Field(0, ge=0, description="hc_mult: residual streams of manifold-constrained "
                                                        "hyper-connections (DeepSeek-V4); 0: a plain residual.")
    qk_norm_full: bool = Field(
        False, description="q_norm/k_norm span all heads (heads x head_dim and kv_heads x head_dim wide: OLMo 3, "
                           "MiniMax-M2) instead of one head_dim.")
    generic: str | None = Field(
        None, description="Set when no adapter checked this architecture: what the generic reader assumed.")

    @model_serializer(mode="wrap")
    def _serialize(self, handler):
        return _drop_defaults(handler(self), self, CACHE_MODEL_FIELDS)

    @model_validator(mode="after")
    def _consistent(self) -> 'LanguageModel':
        if self.heads % self.kv_heads:
            raise ValueError("heads must be a multiple of kv_heads")
        if self.sliding_window_layers > self.layers:
            raise ValueError("sliding_window_layers exceeds layers")
        if self.sliding_window_layers and self.sliding_window is None:
            raise ValueError("sliding_window_layers needs sliding_window")
        if self.layer_types is not None:
            if len(self.layer_types) != self.layers:
                raise ValueError("layer_types needs one entry per layer")
            if self.layer_types.count("sliding") != self.sliding_window_layers:
                raise ValueError("layer_types' sliding count must equal sliding_window_layers")
            needs = {"chunked": ("attention_chunk_size", self.attention_chunk_size),
                     "linear_attention": ("linear_attention", self.linear_attention),
                     "mamba2": ("mamba", self.mamba), "short_conv": ("short_conv", self.short_conv),
                     "compressed_sparse": ("compressed_attention", self.compressed_attention),
                     "heavily_compressed": ("compressed_attention", self.compressed_attention)}
            for kind, (name, value) in needs.items():
                if kind in self.layer_types and value is None:
                    raise ValueError(f"layer_types names {kind} layers: {name} is required")
        if self.layer_ffn is not None and len(self.layer_ffn) != self.layers:
            raise ValueError("layer_ffn needs one entry per layer")
        if self.kv_shared_layers >= self.layers:
            raise ValueError("kv_shared_layers must leave at least one layer with its own cache")
        return self


class TensorShape(BaseModel):
    """One explicitly listed tensor (projector parts whose layout is not a repeated block)."""

    model_config = _STRICT

    name: str
    shape: tuple[int, ...] = Field(min_length=1)
    kind: Literal["linear", "conv", "norm", "bias", "embedding"]


class VisionTower(Sourced):
    """ViT encoder plus projector into the language model, and what one image costs in positions."""

    layers: int = Field(ge=1)
    hidden: int = Field(ge=1)
    heads: int = Field(ge=1)
    mlp: int = Field(ge=1, description="MLP intermediate size inside a ViT block.")
    mlp_kind: Literal["swiglu", "gelu"]
    qkv_bias: bool
    linear_bias: bool = Field(description="Attention output and MLP linears carry biases.")
    norm: Literal["rmsnorm", "layernorm"]
    image_size: int = Field(ge=1, description="Side of the (resized) input image in pixels.")
    patch_size: int = Field(ge=1)
    in_channels: int = Field(3, ge=1)
    temporal_patch: int = Field(1, ge=1, description="Frames folded into one patch (Conv3d).")
    patch_bias: bool = True
    cls_token: bool
    position_embeddings: int = Field(ge=0, description="Rows of the learned position table.")
    extra_norms: int = Field(0, ge=0, description="Norms of width `hidden` outside the blocks.")
    projector: list[TensorShape] = Field(description="Projector tensors into the language model.")
    embeddings_per_image: int = Field(ge=1, description="Embeddings one image contributes to the prompt.")
    prompt_tokens_per_image: int = Field(
        ge=0, description="Placeholder tokens in the text that the image embeddings replace."
    )
    max_images: int | None = Field(None, ge=1, description="Images one prompt may carry (None: context-bound).")
    # --- dynamic resolution (Qwen-VL, Pixtral): additive, defaults keep fixed-size towers unchanged ---
    resize: Literal["qwen2_vl", "glm4v", "pixtral", "kimi_k25", "step3p7"] | None = Field(
        None, description="The processor's resize rule when image tokens depend on the image size: qwen2_vl "
                          "(smart_resize to multiples of patch x merge within min/max pixels), glm4v (its "
                          "smart_resize over temporal_patch_size frames), pixtral (longest edge, then "
                          "[IMG_BREAK] per row and [IMG_END]), kimi_k25 (navit_resize to a patch budget), step3p7 "
                          "(a global image_size view plus crop_size local crops, each framed by start/end tokens).")
    merge_size: int = Field(1, ge=1, description="Patches merged per side into one embedding (spatial_merge_size).")
    min_pixels: int | None = Field(None, ge=1, description="qwen2_vl, glm4v: the processor's size.shortest_edge.")
    max_pixels: int | None = Field(None, ge=1, description="qwen2_vl, glm4v: the processor's size.longest_edge.")
    longest_edge: int | None = Field(None, ge=1, description="pixtral: the processor's size.longest_edge; kimi_k25: "
                                     "size.max_height x patch_size (pixels per side); step3p7: max_image_size.")
    max_patches: int | None = Field(None, ge=1, description="kimi_k25: the processor's max_patches per image.")
    default_image: tuple[int, int] | None = Field(
        None, description="(width, height) used when a request names no image_size.")
    image: tuple[int, int] | None = Field(
        None, description="(width, height) the embeddings_per_image and patches_per_image were computed for.")
    patches_per_image: int | None = Field(
        None, ge=1, description="ViT patches of one image at `image` (dynamic resolution).")
    # --- additive: defaults keep older spec files byte-identical ---
    block_norms: int = Field(2, ge=2, description="Norms of width `hidden` in one block (Gemma 4 vision: 4).")
    qk_norm: bool = Field(False, description="Per-head q_norm and k_norm (head_dim wide) in every block.")
    qkv_modules: Literal[1, 3] = Field(1, description="Modules the block's q/k/v projection is in the transformers "
                                       "class: 1 (one fused qkv nn.Linear) or 3 (q_proj, k_proj, v_proj: SigLIP).")
    patch_linear: bool = Field(False, description="The patch embedding is an nn.Linear over flattened patches in the "
                               "transformers class (SigLIP2, Llama 4), not a Conv: bitsandbytes quantizes it.")
    layer_scales: bool = Field(False, description="Two learned per-channel scales [hidden] per block (layer "
                                                  "scale: Step-3.7's lambda_1 / lambda_2).")
    crop_size: int | None = Field(None, ge=1, description="step3p7: side of one local crop in pixels (the image "
                                                          "processor's patch_size).")

    @model_serializer(mode="wrap")
    def _serialize(self, handler):
        return _drop_defaults(handler(self), self, ("block_norms", "qk_norm", "layer_scales", "crop_size",
                                                           "patch_linear"))

    @property
    def encoder_tokens(self) -> int:
        """Tokens the ViT attends over for one image (patches plus CLS)."""
        if self.patches_per_image is not None:
            return self.patches_per_image + int(self.cls_token)
        side = self.image_size // self.patch_size
        return side * side + int(self.cls_token)

    @property
    def positions_per_image(self) -> int:
        return self.embeddings_per_image - self.prompt_tokens_per_image


class CardField(BaseModel):
    model_config = _STRICT

    label: str
    value: str


class CardRanking(BaseModel):
    """A card's ranking block as published (heading, note and ranks word for word)."""

    model_config = _STRICT

    heading: str
    note: str
    ranks: list[CardField]


class Card(BaseModel):
    """The model card exactly as published (what people read), never used for arithmetic."""

    model_config = _STRICT

    source: str = Field(description="Where this card text comes from.")
    fields: list[CardField]
    description: list[str] = Field(description="Our own summary paragraphs.")
    family_heading: str = Field("", description="The card's own heading over its sibling models, word for word; "
                                                "empty: the page writes one.")
    ranking: CardRanking | None = Field(None, description="The card's ranking block, when it has one.")


class Discrepancy(BaseModel):
    """One place where the card and the released model disagree."""

    model_config = _STRICT

    field: str
    card: str
    released: str
    source: str
    matters: str = Field("", description="Why it matters for memory, if it does.")
    warn_when: Literal["never", "always", "context_exceeds", "images"] = Field(
        "never", description="When an estimate should repeat this as a warning.")


class ModelSpec(BaseModel):
    """One catalog entry: `model_specs/models/<slug>.json`."""

    model_config = _STRICT

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    family: str
    hf_repo: str
    vendor: str = Field("", description="Who released the model (Meta, Alibaba Qwen, Zhipu AI, ...).")
    released: str = Field(description="Release date, ISO format.")
    license: str
    modality: Literal["text", "multimodal"]
    language_model: LanguageModel
    vision: VisionTower | None = None
    card: Card
    discrepancies: list[Discrepancy] = Field([])

    @model_validator(mode="after")
    def _modality(self) -> 'ModelSpec':
        if (self.modality == "multimodal") != (self.vision is not None):
            raise ValueError("a multimodal model needs a vision tower, and only it")
        return self

    @property
    def max_images(self) -> int:
        if self.vision is None:
            return 0
        if self.vision.max_images is not None:
            return self.vision.max_images
        return max(0, (self.language_model.max_context - 1) // self.vision.positions_per_image)

    @property
    def default_format(self) -> str:
        """Format slug of the released checkpoint: its quantization_config's format, else its dtype."""
        return self.language_model.stored_format or self.dtype_slug

    @property
    def dtype_slug(self) -> str:
        return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}[self.language_model.dtype]
