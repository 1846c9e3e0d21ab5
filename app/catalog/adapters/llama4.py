"""Llama 4 (transformers models/llama4, 5.25): chunked local attention, interleaved MoE layers, a vision tower.

Llama4TextConfig: a layer whose no_rope_layers entry is 1 (RoPE) uses chunked attention over
attention_chunk_size positions ("chunked_attention"); every no_rope_layer_interval-th layer is NoPE full
attention. moe_layers (else every interleave_moe_layer_step-th layer) hold a sigmoid router, routed experts of
intermediate_size and one shared expert of intermediate_size; the other layers a dense MLP of
intermediate_size_mlp. The weightless qk_norm has no parameters.
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, decoder, dtype, window
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import MoE, TensorShape

# transformers models/llama4/configuration_llama4.py Llama4TextConfig / Llama4VisionConfig defaults (5.25);
# num_hidden_layers is left out on purpose: a config that names none is refused (422), not read as the default
LLAMA4_TEXT_DEFAULTS = {"vocab_size": 202_048, "hidden_size": 5120, "intermediate_size": 8192,
                        "num_attention_heads": 40, "num_key_value_heads": 8,
                        "head_dim": 128, "max_position_embeddings": 4096 * 32, "num_local_experts": 16,
                        "num_experts_per_tok": 1, "intermediate_size_mlp": 16384}
LLAMA4_VISION_DEFAULTS = {"hidden_size": 768, "num_hidden_layers": 34, "num_attention_heads": 16,
                          "num_channels": 3, "intermediate_size": 5632, "vision_output_dim": 7680,
                          "image_size": 448, "patch_size": 14, "projector_input_dim": 4096,
                          "projector_output_dim": 4096}


def _layer_types(c: Cfg, layers: int) -> list[str]:
    kinds = {"full_attention": "full", "chunked_attention": "chunked"}
    raw = c.data.get("layer_types")
    if raw is not None:
        if not isinstance(raw, list) or len(raw) != layers or any(k not in kinds for k in raw):
            raise InvalidConfigValue(c.prefix + "layer_types", raw,
                                     f"{layers} entries of full_attention / chunked_attention")
        c.note("layer_types", f"config.json {c.prefix}layer_types")
        return [kinds[k] for k in raw]
    rope = c.data.get("no_rope_layers") or None  # Llama4TextConfig: an empty list means the default
    if rope is None:
        n = c.int("layer_types", "no_rope_layer_interval", default=4, high=LIMITS["layers"])
        rope = [int((i + 1) % n != 0) for i in range(layers)]
        how = f"no_rope_layer_interval {n}"
    else:
        if not isinstance(rope, list) or len(rope) != layers or any(x not in (0, 1) for x in rope):
            raise InvalidConfigValue(c.prefix + "no_rope_layers", rope, f"{layers} entries of 0 / 1")
        how = "no_rope_layers"
    chunked = c.data.get("attention_chunk_size", 8192) is not None
    c.note("layer_types", f"transformers Llama4TextConfig: RoPE layers ({how}) chunked when attention_chunk_size "
                          "is set, NoPE layers full attention")
    return ["chunked" if r and chunked else "full" for r in rope]


def _moe_layers(c: Cfg, layers: int) -> list[int]:
    listed = c.data.get("moe_layers")
    if listed is not None:
        if not isinstance(listed, list) or any(not isinstance(i, int) or not 0 <= i < layers for i in listed):
            raise InvalidConfigValue(c.prefix + "moe_layers", listed, f"layer indices below {layers}")
        c.note("layer_ffn", f"config.json {c.prefix}moe_layers")
        return listed
    step = c.int("layer_ffn", "interleave_moe_layer_step", default=1, high=layers)
    c.note("layer_ffn", f"config.json {c.prefix}interleave_moe_layer_step (transformers Llama4TextConfig: "
                         f"layers step - 1, 2 x step - 1, ... are MoE)")
    return list(range(step - 1, layers, step))


def _text(c: Cfg, root: Cfg | None = None) -> dict[str, Any]:
    c.with_class_defaults("Llama4TextConfig", LLAMA4_TEXT_DEFAULTS)
    lm = decoder(c, tied_default=False)
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["ffn"] = c.int("ffn", "intermediate_size_mlp")
    layers = lm["layers"]
    types = _layer_types(c, layers)
    if "chunked" in types:
        lm["attention_chunk_size"] = c.int("attention_chunk_size", "attention_chunk_size", default=8192,
                                           high=LIMITS["context"])
    moe_at = set(_moe_layers(c, layers))
    lm["layer_ffn"] = tuple("moe" if i in moe_at else "dense" for i in range(layers))
    experts = c.int("moe", "num_local_experts", low=2, high=LIMITS["experts"])
    expert_ffn = c.int("moe", "intermediate_size")
    lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "num_experts_per_tok", high=experts),
                    expert_ffn=expert_ffn, shared_experts=1, shared_expert_ffn=expert_ffn)
    c.note("moe", "config.json num_local_experts, num_experts_per_tok, intermediate_size (routed experts and the "
                  "one shared expert, transformers Llama4TextMoe); dense layers intermediate_size_mlp")
    window(c, lm, types)
    lm["dtype"] = dtype(c, root)
    return lm


def llama4_text(c: Cfg) -> Adapted:
    """Llama4ForCausalLM: the Llama 4 decoder alone."""
    return Adapted(_text(c), c.sources)


def _vision(c: Cfg, text_hidden: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Llama4VisionModel + Llama4MultiModalProjector: a bias-free unfold patch projection, a class embedding and
    (patches + 1) learned positions, pre/post LayerNorms, LayerNorm blocks with biased q/k/v/o and fc1/fc2
    (GELU), the pixel-shuffle adapter (fc1 intermediate_size -> projector_input_dim, fc2 projector_output_dim
    square, both bias-free) and linear_1 (vision_output_dim -> text hidden, bias-free)."""
    v = c.sub("vision_config").with_class_defaults("Llama4VisionConfig", LLAMA4_VISION_DEFAULTS)
    hidden = v.int("hidden", "hidden_size")
    image = v.int("image_size", "image_size")
    patch = v.int("patch_size", "patch_size")
    side = image // patch
    if side < 1:
        raise InvalidConfigValue(v.prefix + "patch_size", patch, f"at most image_size={image}")
    mlp = v.int("mlp", "intermediate_size")
    ratio = v.data.get("pixel_shuffle_ratio", 0.5)
    if not isinstance(ratio, int | float) or not 0 < ratio <= 1:
        raise InvalidConfigValue(v.prefix + "pixel_shuffle_ratio", ratio, "a number in (0, 1]")
    if v.data.get("multi_modal_projector_bias"):
        raise InvalidConfigValue(v.prefix + "multi_modal_projector_bias", True, "false (transformers 5.25 builds "
                                                                               "no projector bias)")
    p_in, p_out = v.int("projector", "projector_input_dim"), v.int("projector", "projector_output_dim")
    proj = [("adapter.fc1.weight", (p_in, mlp), "linear"), ("adapter.fc2.weight", (p_out, p_out), "linear"),
            ("linear_1.weight", (text_hidden, v.int("projector", "vision_output_dim")), "linear")]
    vs: dict[str, Any] = dict(
        layers=v.int("layers", "num_hidden_layers", high=LIMITS["layers"]), hidden=hidden,
        heads=v.int("heads", "num_attention_heads", high=hidden), mlp=mlp, mlp_kind="gelu", qkv_bias=True,
        linear_bias=True, norm="layernorm", image_size=image, patch_size=patch,
        in_channels=v.int("in_channels", "num_channels", high=16), temporal_patch=1, patch_bias=False,
        cls_token=True, position_embeddings=side * side + 1, extra_norms=2,
        projector=[TensorShape(name=n, shape=s, kind=k) for n, s, k in proj],
        embeddings_per_image=max(1, int(side * ratio) ** 2), prompt_tokens_per_image=0, qkv_modules=3,
        patch_linear=True,
    )
    v.note("qkv_modules", "transformers Llama4VisionAttention: q_proj, k_proj, v_proj")
    v.note("patch_linear", "transformers Llama4UnfoldConvolution: nn.Unfold, then nn.Linear(channels x patch^2, "
                           "hidden, bias=False)")
    v.note("position_embeddings", "transformers Llama4VisionModel positional_embedding_vlm: (image_size / "
                                  "patch_size)^2 + 1 (the class token)")
    v.note("projector", "transformers Llama4VisionPixelShuffleMLP (fc1, fc2) and Llama4MultiModalProjector "
                        "(linear_1)")
    v.note("embeddings_per_image", "one image_size tile: ((image_size / patch_size) x pixel_shuffle_ratio)^2; "
                                   "Llama4ImageProcessor splits larger images into more tiles plus a global one")
    return vs, v.sources


def llama4(c: Cfg) -> Adapted:
    """Llama4ForConditionalGeneration: the Llama 4 decoder and its vision tower."""
    text = c.sub("text_config")
    lm = _text(text, c)
    if c.data.get("vision_config") is None:
        return Adapted(lm, text.sources)
    vs, sources = _vision(c, lm["hidden"])
    return Adapted(lm, text.sources, vs, sources)
