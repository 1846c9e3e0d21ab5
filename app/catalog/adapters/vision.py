"""Adapters for configs with a vision tower: Gemma 3 (SigLIP) and GLM-4.1V (transformers glm4v)."""

from __future__ import annotations

from typing import Any

from app.catalog.adapters import dense
from app.catalog.adapters.common import Adapted, decoder, dtype, no_window, window
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import TensorShape


def _side(v: Cfg, image_size: int, patch: int) -> int:
    side = image_size // patch
    if side < 1:
        raise InvalidConfigValue(v.prefix + "patch_size", patch, f"at most image_size={image_size}")
    return side


def _siglip_head(h: int, mlp: int) -> list[TensorShape]:
    """SiglipMultiheadAttentionPoolingHead: probe, nn.MultiheadAttention, LayerNorm, MLP (all biased)."""
    shapes = [("head.probe", (1, 1, h), "embedding"), ("head.attn_in.weight", (3 * h, h), "linear"),
              ("head.attn_in.bias", (3 * h,), "bias"), ("head.attn_out.weight", (h, h), "linear"),
              ("head.attn_out.bias", (h,), "bias"), ("head.norm.weight", (h,), "norm"),
              ("head.norm.bias", (h,), "norm"),
              ("head.fc1.weight", (mlp, h), "linear"), ("head.fc1.bias", (mlp,), "bias"),
              ("head.fc2.weight", (h, mlp), "linear"), ("head.fc2.bias", (h,), "bias")]
    return [TensorShape(name=n, shape=s, kind=k) for n, s, k in shapes]


def gemma3(c: Cfg) -> Adapted:
    """Gemma3ForConditionalGeneration: Gemma 3 text model + SigLIP encoder + a pooled linear projector.

    SigLIP (transformers SiglipVisionTransformer): conv patch embedding with bias, learned positions,
    LayerNorm blocks with biased q/k/v/out and fc1/fc2 (GELU), a post LayerNorm. The projector
    (Gemma3MultiModalProjector) is mm_input_projection_weight [vision hidden, text hidden] after
    mm_soft_emb_norm; average pooling leaves mm_tokens_per_image embeddings per image.
    """
    text = c.sub("text_config")
    out = dense.gemma3_text(text, root=c)
    v = c.sub("vision_config")
    vs: dict[str, Any] = {}
    hidden = v.int("hidden", "hidden_size", default=768)
    image = v.int("image_size", "image_size", default=224)
    patch = v.int("patch_size", "patch_size", default=16)
    side = _side(v, image, patch)
    tokens = c.int("embeddings_per_image", "mm_tokens_per_image", default=256)
    mlp = v.int("mlp", "intermediate_size", default=3072)
    projector = [TensorShape(name="input_projection.weight", shape=(hidden, out.lm["hidden"]), kind="linear"),
                 TensorShape(name="soft_emb_norm.weight", shape=(hidden,), kind="norm")]
    if v.bool("projector", "vision_use_head", True):  # SiglipVisionConfig default; Gemma 3 releases: false
        projector = _siglip_head(hidden, mlp) + projector
    vs.update(
        layers=v.int("layers", "num_hidden_layers", default=12, high=LIMITS["layers"]),
        hidden=hidden, heads=v.int("heads", "num_attention_heads", default=12, high=hidden),
        mlp=mlp, mlp_kind="gelu", qkv_bias=True,
        linear_bias=True, norm="layernorm", image_size=image, patch_size=patch,
        in_channels=v.int("in_channels", "num_channels", default=3, high=16), temporal_patch=1, patch_bias=True,
        cls_token=False, position_embeddings=side * side, extra_norms=1,
        projector=projector, embeddings_per_image=tokens, prompt_tokens_per_image=0, qkv_modules=3,
    )
    v.note("position_embeddings", "(image_size / patch_size)^2 learned positions (SiglipVisionEmbeddings)")
    v.note("qkv_modules", "transformers SiglipAttention: q_proj, k_proj, v_proj")
    v.note("projector", "transformers Gemma3MultiModalProjector (mm_input_projection_weight, mm_soft_emb_norm)")
    v.note("embeddings_per_image", "config.json mm_tokens_per_image")
    return Adapted(out.lm, out.lm_sources, vs, v.sources)


