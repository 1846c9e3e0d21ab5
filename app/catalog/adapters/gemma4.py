"""Gemma 4 (transformers models/gemma4, 5.25): per-layer KV geometry, K = V full layers, KV sharing, per-layer
embeddings, a MoE block beside the dense MLP, and the Gemma 4 vision encoder.

Gemma4TextConfig: full-attention layers use `global_head_dim` (q, k, v and o) and, when `attention_k_eq_v`,
`num_global_key_value_heads` KV heads whose values come from the key projection (no v_proj; K and V are
still cached apart: V = v_norm(k), K = rope(k_norm(k))); sliding
layers num_key_value_heads x head_dim. The last `num_kv_shared_layers` layers build no k/v projections and
read the cache of the last earlier layer of their type. `hidden_size_per_layer_input` adds per-layer
embeddings (E2B / E4B). `enable_moe_block` puts a router and experts beside every layer's dense MLP.
"""

from __future__ import annotations

from typing import Any

from app.catalog.adapters.common import Adapted, decoder, dtype, window
from app.catalog.config import LIMITS, Cfg, InvalidConfigValue
from app.estimator.spec import KvGeometry, MoE, TensorShape

# transformers models/gemma4/configuration_gemma4.py Gemma4TextConfig defaults (5.25); num_hidden_layers is left
# out on purpose: a config that names none is refused (422), not read as the default model
GEMMA4_TEXT_DEFAULTS = {"vocab_size": 262_144, "hidden_size": 2304, "intermediate_size": 9216,
                        "num_attention_heads": 8, "num_key_value_heads": 4,
                        "head_dim": 256, "max_position_embeddings": 131_072, "sliding_window": 512,
                        "global_head_dim": 512, "hidden_size_per_layer_input": 256,
                        "vocab_size_per_layer_input": 262_144}
# Gemma4VisionConfig defaults (same file)
GEMMA4_VISION_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 16,
                          "num_attention_heads": 12, "num_key_value_heads": 12, "head_dim": 64, "patch_size": 16,
                          "position_embedding_size": 10 * 1024, "pooling_kernel_size": 3}
# Gemma4ImageProcessor.max_soft_tokens (models/gemma4/image_processing_gemma4.py, 5.25)
MAX_SOFT_TOKENS = 280


def _layer_types(c: Cfg, layers: int) -> list[str]:
    """config layer_types, else every 6th layer full (Gemma4TextConfig.__post_init__); the last layer is
    always full attention (transformers forces it)."""
    kinds = {"full_attention": "full", "sliding_attention": "sliding"}
    raw = c.data.get("layer_types")
    if raw is None:
        c.note("layer_types", "transformers Gemma4TextConfig: layer i slides when (i + 1) % 6")
        types = ["sliding" if (i + 1) % 6 else "full" for i in range(layers)]
    else:
        if not isinstance(raw, list) or len(raw) != layers or any(k not in kinds for k in raw):
            raise InvalidConfigValue(c.prefix + "layer_types", raw,
                                     f"{layers} entries of full_attention / sliding_attention")
        c.note("layer_types", f"config.json {c.prefix}layer_types")
        types = [kinds[k] for k in raw]
    if types[-1] != "full":
        types[-1] = "full"
        c.note("layer_types", c.sources["layer_types"] + "; last layer forced to full attention as transformers "
                                                        "Gemma4TextConfig does")
    return types


