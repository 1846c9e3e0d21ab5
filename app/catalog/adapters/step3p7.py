"""Step-3.7-Flash (transformers models/step3p7, 5.25): sliding and full attention layers with a per-head output
gate, DeepSeek-style routed experts behind three dense layers, and StepFun's own vision tower.

Step3p7TextConfig (model_type step3p5): every layer has num_key_value_heads x head_dim KV heads (the cache is the
same width everywhere: sliding layers keep sliding_window positions); sliding layers may run their own query
head count (num_sliding_attention_heads, or the remote-code `attention_other_setting`, applied through
per_layer_config). Step3p7Attention (LagunaAttention): q/k/v/o without bias, q_norm/k_norm of head_dim and
g_proj (hidden -> heads, no bias). Step3p7DecoderLayer: Step3p7MLP (intermediate_size) where mlp_layer_types
says dense, else Step3p7SparseMoeBlock (router gate [experts, hidden] with an e_score_correction_bias buffer,
gate_up_proj / down_proj experts, one shared expert of share_expert_dim). MTP layers
(num_nextn_predict_layers) are not built by Step3p7ForConditionalGeneration (ignored on load).

Step3p7VisionModel: bias-free patch Conv2d, a (image_size / patch_size)^2 position table, pre_layernorm, blocks
of LayerNorm + CLIP attention (biased q/k/v/out) + fc1/fc2 MLP (quick_gelu) with layer scales lambda_1 /
lambda_2, then two stride-2 3x3 convs (hidden -> 2 hidden -> 4 hidden); Step3p7Model.multi_modal_projector:
Linear(4 hidden, text hidden, bias=projector_bias).
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, decoder, dtype, window
from app.catalog.adapters.vision_dynamic import DEFAULT_IMAGE
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import KvGeometry, MoE, TensorShape

# transformers models/step3p7/configuration_step3p7.py Step3p7TextConfig defaults (5.25); num_hidden_layers is
# left out on purpose: a text config that names none is refused (422), not read as the default model
TEXT_DEFAULTS = {"vocab_size": 128_815, "hidden_size": 4096, "intermediate_size": 11_264, "num_attention_heads": 64,
                 "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 128_000,
                 "moe_intermediate_size": 1280, "n_routed_experts": 288, "num_experts_per_tok": 8,
                 "share_expert_dim": 1280}
# Step3p7VisionConfig defaults (same file); intermediate_size is int(hidden_size * mlp_ratio) there
VISION_DEFAULTS = {"hidden_size": 1536, "num_hidden_layers": 47, "num_attention_heads": 16, "image_size": 728,
                   "patch_size": 14, "num_channels": 3}
VISION_DEFAULTS |= {"width": 1536, "layers": 47, "heads": 16}  # the remote-code spellings it reads first
MLP_RATIO = 8960 / 1536  # Step3p7VisionConfig.mlp_ratio
# Step3p7ImageProcessor (models/step3p7/image_processing_step3p7.py, 5.25): size 728 x 728 (global view),
# patch_size 504 (local crop), max_image_size 3024, vision_patch_size 14, downsampler_stride 4
PROCESSOR = {"size": 728, "crop": 504, "max_image_size": 3024, "vision_patch_size": 14, "downsampler_stride": 4}
# Step3p7TextConfig.__post_init__: without mlp_layer_types / moe_layers_enum, layers 3.. are MoE
FIRST_MOE_LAYER = 3

_KINDS = {"full_attention": "full", "sliding_attention": "sliding"}


def _per_layer_list(c: Cfg, key: str, layers: int, mtp: int) -> list | None:
    """A per-layer list as Step3p7TextConfig keeps it: released configs pad it with one entry per MTP layer
    (num_nextn_predict_layers), which transformers splits off."""
    raw = c.data.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) not in {layers, layers + mtp}:
        raise InvalidConfigValue(c.prefix + key, raw, f"{layers} entries (or {layers + mtp} with the MTP layers)")
    return raw


def _split(c: Cfg, key: str, raw: list, layers: int) -> list:
    """The decoder's share of a per-layer list; the source says when MTP entries were split off."""
    c.note(_FIELD[key], f"config.json {c.prefix}{key}" + (" (its MTP entries split off, as transformers "
                                                          "Step3p7TextConfig does)" if len(raw) > layers else ""))
    return raw[:layers]