def glm4v(c: Cfg) -> Adapted:
    """Glm4vForConditionalGeneration (GLM-4.1V): GLM-4-0414's decoder + a 2x2-merging ViT.

    transformers models/glm4v: Conv3d patch embedding (temporal_patch_size), RMSNorm blocks whose MLP
    width is out_hidden_size, post-conv and post norms, a 2x2 conv downsample into the text width, and a
    merger (proj, LayerNorm, SwiGLU of intermediate_size). Image tokens follow the request's image_size
    through Glm4vImageProcessor's smart_resize (dynamic resolution).
    """
    text = c.sub("text_config")
    lm = decoder(text, tied_default=False)
    lm.update(qkv_bias=text.bool("qkv_bias", "attention_bias", True), fused_gate_up=True, norms_per_layer=4)
    window(text, lm, no_window(text, lm["layers"]))
    lm["dtype"] = dtype(text, c)
    v = c.sub("vision_config")
    hidden = v.int("hidden", "hidden_size", default=1536)
    out_hidden = v.int("mlp", "out_hidden_size", default=4096)
    merge_ffn = v.int("projector", "intermediate_size", default=13696)
    merge = v.int("projector", "spatial_merge_size", default=2, high=64)
    image = v.int("image_size", "image_size", default=336)
    patch = v.int("patch_size", "patch_size", default=14)
    side = _side(v, image, patch)
    proj = [("downsample.weight", (out_hidden, hidden, merge, merge), "conv"),
            ("downsample.bias", (out_hidden,), "bias"), ("merger.proj.weight", (out_hidden, out_hidden), "linear"),
            ("merger.post_projection_norm.weight", (out_hidden,), "norm"),
            ("merger.post_projection_norm.bias", (out_hidden,), "norm"),
            ("merger.gate_proj.weight", (merge_ffn, out_hidden), "linear"),
            ("merger.up_proj.weight", (merge_ffn, out_hidden), "linear"),
            ("merger.down_proj.weight", (out_hidden, merge_ffn), "linear")]
    vs: dict[str, Any] = dict(
        layers=v.int("layers", "depth", default=24, high=LIMITS["layers"]), hidden=hidden,
        heads=v.int("heads", "num_heads", default=12, high=hidden), mlp=out_hidden, mlp_kind="swiglu",
        qkv_bias=v.bool("qkv_bias", "attention_bias", False), linear_bias=False, norm="rmsnorm",
        image_size=image, patch_size=patch, in_channels=v.int("in_channels", "in_channels", default=3, high=16),
        temporal_patch=v.int("temporal_patch", "temporal_patch_size", default=2, high=16), patch_bias=True,
        cls_token=False, position_embeddings=side * side, extra_norms=2,
        projector=[TensorShape(name=n, shape=s, kind=k) for n, s, k in proj],
        embeddings_per_image=max(1, (side // merge) ** 2), prompt_tokens_per_image=1,
        # dynamic resolution: transformers Glm4vImageProcessor's own defaults (size.shortest_edge 112 x 112,
        # size.longest_edge 28 x 28 x 15000; models/glm4v/image_processing_glm4v.py, 5.25)
        resize="glm4v", merge_size=merge, min_pixels=112 * 112, max_pixels=28 * 28 * 15000,
        default_image=(1024, 768),
    )
    v.note("mlp", "config.json vision_config.out_hidden_size (Glm4vVisionMlp width)")
    v.note("embeddings_per_image", "from the request's image_size: Glm4vImageProcessor smart_resize, "
                                   "patches / spatial_merge_size^2 (app/estimator/images.py)")
    v.note("resize", "transformers Glm4vImageProcessor defaults (min 112x112, max 28x28x15000 pixels)")
    return Adapted(lm, text.sources, vs, v.sources)
