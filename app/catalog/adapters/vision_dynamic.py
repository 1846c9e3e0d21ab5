"""Vision-language wrappers whose image tokens depend on the image size: Qwen2.5-VL, Qwen3-VL (dense and
MoE), Mistral 3 (Mistral Small 3.x, Magistral, Devstral Small, Ministral 3) with the Pixtral tower.

Tower tensors as transformers 5.25 builds them (models/<type>/modeling_<type>.py); the processor values
(min/max pixels, longest edge) are the released preprocessor_config.json values named per family, since a
config.json does not carry them. Token counts per image: app/estimator/images.py.
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters import dense, moe
from app.catalog.adapters.common import Adapted
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import TensorShape

# The image size an answer assumes when the request names none (stated in the answer): a 4:3 photo.
DEFAULT_IMAGE = (1024, 768)

# Released preprocessor_config.json values (size.shortest_edge / size.longest_edge = min/max pixels):
# Qwen/Qwen2.5-VL-*-Instruct: min_pixels 3136, max_pixels 12845056, patch_size 14, merge_size 2;
# Qwen/Qwen3-VL-*: size {"shortest_edge": 65536, "longest_edge": 16777216}, patch_size 16, merge_size 2
# (copies quoted in public repositories, e.g. microsoft/Fara-7B's agent MLM_PROCESSOR_IM_CFG for Qwen2.5-VL).
QWEN_PIXELS = {"qwen2_5_vl": (3136, 12_845_056), "qwen3_vl": (65_536, 16_777_216), "qwen3_vl_moe": (65_536, 16_777_216)}


def _shapes(rows: list[tuple[str, tuple[int, ...], str]]) -> list[TensorShape]:
    return [TensorShape(name=n, shape=s, kind=k) for n, s, k in rows]


def _text(c: Cfg) -> Cfg:
    """Qwen2.5-VL configs written by transformers 4.x keep the text keys at the top; 5.x nests text_config."""
    return c.sub("text_config") if isinstance(c.data.get("text_config"), dict) else c


def _qwen_tower(v: Cfg, model_type: str, text_hidden: int) -> dict[str, Any]:
    hidden = v.int("hidden", "hidden_size")
    merge = v.int("merge_size", "spatial_merge_size", default=2, high=16)
    out = v.int("projector", "out_hidden_size", default=text_hidden)
    min_px, max_px = QWEN_PIXELS[model_type]
    v.note("resize", f"transformers Qwen2VLImageProcessor smart_resize; min/max pixels {min_px}/{max_px} from the "
                     f"released preprocessor_config.json ({model_type})")
    return dict(hidden=hidden, layers=v.int("layers", "depth", high=LIMITS["layers"]),
                heads=v.int("heads", "num_heads", high=hidden), qkv_bias=True, linear_bias=True,
                patch_size=v.int("patch_size", "patch_size", high=1024),
                in_channels=v.int("in_channels", "in_channels", "in_chans", default=3, high=16),
                temporal_patch=v.int("temporal_patch", "temporal_patch_size", default=2, high=16),
                cls_token=False, merge_size=merge, resize="qwen2_vl", min_pixels=min_px, max_pixels=max_px,
                default_image=DEFAULT_IMAGE, prompt_tokens_per_image=0, _out=out)


def _finish_tower(v: Cfg, vs: dict[str, Any], projector: list[TensorShape]) -> dict[str, Any]:
    vs.pop("_out", None)
    side = 448 // vs["patch_size"] or 1  # image_size only names a nominal square for fixed-size code paths
    vs.update(projector=projector, image_size=side * vs["patch_size"], embeddings_per_image=1)
    v.note("embeddings_per_image", "from the request's image_size (processor rules, app/estimator/images.py)")
    return vs


def qwen2_5_vl(c: Cfg) -> Adapted:
    """Qwen2_5_VLForConditionalGeneration: Qwen2 decoder + ViT with RMSNorm, biased qkv/proj and a biased
    SwiGLU MLP, a bias-free Conv3d patch embedding, no position table (2D rotary), and a merger
    (ln_q RMSNorm, Linear(h x m^2, h x m^2), GELU, Linear(h x m^2, out_hidden_size)). Window attention
    (window_size, fullatt_block_indexes) changes activations only."""
    text = _text(c)
    out = dense.qwen2(text)
    if text is not c:
        out.lm["tied_embeddings"] = c.bool("tied_embeddings", "tie_word_embeddings", out.lm["tied_embeddings"])
    v = c.sub("vision_config")
    vs = _qwen_tower(v, "qwen2_5_vl", out.lm["hidden"])
    h, m2, o = vs["hidden"], vs["merge_size"] ** 2, vs["_out"]
    vs.update(mlp=v.int("mlp", "intermediate_size"), mlp_kind="swiglu", norm="rmsnorm", patch_bias=False,
              position_embeddings=0, extra_norms=0)
    proj = _shapes([("merger.ln_q.weight", (h,), "norm"), ("merger.mlp.0.weight", (h * m2, h * m2), "linear"),
                    ("merger.mlp.0.bias", (h * m2,), "bias"), ("merger.mlp.2.weight", (o, h * m2), "linear"),
                    ("merger.mlp.2.bias", (o,), "bias")])
    v.note("projector", "transformers Qwen2_5_VLPatchMerger (ln_q, mlp.0, mlp.2)")
    return Adapted(out.lm, out.lm_sources, _finish_tower(v, vs, proj), v.sources)


def _qwen3_tower(c: Cfg, model_type: str, text_hidden: int) -> tuple[dict[str, Any], Cfg]:
    v = c.sub("vision_config")
    vs = _qwen_tower(v, model_type, text_hidden)
    h, m2, o = vs["hidden"], vs["merge_size"] ** 2, vs["_out"]
    deepstack = v.raw("deepstack_visual_indexes", [])
    if not isinstance(deepstack, list) or len(deepstack) > vs["layers"]:
        raise InvalidConfigValue(v.prefix + "deepstack_visual_indexes", deepstack, "a list of block indexes")
    vs.update(mlp=v.int("mlp", "intermediate_size"), mlp_kind="gelu", norm="layernorm", patch_bias=True,
              position_embeddings=v.int("position_embeddings", "num_position_embeddings", high=1 << 20),
              extra_norms=0)

    def merger(prefix: str, norm: int) -> list[tuple[str, tuple[int, ...], str]]:
        return [(f"{prefix}.norm.weight", (norm,), "norm"), (f"{prefix}.norm.bias", (norm,), "norm"),
                (f"{prefix}.linear_fc1.weight", (h * m2, h * m2), "linear"),
                (f"{prefix}.linear_fc1.bias", (h * m2,), "bias"),
                (f"{prefix}.linear_fc2.weight", (o, h * m2), "linear"), (f"{prefix}.linear_fc2.bias", (o,), "bias")]

    rows = merger("merger", h)
    for k in range(len(deepstack)):
        rows += merger(f"deepstack_merger_list.{k}", h * m2)  # use_postshuffle_norm: LayerNorm(h x m^2)
    v.note("projector", "transformers Qwen3VLVisionPatchMerger (merger) + one per deepstack_visual_indexes entry")
    return _finish_tower(v, vs, _shapes(rows)), v


def _qwen3_vl(c: Cfg, decoder, model_type: str) -> Adapted:
    text = c.sub("text_config")
    out = decoder(text)
    out.lm["tied_embeddings"] = c.bool("tied_embeddings", "tie_word_embeddings", out.lm["tied_embeddings"])
    vs, v = _qwen3_tower(c, model_type, out.lm["hidden"])
    return Adapted(out.lm, out.lm_sources, vs, v.sources)


def qwen3_vl(c: Cfg) -> Adapted:
    """Qwen3VLForConditionalGeneration: Qwen3 decoder (q/k norms) + ViT with LayerNorm, biased qkv/proj and
    GELU MLP, a biased Conv3d patch embedding, a learned num_position_embeddings table, the merger and the
    deepstack mergers."""
    return _qwen3_vl(c, dense.qwen3, "qwen3_vl")


def qwen3_vl_moe(c: Cfg) -> Adapted:
    """Qwen3VLMoeForConditionalGeneration: Qwen3-MoE decoder (num_experts routed, no shared expert) + the
    Qwen3-VL tower."""
    return _qwen3_vl(c, moe.qwen3_moe, "qwen3_vl_moe")


def mistral3(c: Cfg) -> Adapted:
    """Mistral3ForConditionalGeneration: Mistral / Ministral 3 decoder + Pixtral ViT + patch-merging projector.

    Pixtral (transformers PixtralVisionModel): bias-free Conv2d patch_conv, ln_pre RMSNorm, blocks with
    RMSNorm, bias-free q/k/v/o and SwiGLU; 2D rotary, no position table. Mistral3MultiModalProjector: norm
    (RMSNorm, vision width), patch_merger.merging_layer (h x m^2 -> h, no bias), linear_1 and linear_2
    (biased by multimodal_projector_bias).

    Tied embeddings: the top-level tie_word_embeddings, else text_config's, else false (MistralConfig's
    default, which transformers 4.x applied; transformers 5's Mistral3Config defaults to true, and the
    released 24B checkpoints carry an lm_head).
    """
    text = c.sub("text_config")
    out = dense.mistral(text)
    if c.has("tie_word_embeddings"):
        out.lm["tied_embeddings"] = c.bool("tied_embeddings", "tie_word_embeddings", False)
    v = c.sub("vision_config")
    hidden = v.int("hidden", "hidden_size", default=1024)
    heads = v.int("heads", "num_attention_heads", default=16, high=hidden)
    head_dim = v.int("heads", "head_dim", default=hidden // heads)  # Pixtral q/k/v: heads x head_dim wide
    if heads * head_dim != hidden:
        raise InvalidConfigValue(v.prefix + "head_dim", head_dim,
                                 f"hidden_size / num_attention_heads = {hidden // heads}")
    merge = c.int("merge_size", "spatial_merge_size", default=2, high=16)
    image = v.int("image_size", "image_size", default=1024, high=1 << 15)
    th = out.lm["hidden"]
    bias = c.bool("projector", "multimodal_projector_bias", True)
    rows = [("norm.weight", (hidden,), "norm"),
            ("patch_merger.merging_layer.weight", (hidden, hidden * merge * merge), "linear"),
            ("linear_1.weight", (th, hidden), "linear"), ("linear_2.weight", (th, th), "linear")]
    if bias:
        rows += [("linear_1.bias", (th,), "bias"), ("linear_2.bias", (th,), "bias")]
    patch = v.int("patch_size", "patch_size", default=16, high=1024)
    vs: dict[str, Any] = dict(
        layers=v.int("layers", "num_hidden_layers", default=24, high=LIMITS["layers"]), hidden=hidden, heads=heads,
        mlp=v.int("mlp", "intermediate_size", default=4096), mlp_kind="swiglu", qkv_bias=False, linear_bias=False,
        norm="rmsnorm", patch_size=patch, in_channels=v.int("in_channels", "num_channels", default=3, high=16),
        temporal_patch=1, patch_bias=False, cls_token=False, position_embeddings=0, extra_norms=1,
        merge_size=merge, resize="pixtral", longest_edge=image, default_image=DEFAULT_IMAGE,
        prompt_tokens_per_image=0, projector=_shapes(rows), image_size=(image // patch) * patch,
        embeddings_per_image=1, qkv_modules=3,
    )
    v.note("qkv_modules", "transformers PixtralAttention: q_proj, k_proj, v_proj")
    v.note("projector", "transformers Mistral3MultiModalProjector (norm, patch_merger, linear_1, linear_2)")
    v.note("resize", "transformers PixtralImageProcessor longest_edge = vision_config.image_size (the released "
                     "processor's size.longest_edge), patch_size x spatial_merge_size rounding")
    v.note("embeddings_per_image", "from the request's image_size: [IMG] per merged patch + one [IMG_BREAK] / "
                                   "[IMG_END] per row (transformers PixtralProcessor)")
    return Adapted(out.lm, out.lm_sources, vs, v.sources)


def ministral3(c: Cfg) -> Adapted:
    """model_type ministral3: the multimodal Ministral 3 release (vision_config present) or its text model
    (Ministral3ForCausalLM: Mistral's layout)."""
    if isinstance(c.data.get("vision_config"), dict):
        return mistral3(c)
    return dense.mistral(c)


# transformers 5.25 Kimi_K25ImageProcessor class defaults (models/kimi_k25/image_processing_kimi_k25.py):
# size {"max_height": 512, "max_width": 512} patches per side, max_patches 16384, patch_size 14, merge_size 2
KIMI_PROCESSOR = {"max_patches": 16384, "max_side_patches": 512}


def kimi_k25(c: Cfg) -> Adapted:
    """Kimi K2.5 (KimiK25ForConditionalGeneration; transformers 5.25 Kimi_K25ForConditionalGeneration): the
    Kimi K2 text model (text_config, DeepseekV3 layout, read as deepseek_v3) + MoonViT + a patch-merging projector.

    MoonViT (Kimi_K25VisionModel): Conv2d patch embedding with bias, a learned pos_emb_height x pos_emb_width
    position grid (the temporal table is a buffer), LayerNorm blocks with biased q/k/v/proj and a GELU MLP,
    final_layernorm. Kimi_K25MultimodalProjection: pre_norm LayerNorm(projection_hidden_size), in_proj
    (h x m^2 square, biased), out_proj (-> text hidden, biased). The released config spells the tower's keys
    vt_* (remote code configuration_kimi_k25.py); transformers' names are read when those are absent.
    """
    text = c.sub("text_config")
    out = moe.kimi_k2(text)
    out.lm["tied_embeddings"] = c.bool("tied_embeddings", "tie_word_embeddings", out.lm["tied_embeddings"])
    v = c.sub("vision_config")
    hidden = v.int("hidden", "vt_hidden_size", "hidden_size", default=1152)
    kernel = v.raw("merge_kernel_size", [2, 2])
    square = isinstance(kernel, list | tuple) and len(kernel) == 2 and kernel[0] == kernel[1]
    if not square or kernel[0] not in range(1, 17):
        raise InvalidConfigValue(v.prefix + "merge_kernel_size", kernel, "[m, m] with m from 1 to 16")
    merge = int(kernel[0])
    patch = v.int("patch_size", "patch_size", default=14, high=1024)
    grid = v.int("position_embeddings", "init_pos_emb_height", "pos_emb_height", default=64, high=4096) * v.int(
        "position_embeddings", "init_pos_emb_width", "pos_emb_width", default=64, high=4096)
    proj_norm = c.int("projector", "projection_hidden_size", default=hidden)
    wide = hidden * merge * merge
    th = out.lm["hidden"]
    rows = [("pre_norm.weight", (proj_norm,), "norm"), ("pre_norm.bias", (proj_norm,), "norm"),
            ("in_proj.weight", (wide, wide), "linear"), ("in_proj.bias", (wide,), "bias"),
            ("out_proj.weight", (th, wide), "linear"), ("out_proj.bias", (th,), "bias")]
    vs: dict[str, Any] = dict(
        layers=v.int("layers", "vt_num_hidden_layers", "num_hidden_layers", default=27, high=LIMITS["layers"]),
        hidden=hidden, heads=v.int("heads", "vt_num_attention_heads", "num_attention_heads", default=16, high=hidden),
        mlp=v.int("mlp", "vt_intermediate_size", "intermediate_size", default=4304), mlp_kind="gelu",
        qkv_bias=True, linear_bias=True, norm="layernorm", patch_size=patch, in_channels=3, temporal_patch=1,
        patch_bias=True, cls_token=False, position_embeddings=grid, extra_norms=1, merge_size=merge,
        resize="kimi_k25", max_patches=KIMI_PROCESSOR["max_patches"],
        longest_edge=KIMI_PROCESSOR["max_side_patches"] * patch, default_image=DEFAULT_IMAGE,
        prompt_tokens_per_image=0, projector=_shapes(rows), image_size=(448 // patch) * patch, embeddings_per_image=1,
    )
    v.note("projector", "transformers Kimi_K25MultimodalProjection (pre_norm, in_proj, out_proj)")
    v.note("resize", "transformers Kimi_K25ImageProcessor navit_resize with its class defaults (max_patches 16384, "
                     "512 patches per side); the released processor's own limits were not available")
    v.note("embeddings_per_image", "from the request's image_size: padded patches / merge^2")
    return Adapted(out.lm, out.lm_sources, vs, v.sources)