def _full_geometry(c: Cfg, lm: dict[str, Any], types: list[str]) -> KvGeometry:
    """Full layers' KV geometry: per_layer_config (what transformers 5 writes) or global_head_dim +
    num_global_key_value_heads (what the releases write)."""
    k_eq_v = c.bool("kv_geometry", "attention_k_eq_v", False)
    per_layer = c.data.get("per_layer_config")
    if per_layer:
        full = {i for i, t in enumerate(types) if t == "full"}
        if not isinstance(per_layer, dict) or {int(k) for k in per_layer} != full:
            raise InvalidConfigValue(c.prefix + "per_layer_config", "{...}", "one entry per full_attention layer")
        overrides = {tuple(sorted(v.items())) for v in per_layer.values()}
        if len(overrides) != 1 or not set(dict(next(iter(overrides)))) <= {"head_dim", "num_key_value_heads"}:
            raise InvalidConfigValue(c.prefix + "per_layer_config", "{...}",
                                     "the same head_dim / num_key_value_heads for every full_attention layer")
        o = dict(next(iter(overrides)))
        head_dim, kv_heads = int(o.get("head_dim", lm["head_dim"])), int(o.get("num_key_value_heads", lm["kv_heads"]))
        c.note("kv_geometry", f"config.json {c.prefix}per_layer_config, attention_k_eq_v")
    else:
        head_dim = c.int("kv_geometry", "global_head_dim")
        kv_heads = lm["kv_heads"]
        if k_eq_v and c.has("num_global_key_value_heads"):  # Gemma4TextConfig: only when attention_k_eq_v
            kv_heads = c.int("kv_geometry", "num_global_key_value_heads", high=lm["heads"])
        c.note("kv_geometry", f"config.json {c.prefix}global_head_dim, num_global_key_value_heads, attention_k_eq_v "
                              "(transformers Gemma4TextConfig per_layer_config of full_attention layers)")
    if lm["heads"] % kv_heads:
        raise InvalidConfigValue(c.prefix + "num_global_key_value_heads", kv_heads,
                                 f"a divisor of num_attention_heads={lm['heads']}")
    # attention_k_eq_v drops v_proj (values = v_norm of the key projection), but transformers' cache keeps keys
    # (rope(k_norm(k))) and values apart: two tensors per layer, as its own cache after a prefill shows
    # (model_specs/traces/cache/gemma-4-26b-a4b.json)
    return KvGeometry(kv_heads=kv_heads, head_dim=head_dim, v_from_k=k_eq_v)


def _text(c: Cfg, root: Cfg | None = None) -> dict[str, Any]:
    c.with_class_defaults("Gemma4TextConfig", GEMMA4_TEXT_DEFAULTS)
    lm = decoder(c, tied_default=True)
    lm["ffn_kind"] = "geglu"
    c.note("ffn_kind", "transformers Gemma4TextMLP (gate_proj, up_proj, down_proj; gelu_pytorch_tanh)")
    lm["qkv_bias"] = lm["output_bias"] = c.bool("qkv_bias", "attention_bias", False)
    lm["qk_norm"] = True
    c.note("qk_norm", "transformers Gemma4TextAttention (q_norm, k_norm: RMSNorm(head_dim); v_norm has no weight)")
    if c.data.get("use_bidirectional_attention") == "all":
        raise InvalidConfigValue(c.prefix + "use_bidirectional_attention", "all",
                                 "null or vision (all: an encoder, not a decoder)")
    layers = lm["layers"]
    types = _layer_types(c, layers)
    lm["kv_geometry"] = {"full": _full_geometry(c, lm, types)}
    lm["gguf_rope_freqs"] = lm["kv_geometry"]["full"].head_dim // 2
    c.note("gguf_rope_freqs", "llama.cpp src/models/gemma4.cpp load_arch_tensors: the full-attention layers' "
                              "proportional rope needs an F32 rope_freqs tensor of n_embd_head / 2 (required)")
    shared = c.int("kv_shared_layers", "num_kv_shared_layers", default=0, low=0, high=layers - 1)
    if shared:
        if set(types[: layers - shared]) != set(types):  # Gemma4TextConfig.kv_sharing_modes raises the same
            raise InvalidConfigValue(c.prefix + "num_kv_shared_layers", shared,
                                     "fewer: every layer type must keep a layer with its own cache")
        if c.bool("ffn", "use_double_wide_mlp", False):
            raise InvalidConfigValue(c.prefix + "use_double_wide_mlp", True,
                                     "false (double-wide MLPs in KV-shared layers are not modelled)")
    lm["kv_shared_layers"] = shared
    ple = c.int("per_layer_input", "hidden_size_per_layer_input", low=0)
    lm["per_layer_input"] = ple
    if ple:
        lm["per_layer_vocab"] = c.int("per_layer_vocab", "vocab_size_per_layer_input", high=LIMITS["vocab"])
    norms = 4
    c.note("norms_per_layer", "transformers Gemma4TextDecoderLayer (input, post_attention, pre_feedforward, "
                              "post_feedforward layernorms)")
    if c.bool("moe", "enable_moe_block", False):
        experts = c.int("moe", "num_experts", low=2, high=LIMITS["experts"])
        lm["moe"] = MoE(experts=experts, experts_per_token=c.int("moe", "top_k_experts", high=experts),
                        expert_ffn=c.int("moe", "moe_intermediate_size"), shared_expert_ffn=lm["ffn"],
                        router_scales=True, first_dense_layers=0)
        # every layer keeps its dense MLP (intermediate_size) beside the experts: counted as an always-on
        # shared expert of that width; the layer ffn is MoE everywhere
        c.note("moe", "config.json enable_moe_block, num_experts, top_k_experts, moe_intermediate_size; the dense "
                      "MLP (intermediate_size) runs beside the experts in every layer (Gemma4TextDecoderLayer), "
                      "Gemma4TextRouter scale and per_expert_scale")
        norms = 7
        c.note("norms_per_layer", "transformers Gemma4TextDecoderLayer with enable_moe_block (4 + "
                                  "post_feedforward_layernorm_1/_2, pre_feedforward_layernorm_2)")
    lm["norms_per_layer"] = norms
    window(c, lm, types)
    lm["dtype"] = dtype(c, root)
    return lm