_FIELD = {"layer_types": "layer_types", "mlp_layer_types": "layer_ffn"}


def _layer_types(c: Cfg, layers: int, mtp: int) -> list[str]:
    raw = _per_layer_list(c, "layer_types", layers, mtp)
    if raw is None:
        c.note("layer_types", "transformers Step3p7TextConfig: full attention in every layer (no layer_types)")
        return ["full"] * layers
    if any(k not in _KINDS for k in raw):
        raise InvalidConfigValue(c.prefix + "layer_types", raw, "full_attention / sliding_attention entries")
    return [_KINDS[k] for k in _split(c, "layer_types", raw, layers)]


def _layer_ffn(c: Cfg, layers: int, mtp: int) -> tuple[str, ...]:
    """mlp_layer_types, else the remote-code moe_layers_enum, else layers 3.. MoE (Step3p7TextConfig)."""
    raw = _per_layer_list(c, "mlp_layer_types", layers, mtp)
    if raw is not None:
        if set(raw) - {"dense", "sparse"}:
            raise InvalidConfigValue(c.prefix + "mlp_layer_types", raw, "dense / sparse entries")
        return tuple("moe" if k == "sparse" else "dense" for k in _split(c, "mlp_layer_types", raw, layers))
    enum = c.data.get("moe_layers_enum")
    if enum is not None:
        items = enum.split(",") if isinstance(enum, str) else enum
        try:
            moe = {int(i) for i in items if str(i).strip()}
        except (TypeError, ValueError):
            raise InvalidConfigValue(c.prefix + "moe_layers_enum", enum, "comma-separated layer indices") from None
        c.note("layer_ffn", f"config.json {c.prefix}moe_layers_enum (transformers Step3p7TextConfig)")
    else:
        moe = set(range(FIRST_MOE_LAYER, layers))
        c.note("layer_ffn", "transformers Step3p7TextConfig: layers 0-2 dense, the rest MoE (no moe_layers_enum)")
        # first_k_dense_replace is not read by transformers or vLLM: accepted only when it says the same
        first = c.data.get("first_k_dense_replace")
        if first == FIRST_MOE_LAYER:
            c.note("layer_ffn", c.sources["layer_ffn"] + f"; config.json {c.prefix}first_k_dense_replace agrees")
        elif first is not None:
            raise InvalidConfigValue(c.prefix + "first_k_dense_replace", first,
                                     f"{FIRST_MOE_LAYER} (transformers and vLLM ignore it and build layers 3.. as MoE;"
                                     " name the MoE layers in mlp_layer_types or moe_layers_enum)")
    return tuple("moe" if i in moe else "dense" for i in range(layers))


