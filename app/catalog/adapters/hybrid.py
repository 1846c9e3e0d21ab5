"""Adapters for hybrid decoders whose layers keep recurrent state: Gated DeltaNet (Qwen3-Next, Qwen3.5,
Qwen3.6) and Mamba2 (Nemotron-H / Nemotron 3), and LFM2's short convolutions.

Per-layer kinds go to `layer_types` (linear_attention, mamba2, short_conv, none, full); each mixer's geometry
to its own section (LinearAttention, Mamba2, ShortConv), which app.estimator.cache turns into KV and state.
Both spellings of keys transformers 5 renamed read alike (num_experts / num_local_experts,
rope_theta / rope_parameters: rope values do not enter memory).
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, decoder, dtype, window
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import LinearAttention, Mamba2, MoE, MtpDraft, ShortConv, TensorShape


def _experts_key(c: Cfg, *keys: str) -> str:
    """The first of `keys` the config has (transformers 4 vs 5 spellings), else the first."""
    return next((k for k in keys if c.has(k)), keys[0])


def _state_dtype(c: Cfg, lm: dict[str, Any], key: str, class_default: str | None = None) -> None:
    value = c.data.get(key)
    if value is None:
        if class_default is not None:
            lm["state_dtype"] = class_default
            c.note("state_dtype", f"{key} absent: {class_default}, the transformers configuration class default")
        return
    if value not in ("float32", "bfloat16", "float16"):
        raise InvalidConfigValue(c.prefix + key, value, "float32, bfloat16 or float16")
    lm["state_dtype"] = value
    c.note("state_dtype", f"config.json {c.prefix}{key}")


# --- Gated DeltaNet hybrids ------------------------------------------------------------------------------
def _gdn_types(c: Cfg, layers: int) -> list[str]:
    """config layer_types (linear_attention / full_attention), else every full_attention_interval-th layer
    full (transformers Qwen3NextConfig / Qwen3_5TextConfig: (i + 1) % interval == 0)."""
    kinds = {"linear_attention": "linear_attention", "full_attention": "full"}
    raw = c.data.get("layer_types")
    if raw is not None:
        if not isinstance(raw, list) or len(raw) != layers or any(k not in kinds for k in raw):
            raise InvalidConfigValue(c.prefix + "layer_types", raw,
                                     f"{layers} entries of linear_attention / full_attention")
        c.note("layer_types", f"config.json {c.prefix}layer_types")
        return [kinds[k] for k in raw]
    n = c.int("layer_types", "full_attention_interval", default=4, high=LIMITS["layers"])
    c.note("layer_types", f"config.json {c.prefix}full_attention_interval (every {n}th layer full attention)")
    return ["full" if (i + 1) % n == 0 else "linear_attention" for i in range(layers)]


def _gdn_decoder(c: Cfg) -> dict[str, Any]:
    dense_mlp = c.has("intermediate_size")
    if not dense_mlp:  # Qwen3_5MoeTextConfig has no intermediate_size: every layer is MoE
        c.with_class_defaults(c.class_name or "Qwen3_5MoeTextConfig",
                              {**c.class_defaults, "intermediate_size": c.data.get("moe_intermediate_size", 512)})
    lm = decoder(c, tied_default=False)
    if not dense_mlp:
        c.note("ffn", "no dense MLP (every layer MoE): moe_intermediate_size stands in, unused")
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["qk_norm"] = True
    c.note("qk_norm", f"transformers {c.model_type} attention (q_norm, k_norm: RMSNorm(head_dim))")
    lm["attn_output_gate"] = True
    c.note("attn_output_gate", f"transformers {c.model_type} attention: q_proj is 2 x heads x head_dim "
                               "(query and output gate)")
    lm["linear_attention"] = LinearAttention(
        key_heads=c.int("linear_attention", "linear_num_key_heads", default=16),
        value_heads=c.int("linear_attention", "linear_num_value_heads", default=32),
        key_head_dim=c.int("linear_attention", "linear_key_head_dim", default=128),
        value_head_dim=c.int("linear_attention", "linear_value_head_dim", default=128),
        conv_kernel=c.int("linear_attention", "linear_conv_kernel_dim", default=4, high=64))
    c.note("linear_attention", f"config.json {c.prefix}linear_* keys")
    _state_dtype(c, lm, "mamba_ssm_dtype")
    window(c, lm, _gdn_types(c, lm["layers"]))
    return lm


def _gdn_moe(c: Cfg, lm: dict[str, Any]) -> None:
    step = c.data.get("decoder_sparse_step", 1)
    dense = c.data.get("mlp_only_layers") or []
    if step != 1 or dense:
        raise InvalidConfigValue(c.prefix + "mlp_only_layers", dense, "[] with decoder_sparse_step 1")
    shared = c.int("moe", "shared_expert_intermediate_size", default=0, low=0)
    lm["moe"] = MoE(experts=c.int("moe", _experts_key(c, "num_experts", "num_local_experts"), low=2,
                                  high=LIMITS["experts"]),
                    experts_per_token=c.int("moe", "num_experts_per_tok", high=LIMITS["experts"]),
                    expert_ffn=c.int("moe", "moe_intermediate_size"), shared_experts=int(shared > 0),
                    shared_expert_ffn=shared or None, shared_expert_gate=shared > 0)
    c.note("moe", "config.json num_experts, num_experts_per_tok, moe_intermediate_size, "
                  "shared_expert_intermediate_size (shared expert with a sigmoid gate)")


def qwen3_next(c: Cfg) -> Adapted:
    """Qwen3NextForCausalLM: 3 Gated DeltaNet layers to 1 gated full-attention layer, every layer MoE with a
    gated shared expert. The MTP layer is not part of the transformers class (its weights are dropped)."""
    lm = _gdn_decoder(c)
    _gdn_moe(c, lm)
    lm["dtype"] = dtype(c)
    # vllm/model_executor/models/qwen3_next_mtp.py: num_mtp_layers = getattr(config, "num_nextn_predict_layers", 1)
    n = c.int("mtp_draft", "num_nextn_predict_layers", default=1, low=0, high=LIMITS["layers"])
    if n:
        lm["mtp_draft"] = MtpDraft(layers=n, draft="qwen3_next_mtp")
        c.note("mtp_draft", "vLLM Qwen3NextMTP: num_nextn_predict_layers, absent: 1 (qwen3_next_mtp.py)")
    return Adapted(lm, c.sources)


def _vision(c: Cfg, text_hidden: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Qwen3_5VisionModel (Qwen3-VL's ViT without deepstack): Conv3d patch embedding with bias, a learned
    position table of num_position_embeddings, LayerNorm blocks with biased qkv/proj and a GELU MLP, and a
    merger (LayerNorm, fc1 on 2x2-merged patches, GELU, fc2 into the text width). Images are dynamic in size;
    the count here is one image at the position table's own size (sqrt(num_position_embeddings) patches a
    side), merged spatial_merge_size^2 to one embedding."""
    v = c.sub("vision_config")
    hidden = v.int("hidden", "hidden_size", default=1152)
    patch = v.int("patch_size", "patch_size", default=16)
    merge = v.int("projector", "spatial_merge_size", default=2, high=64)
    positions = v.int("position_embeddings", "num_position_embeddings", default=2304)
    side = int(positions ** 0.5)
    out = v.int("projector", "out_hidden_size", default=text_hidden)
    if v.data.get("deepstack_visual_indexes"):
        raise InvalidConfigValue(v.prefix + "deepstack_visual_indexes", v.data["deepstack_visual_indexes"],
                                 "[] (deepstack mergers are not modelled)")
    wide = hidden * merge * merge
    proj = [("merger.norm.weight", (hidden,), "norm"), ("merger.norm.bias", (hidden,), "norm"),
            ("merger.linear_fc1.weight", (wide, wide), "linear"), ("merger.linear_fc1.bias", (wide,), "bias"),
            ("merger.linear_fc2.weight", (out, wide), "linear"), ("merger.linear_fc2.bias", (out,), "bias")]
    vs: dict[str, Any] = dict(
        layers=v.int("layers", "depth", default=27, high=LIMITS["layers"]), hidden=hidden,
        heads=v.int("heads", "num_heads", default=16, high=hidden), mlp=v.int("mlp", "intermediate_size"),
        mlp_kind="gelu", qkv_bias=True, linear_bias=True, norm="layernorm", image_size=side * patch,
        patch_size=patch, in_channels=v.int("in_channels", "in_channels", default=3, high=16),
        temporal_patch=v.int("temporal_patch", "temporal_patch_size", default=2, high=16), patch_bias=True,
        cls_token=False, position_embeddings=positions, extra_norms=0,
        projector=[TensorShape(name=n, shape=s, kind=k) for n, s, k in proj],
        embeddings_per_image=max(1, (side // merge) ** 2), prompt_tokens_per_image=1,
    )
    v.note("image_size", "sqrt(num_position_embeddings) x patch_size: the position table's own image size "
                         "(Qwen3.5 takes images of any size; larger ones give more embeddings)")
    v.note("qkv_bias", "transformers Qwen3_5VisionAttention (qkv and proj with bias)")
    v.note("norm", "transformers Qwen3_5VisionBlock (LayerNorm norm1, norm2)")
    v.note("projector", "transformers Qwen3_5VisionPatchMerger (norm, linear_fc1, linear_fc2)")
    v.note("embeddings_per_image", "(image_size / patch_size / spatial_merge_size)^2")
    return vs, v.sources


def _qwen3_5(c: Cfg, moe: bool) -> Adapted:
    text = c.sub("text_config") if c.has("text_config") else c
    lm = _gdn_decoder(text)
    if moe:
        _gdn_moe(text, lm)
    lm["dtype"] = dtype(text, c if text is not c else None)
    # vllm/config/speculative.py: qwen3_5 / qwen3_5_moe -> qwen3_5_mtp, n_predict = mtp_num_hidden_layers
    if text.data.get(text.spelling("mtp_num_hidden_layers")):
        lm["mtp_draft"] = MtpDraft(layers=text.int("mtp_draft", "mtp_num_hidden_layers", high=LIMITS["layers"]),
                                   draft="qwen3_5_mtp")
    if text is c or not c.has("vision_config"):
        return Adapted(lm, text.sources)
    vs, sources = _vision(c, lm["hidden"])
    return Adapted(lm, text.sources, vs, sources)


def qwen3_5(c: Cfg) -> Adapted:
    """Qwen3_5ForConditionalGeneration (Qwen3.5 / Qwen3.6 dense): the Gated DeltaNet hybrid with a dense
    SwiGLU MLP, plus the ViT every release carries."""
    return _qwen3_5(c, moe=False)


def qwen3_5_moe(c: Cfg) -> Adapted:
    """Qwen3_5MoeForConditionalGeneration (Qwen3.5 / Qwen3.6 MoE): as qwen3_5 with Qwen3-Next's MoE."""
    return _qwen3_5(c, moe=True)


# --- Mamba2 hybrids ---------------------------------------------------------------------------------------
# transformers NemotronHConfig._pattern_to_list: M mamba, E moe, - mlp, * attention
NEMOTRON_BLOCKS = {"M": ("mamba2", "none"), "E": ("none", "moe"), "-": ("none", "dense"), "*": ("full", "none")}


def nemotron_h(c: Cfg) -> Adapted:
    """NemotronHForCausalLM: one mixer per block (hybrid_override_pattern or layers_block_type): Mamba2 (M),
    MoE (E), relu2 MLP (-) or attention (*), each behind one RMSNorm."""
    listed = c.data.get("layers_block_type") or c.data.get("layer_types")
    if c.data.get("num_hidden_layers") is None and isinstance(listed, list) and listed:
        # transformers 5 NemotronHConfig: num_hidden_layers is a property, len(layers_block_type); to_dict()
        # writes only the list (configuration_nemotron_h.py)
        c.data = {**c.data, "num_hidden_layers": len(listed)}
    lm = decoder(c, tied_default=False, head_dim_key="head_dim" if c.has("head_dim") else "attention_head_dim")
    layers = lm["layers"]
    pattern = c.data.get("hybrid_override_pattern")
    if pattern is None:
        # transformers 4 wrote mamba/attention; 5 writes linear_attention/full_attention (_list_to_pattern)
        names = {"mamba": "M", "moe": "E", "mlp": "-", "attention": "*", "linear_attention": "M",
                 "full_attention": "*"}
        raw = c.data.get("layers_block_type") or c.data.get("layer_types") or []
        pattern = "".join(names.get(x, "?") for x in raw)
        c.note("layer_types", f"config.json {c.prefix}layers_block_type")
    else:
        c.note("layer_types", f"config.json {c.prefix}hybrid_override_pattern (M mamba2, E moe, - mlp, * attention)")
    if not isinstance(pattern, str) or len(pattern) != layers or set(pattern) - set(NEMOTRON_BLOCKS):
        raise InvalidConfigValue(c.prefix + "hybrid_override_pattern", pattern,
                                 f"{layers} characters of M, E, - and *")
    types = [NEMOTRON_BLOCKS[ch][0] for ch in pattern]
    lm["layer_ffn"] = tuple(NEMOTRON_BLOCKS[ch][1] for ch in pattern)
    c.note("layer_ffn", "hybrid_override_pattern")
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["linear_bias"] = c.bool("linear_bias", "mlp_bias", False)
    lm["ffn_kind"] = "gelu"  # relu2: up and down only (transformers NemotronHMLP)
    c.note("ffn_kind", "transformers NemotronHMLP: up_proj, down_proj (relu2, not gated)")
    lm["norms_per_layer"] = 2  # one per block: attn_norm or ffn_norm (params: blocks without mixer/FFN)
    heads = c.int("mamba", "mamba_num_heads", default=128)
    lm["mamba"] = Mamba2(heads=heads, head_dim=c.int("mamba", "mamba_head_dim", default=64),
                         state_size=c.int("mamba", "ssm_state_size", default=128),
                         groups=c.int("mamba", "n_groups", default=8), conv_kernel=c.int("mamba", "conv_kernel",
                                                                                         default=4, high=64),
                         conv_bias=c.bool("mamba", "use_conv_bias", True), proj_bias=c.bool("mamba", "use_bias", False))
    c.note("mamba", f"config.json {c.prefix}mamba_num_heads, mamba_head_dim, ssm_state_size, n_groups, conv_kernel")
    _state_dtype(c, lm, "mamba_ssm_cache_dtype", "float32")  # NemotronHConfig.mamba_ssm_cache_dtype
    if "moe" in lm["layer_ffn"]:
        latent = c.int("moe", "moe_latent_size") if c.has("moe_latent_size") else None
        shared = c.int("moe", "moe_shared_expert_intermediate_size", default=0, low=0)
        lm["moe"] = MoE(experts=c.int("moe", _experts_key(c, "n_routed_experts", "num_local_experts"), low=2,
                                      high=LIMITS["experts"]),
                        experts_per_token=c.int("moe", "num_experts_per_tok", high=LIMITS["experts"]),
                        expert_ffn=c.int("moe", "moe_intermediate_size"),
                        shared_experts=c.int("moe", "n_shared_experts", default=1, low=0),
                        shared_expert_ffn=shared or None, gated=False, latent_size=latent)
        c.note("moe", "config.json n_routed_experts, num_experts_per_tok, moe_intermediate_size, "
                      "moe_shared_expert_intermediate_size, moe_latent_size (relu2 experts: up and down)")
    window(c, lm, types)
    lm["dtype"] = dtype(c)
    return Adapted(lm, c.sources)


# --- short-convolution hybrids ----------------------------------------------------------------------------
def _lfm2_ffn(c: Cfg) -> int:
    """Lfm2MLP: with block_auto_adjust_ff_dim, int(2 x ff / 3), x block_ffn_dim_multiplier, rounded up to
    block_multiple_of (transformers models/lfm2/modeling_lfm2.py)."""
    ff = c.int("ffn", "block_ff_dim" if c.has("block_ff_dim") else "intermediate_size")
    if c.bool("ffn", "block_auto_adjust_ff_dim", True):
        ff = int(2 * ff / 3)
        mult = c.data.get("block_ffn_dim_multiplier")
        if mult is not None:
            ff = int(mult * ff)
        m = c.int("ffn", "block_multiple_of", default=256)
        ff = m * ((ff + m - 1) // m)
        c.note("ffn", "block_ff_dim adjusted as transformers Lfm2MLP (2/3, multiplier, block_multiple_of)")
    return ff


def lfm2(c: Cfg) -> Adapted:
    """Lfm2ForCausalLM: short-convolution layers and GQA attention layers (q/k LayerNorm over head_dim),
    SwiGLU MLP, tied embeddings, a final norm."""
    lm = decoder(c, tied_default=True)
    lm["ffn"] = _lfm2_ffn(c)
    layers = lm["layers"]
    raw = c.data.get("layer_types")
    if raw is None and c.has("full_attn_idxs"):
        full = set(c.data["full_attn_idxs"])
        raw = ["full_attention" if i in full else "conv" for i in range(layers)]
        c.note("layer_types", f"config.json {c.prefix}full_attn_idxs")
    elif raw is not None:
        c.note("layer_types", f"config.json {c.prefix}layer_types")
    kinds = {"conv": "short_conv", "full_attention": "full"}
    if not isinstance(raw, list) or len(raw) != layers or any(k not in kinds for k in raw):
        raise InvalidConfigValue(c.prefix + "layer_types", raw, f"{layers} entries of conv / full_attention")
    lm["qk_norm"] = True
    c.note("qk_norm", "transformers Lfm2Attention (q_layernorm, k_layernorm: RMSNorm(head_dim))")
    lm["short_conv"] = ShortConv(conv_kernel=c.int("short_conv", "conv_L_cache", default=3, high=64),
                                 bias=c.bool("short_conv", "conv_bias", False))
    c.note("short_conv", f"config.json {c.prefix}conv_L_cache, conv_bias")
    window(c, lm, [kinds[k] for k in raw])
    lm["dtype"] = dtype(c)
    return Adapted(lm, c.sources)


def lfm2_vl(c: Cfg) -> Adapted:
    """Lfm2VlForConditionalGeneration: the LFM2 decoder (text_config), a SigLIP2 NaFlex encoder and a 2-layer
    projector on 2x2-downsampled patches (transformers models/lfm2_vl, models/siglip2).

    SigLIP2 (Siglip2VisionTransformer): a linear patch embedding with bias, num_patches learned positions
    (resized to the image's grid), LayerNorm blocks with biased q/k/v/out and a GELU fc1/fc2 MLP, a post
    LayerNorm; no pooling head when vision_use_head is false. Images are tiled (tile_size, up to max_tiles
    plus a thumbnail); the count here is one tile, whose embeddings are max_image_tokens.
    """
    text = c.sub("text_config")
    out = lfm2(text)
    out.lm["dtype"] = dtype(text, c)
    v = c.sub("vision_config")
    if v.data.get("vision_use_head"):
        raise InvalidConfigValue(v.prefix + "vision_use_head", True, "false (the pooling head is not modelled)")
    hidden = v.int("hidden", "hidden_size", default=768)
    patch = v.int("patch_size", "patch_size", default=16)
    factor = c.int("projector", "downsample_factor", default=2, high=64)
    wide = hidden * factor * factor
    mid = c.int("projector", "projector_hidden_size", default=2560)
    bias = c.bool("projector", "projector_bias", True)
    proj = [("linear_1.weight", (mid, wide), "linear"), ("linear_2.weight", (out.lm["hidden"], mid), "linear")]
    if bias:
        proj[1:1] = [("linear_1.bias", (mid,), "bias")]
        proj.append(("linear_2.bias", (out.lm["hidden"],), "bias"))
    if c.bool("projector", "projector_use_layernorm", True):
        proj[:0] = [("layer_norm.weight", (wide,), "norm"), ("layer_norm.bias", (wide,), "norm")]
    tile = c.int("image_size", "tile_size", default=512)
    vs: dict[str, Any] = dict(
        layers=v.int("layers", "num_hidden_layers", default=12, high=LIMITS["layers"]), hidden=hidden,
        heads=v.int("heads", "num_attention_heads", default=12, high=hidden), mlp=v.int("mlp", "intermediate_size"),
        mlp_kind="gelu", qkv_bias=True, linear_bias=True, norm="layernorm", image_size=tile, patch_size=patch,
        in_channels=v.int("in_channels", "num_channels", default=3, high=16), temporal_patch=1, patch_bias=True,
        cls_token=False, position_embeddings=v.int("position_embeddings", "num_patches", default=256),
        extra_norms=1, projector=[TensorShape(name=n, shape=s, kind=k) for n, s, k in proj],
        embeddings_per_image=c.int("embeddings_per_image", "max_image_tokens", default=256),
        prompt_tokens_per_image=1, qkv_modules=3, patch_linear=True,
    )
    v.note("qkv_modules", "transformers Siglip2Attention: q_proj, k_proj, v_proj")
    v.note("patch_linear", "transformers Siglip2VisionEmbeddings.patch_embedding: nn.Linear(channels x patch^2, "
                           "hidden)")
    v.note("image_size", "config.json tile_size: one tile (larger images are split into up to max_tiles tiles "
                         "plus a thumbnail, each adding embeddings)")
    v.note("qkv_bias", "transformers Siglip2Attention (q/k/v/out with bias)")
    v.note("extra_norms", "transformers Siglip2VisionTransformer post_layernorm")
    v.note("projector", "transformers Lfm2VlMultiModalProjector (linear_1, linear_2; layer_norm when "
                        "projector_use_layernorm)")
    v.note("embeddings_per_image", "config.json max_image_tokens (one tile)")
    return Adapted(out.lm, out.lm_sources, vs, v.sources)


# transformers GraniteMoeHybridConfig layer_types (and their legacy spellings, remap_legacy_layer_types)
GRANITE_LAYERS = {"mamba": "mamba2", "linear_attention": "mamba2", "attention": "full", "full_attention": "full"}


def granitemoehybrid(c: Cfg) -> Adapted:
    """GraniteMoeHybridForCausalLM (IBM Granite 4.0-H): Mamba2 or attention layers, each followed by routed
    experts (fused gate_up, when num_local_experts > 0) and an always-on shared SwiGLU MLP
    (shared_intermediate_size), two RMSNorms per layer (transformers models/granitemoehybrid)."""
    c.with_class_defaults("GraniteMoeHybridConfig", {"num_key_value_heads": c.data.get("num_attention_heads", 32)})
    lm = decoder(c, tied_default=False)
    layers = lm["layers"]
    raw = c.data.get("layer_types") or c.data.get("layers_block_type") or ["mamba"] * layers
    if not isinstance(raw, list) or len(raw) != layers or any(k not in GRANITE_LAYERS for k in raw):
        raise InvalidConfigValue(c.prefix + "layer_types", raw, f"{layers} entries of mamba / attention")
    c.note("layer_types", f"config.json {c.prefix}layer_types (GraniteMoeHybridConfig: all mamba when absent)")
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    heads = c.int("mamba", "mamba_n_heads", default=128)
    head_dim = c.int("mamba", "mamba_d_head", default=64)
    expand = c.data.get("mamba_expand", 2)
    if int(expand * lm["hidden"]) != heads * head_dim:
        raise InvalidConfigValue(c.prefix + "mamba_expand", expand,
                                 f"mamba_n_heads x mamba_d_head / hidden_size = {heads * head_dim / lm['hidden']}")
    lm["mamba"] = Mamba2(heads=heads, head_dim=head_dim, state_size=c.int("mamba", "mamba_d_state", default=256),
                         groups=c.int("mamba", "mamba_n_groups", default=1),
                         conv_kernel=c.int("mamba", "mamba_d_conv", default=4, high=64),
                         conv_bias=c.bool("mamba", "mamba_conv_bias", True),
                         proj_bias=c.bool("mamba", "mamba_proj_bias", False))
    c.note("mamba", f"config.json {c.prefix}mamba_* (GraniteMoeHybridConfig defaults where absent)")
    _state_dtype(c, lm, "mamba_ssm_cache_dtype")
    shared = c.int("ffn", "shared_intermediate_size", default=1024)
    experts = c.int("moe", _experts_key(c, "num_local_experts", "num_experts"), default=8, low=0,
                    high=LIMITS["experts"])
    lm["ffn"] = shared
    c.note("ffn", "config.json shared_intermediate_size (GraniteMoeHybridMLP: input_linear 2 x, output_linear)")
    if experts:
        lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "num_experts_per_tok", default=2,
                                                                 high=LIMITS["experts"]),
                        expert_ffn=c.int("moe", "intermediate_size"), shared_experts=1, shared_expert_ffn=shared)
        c.note("moe", "config.json num_local_experts, num_experts_per_tok, intermediate_size (per expert), "
                      "shared_intermediate_size (the shared MLP)")
    window(c, lm, [GRANITE_LAYERS[k] for k in raw])
    lm["dtype"] = dtype(c)
    return Adapted(lm, c.sources)