def gemma4_text(c: Cfg) -> Adapted:
    """Gemma4ForCausalLM: the Gemma 4 decoder alone."""
    return Adapted(_text(c), c.sources)


def _vision(c: Cfg, text_hidden: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Gemma4VisionModel + Gemma4MultimodalEmbedder: a bias-free patch projection, a [2, position_embedding_size,
    hidden] position table, blocks with q/k/v/o (bias-free), q_norm/k_norm (v_norm has no weight), four
    RMSNorms and a gated MLP; a parameter-free pooler (pooling_kernel_size^2 patches to one soft token) and one
    bias-free projection into the text width behind a weightless norm."""
    v = c.sub("vision_config").with_class_defaults("Gemma4VisionConfig", GEMMA4_VISION_DEFAULTS)
    hidden = v.int("hidden", "hidden_size")
    heads = v.int("heads", "num_attention_heads", high=hidden)
    kv_heads = v.int("heads", "num_key_value_heads")
    head_dim = v.int("heads", "head_dim")
    if kv_heads != heads or heads * head_dim != hidden:
        raise InvalidConfigValue(v.prefix + "num_key_value_heads", kv_heads,
                                 f"num_attention_heads={heads} with head_dim x heads = hidden_size={hidden}")
    patch = v.int("patch_size", "patch_size")
    pool = v.int("embeddings_per_image", "pooling_kernel_size", high=64)
    tokens = c.int("embeddings_per_image", "vision_soft_tokens_per_image", default=MAX_SOFT_TOKENS)
    if not c.has("vision_soft_tokens_per_image"):
        c.note("embeddings_per_image", "Gemma4ImageProcessor max_soft_tokens default (280)")
    side = int((tokens * pool * pool) ** 0.5)
    vs: dict[str, Any] = dict(
        layers=v.int("layers", "num_hidden_layers", high=LIMITS["layers"]), hidden=hidden, heads=heads,
        mlp=v.int("mlp", "intermediate_size"), mlp_kind="swiglu", qkv_bias=False, linear_bias=False,
        norm="rmsnorm", image_size=side * patch, patch_size=patch, in_channels=3, temporal_patch=1,
        patch_bias=False, cls_token=False, position_embeddings=2 * v.int("position_embeddings",
                                                                         "position_embedding_size"),
        extra_norms=0, block_norms=4, qk_norm=True,
        projector=[TensorShape(name="embedding_projection.weight", shape=(text_hidden, hidden), kind="linear")],
        embeddings_per_image=tokens, prompt_tokens_per_image=0,
    )
    v.note("qkv_bias", "transformers Gemma4ClippableLinear (nn.Linear bias=False whatever attention_bias says)")
    v.note("position_embeddings", "transformers Gemma4VisionPatchEmbedder position_embedding_table "
                                  "[2, position_embedding_size, hidden]")
    v.note("projector", "transformers Gemma4MultimodalEmbedder (embedding_projection; the pre-projection norm "
                        "has no weight)")
    v.note("image_size", "the side whose patches fill the soft-token budget: sqrt(soft tokens x "
                         "pooling_kernel_size^2) patches (Gemma4ImageProcessor keeps the aspect ratio)")
    return vs, v.sources


def gemma4(c: Cfg) -> Adapted:
    """Gemma4ForConditionalGeneration: the Gemma 4 decoder and, when vision_config is set, the vision encoder.
    An audio tower (E2B / E4B) is refused: not modelled yet."""
    if c.data.get("audio_config") is not None:
        raise InvalidConfigValue("audio_config", "{...}", "null (the Gemma 4 audio tower is not counted yet)")
    text = c.sub("text_config")
    lm = _text(text, c)
    if c.data.get("vision_config") is None:
        return Adapted(lm, text.sources)
    vs, sources = _vision(c, lm["hidden"])
    return Adapted(lm, text.sources, vs, sources)