def _sliding_heads(c: Cfg, lm: dict[str, Any]) -> int:
    """num_sliding_attention_heads, else attention_other_setting.num_attention_heads (remote-code configs),
    else num_attention_heads: Step3p7TextConfig.__post_init__'s per_layer_config for sliding layers."""
    if c.has("num_sliding_attention_heads"):
        return c.int("kv_geometry", "num_sliding_attention_heads", high=LIMITS["width"] // 8)
    other = c.data.get("attention_other_setting")
    if other:
        if not isinstance(other, dict):
            raise InvalidConfigValue(c.prefix + "attention_other_setting", other, "an object")
        # transformers and vLLM read only num_attention_heads from it; other KV geometry would be built wrong
        same = {"num_attention_groups": lm["kv_heads"], "num_key_value_heads": lm["kv_heads"],
                "head_dim": lm["head_dim"]}
        for key, value in same.items():
            if other.get(key) not in (None, value):
                raise InvalidConfigValue(f"{c.prefix}attention_other_setting.{key}", other[key],
                                         f"{value} (transformers and vLLM build every layer with it)")
        heads = other.get("num_attention_heads", lm["heads"])
        if isinstance(heads, bool) or not isinstance(heads, int) or not 1 <= heads <= LIMITS["width"] // 8:
            raise InvalidConfigValue(c.prefix + "attention_other_setting.num_attention_heads", heads, "an integer")
        c.note("kv_geometry", f"config.json {c.prefix}attention_other_setting.num_attention_heads")
        return heads
    return lm["heads"]


def _text(c: Cfg, root: Cfg) -> dict[str, Any]:
    c.with_class_defaults("Step3p7TextConfig", TEXT_DEFAULTS)
    lm = decoder(c, tied_default=False)
    layers = lm["layers"]
    mtp = c.int("mtp_layers", "num_nextn_predict_layers", default=0, low=0, high=LIMITS["layers"])
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["linear_bias"] = c.bool("linear_bias", "mlp_bias", False)
    lm["qk_norm"] = lm["attn_head_gate"] = True
    c.note("qk_norm", "transformers Step3p7Attention (q_norm, k_norm: RMSNorm(head_dim))")
    c.note("attn_head_gate", "transformers Step3p7Attention g_proj (gating=True: one gate per head, no bias)")
    types = _layer_types(c, layers, mtp)
    sliding_heads = _sliding_heads(c, lm)
    if sliding_heads % lm["kv_heads"]:
        raise InvalidConfigValue(c.prefix + "num_sliding_attention_heads", sliding_heads,
                                 f"a multiple of num_key_value_heads={lm['kv_heads']}")
    if sliding_heads != lm["heads"] and "sliding" in types:
        lm["kv_geometry"] = {"sliding": KvGeometry(kv_heads=lm["kv_heads"], head_dim=lm["head_dim"],
                                                   heads=sliding_heads)}
        c.note("kv_geometry", c.sources["kv_geometry"] + ": sliding layers' own query heads, the same KV heads "
                              "and head_dim (transformers Step3p7TextConfig per_layer_config)")
    lm["layer_ffn"] = _layer_ffn(c, layers, mtp)
    experts = c.int("moe", "n_routed_experts", "moe_num_experts", low=2, high=LIMITS["experts"])
    for key in ("num_local_experts", "num_experts"):  # the first: an attribute_map name; the second: not read
        if c.data.get(key) not in (None, experts):
            raise InvalidConfigValue(c.prefix + key, c.data[key], f"{experts} (the n_routed_experts transformers "
                                                                  "Step3p7TextConfig builds)")
    shared = c.int("moe", "n_shared_experts", default=1, low=1, high=1)  # Step3p7SparseMoeBlock: one shared expert
    lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "num_experts_per_tok", "moe_top_k", high=experts),
                    expert_ffn=c.int("moe", "moe_intermediate_size"), shared_experts=shared,
                    shared_expert_ffn=c.int("moe", "share_expert_dim"))
    c.note("moe", "config.json n_routed_experts (moe_num_experts / num_experts), num_experts_per_tok, "
                  "moe_intermediate_size, share_expert_dim (transformers Step3p7SparseMoeBlock: one shared expert; "
                  "the router's e_score_correction_bias is a buffer)")
    lm["mtp_layers"] = mtp
    if mtp:
        c.note("mtp_layers", f"config.json {c.prefix}num_nextn_predict_layers: stored after the decoder, not built "
                             "by transformers Step3p7ForConditionalGeneration nor loaded by vLLM without speculative "
                             "decoding (not counted)")
    window(c, lm, types)
    lm["dtype"] = dtype(c, root)
    return lm


def _vision(v: Cfg, text_hidden: int, projector_bias: bool) -> dict[str, Any]:
    """Step3p7VisionModel + Step3p7Model.multi_modal_projector; the remote-code spellings width / layers /
    heads override hidden_size / num_hidden_layers / num_attention_heads as Step3p7VisionConfig reads them."""
    v.with_class_defaults("Step3p7VisionConfig", VISION_DEFAULTS)
    hidden = v.int("hidden", "width", "hidden_size")
    heads = v.int("heads", "heads", "num_attention_heads", high=hidden)
    if hidden % heads:
        raise InvalidConfigValue(v.prefix + "num_attention_heads", heads, f"a divisor of hidden_size={hidden}")
    ratio = v.data.get("mlp_ratio", MLP_RATIO)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 64:
        raise InvalidConfigValue(v.prefix + "mlp_ratio", ratio, "a number above 0, at most 64")
    mlp = int(hidden * ratio)  # Step3p7VisionConfig.__post_init__: intermediate_size = int(hidden_size * mlp_ratio)
    v.note("mlp", "int(hidden_size x mlp_ratio) (transformers Step3p7VisionConfig)")
    image, patch = v.int("image_size", "image_size", high=1 << 15), v.int("patch_size", "patch_size", high=1024)
    stride = PROCESSOR["downsampler_stride"]
    if patch != PROCESSOR["vision_patch_size"] or image != PROCESSOR["size"]:
        raise InvalidConfigValue(v.prefix + "patch_size", patch,
                                 f"{PROCESSOR['vision_patch_size']} with image_size {PROCESSOR['size']} (the values "
                                 "Step3p7ImageProcessor cuts images for)")
    h2, h4 = 2 * hidden, 4 * hidden
    projector = [TensorShape(name=n, shape=s, kind=k) for n, s, k in [
        ("downsampler1.weight", (h2, hidden, 3, 3), "conv"), ("downsampler1.bias", (h2,), "bias"),
        ("downsampler2.weight", (h4, h2, 3, 3), "conv"), ("downsampler2.bias", (h4,), "bias"),
        ("multi_modal_projector.weight", (text_hidden, h4), "linear"),
    ] + ([("multi_modal_projector.bias", (text_hidden,), "bias")] if projector_bias else [])]
    v.note("projector", "transformers Step3p7VisionModel downsampler1/2 (3x3 stride-2 convs) and "
                        "Step3p7Model.multi_modal_projector")
    v.note("position_embeddings", "transformers SiglipVisionEmbeddings: (image_size / patch_size)^2 rows")
    v.note("resize", "transformers Step3p7ImageProcessor (size 728, patch_size 504, max_image_size 3024) and "
                     "Step3p7Processor.replace_image_token (app/estimator/images.py)")
    return dict(layers=v.int("layers", "layers", "num_hidden_layers", high=LIMITS["layers"]), hidden=hidden,
                heads=heads, mlp=mlp, mlp_kind="gelu", qkv_bias=True, linear_bias=True, norm="layernorm",
                image_size=image, patch_size=patch, in_channels=v.int("in_channels", "num_channels", high=16),
                temporal_patch=1, patch_bias=False, cls_token=False, position_embeddings=(image // patch) ** 2,
                extra_norms=1, layer_scales=True, projector=projector, embeddings_per_image=1,
                prompt_tokens_per_image=0, resize="step3p7", merge_size=stride, crop_size=PROCESSOR["crop"],
                longest_edge=PROCESSOR["max_image_size"], default_image=DEFAULT_IMAGE)


def step3p7(c: Cfg) -> Adapted:
    """Step3p7ForConditionalGeneration. The released config nests text_config and vision_config; a copy with
    the text keys at the top (aiconfigurator's, no text_config) is read as that text_config. transformers'
    Step3p7Config builds its default vision tower when vision_config is absent, and so do we (stated)."""
    nested = isinstance(c.data.get("text_config"), dict)
    text = c.sub("text_config") if nested else Cfg(c.data, c.model_type)
    lm = _text(text, c)
    if not nested:
        text.note("layers", text.sources["layers"] + " (no text_config: the top-level keys read as "
                                                      "Step3p7TextConfig's)")
    if isinstance(c.data.get("vision_config"), dict):
        v = c.sub("vision_config")
    else:  # transformers Step3p7Config builds Step3p7VisionConfig's defaults (each field's source says so)
        v = Cfg({}, c.model_type, "vision_config.")
    vs = _vision(v, lm["hidden"], c.bool("projector", "projector_bias", False))
    return Adapted(lm, text.sources, vs, v.sources)
