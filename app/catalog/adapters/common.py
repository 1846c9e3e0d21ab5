"""What every decoder adapter shares: the standard Hugging Face keys, dtype, window patterns.

Defaults for absent keys are the ones transformers' configuration classes use (each named where used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.catalog.config import LIMITS, Cfg, InvalidConfigValue

_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32", "bf16": "bfloat16",
           "fp16": "float16", "half": "float16", "float": "float32", "fp32": "float32"}


@dataclass
class Adapted:
    """An adapter's answer: LanguageModel fields, optional VisionTower fields, their sources."""

    lm: dict[str, Any]
    lm_sources: dict[str, str]
    vision: dict[str, Any] | None = None
    vision_sources: dict[str, str] = field(default_factory=dict)


def dtype(c: Cfg, root: Cfg | None = None) -> str:
    """torch_dtype (or transformers 5's `dtype`) of the release; bfloat16 when neither is given."""
    for view in (c, root) if root is not None else (c,):
        for key in ("torch_dtype", "dtype"):
            value = view.data.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or value not in _DTYPES:
                raise InvalidConfigValue(view.prefix + key, value, "bfloat16, float16 or float32")
            c.note("dtype", f"config.json {view.prefix}{key}")
            return _DTYPES[value]
    c.note("dtype", "torch_dtype absent: bfloat16 assumed (the dtype transformers loads such configs in)")
    return "bfloat16"


def decoder(c: Cfg, *, tied_default: bool, head_dim_key: str = "head_dim") -> dict[str, Any]:
    """The fields every decoder-only config names the same way (Llama's keys)."""
    layers = c.int("layers", "num_hidden_layers", high=LIMITS["layers"])
    hidden = c.int("hidden", "hidden_size")
    heads = c.int("heads", "num_attention_heads", high=LIMITS["width"] // 8)
    kv_default = c.class_defaults.get("num_key_value_heads", heads)  # Llama & co: absent means one per head
    kv_heads = c.int("kv_heads", "num_key_value_heads", default=kv_default, high=heads)
    if heads % kv_heads:
        raise InvalidConfigValue(c.prefix + "num_key_value_heads", kv_heads,
                                 f"a divisor of num_attention_heads={heads}")
    if c.has(head_dim_key) or head_dim_key in c.class_defaults:
        head_dim = c.int("head_dim", head_dim_key)
    else:
        head_dim = hidden // heads
        c.note("head_dim", f"hidden_size / num_attention_heads ({head_dim_key} absent)")
        if head_dim < 1:
            raise InvalidConfigValue(c.prefix + "num_attention_heads", heads, f"at most hidden_size={hidden}")
    c.note("ffn_kind", f"transformers {c.model_type} MLP: gate_proj, up_proj, down_proj")
    c.note("norm", f"transformers {c.model_type} RMSNorm (weight only)")
    return dict(
        layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        ffn=c.int("ffn", "intermediate_size"),
        vocab=c.int("vocab", "vocab_size", high=LIMITS["vocab"]),
        tied_embeddings=c.bool("tied_embeddings", "tie_word_embeddings", tied_default),
        max_context=c.int("max_context", "max_position_embeddings", high=LIMITS["context"]),
        norm="rmsnorm", fused_qkv=False, fused_gate_up=False, qkv_bias=False, linear_bias=False,
        ffn_kind="swiglu",
    )


def window(c: Cfg, lm: dict[str, Any], types: list[str]) -> None:
    """Set sliding_window, sliding_window_layers and layer_types from a per-layer list."""
    n = types.count("sliding")
    if n:
        lm["sliding_window"] = c.int("sliding_window", "sliding_window", high=LIMITS["context"])
    lm["sliding_window_layers"] = n
    lm["layer_types"] = tuple(types)


def config_layer_types(c: Cfg, layers: int) -> list[str] | None:
    """The config's own `layer_types` list (newer releases write it), as full/sliding."""
    raw = c.data.get("layer_types")
    if raw is None:
        return None
    kinds = {"full_attention": "full", "sliding_attention": "sliding"}
    if not isinstance(raw, list) or len(raw) != layers or any(k not in kinds for k in raw):
        raise InvalidConfigValue(c.prefix + "layer_types", raw,
                                 f"{layers} entries of full_attention / sliding_attention")
    c.note("layer_types", f"config.json {c.prefix}layer_types")
    return [kinds[k] for k in raw]


def every_nth_full(c: Cfg, layers: int, n: int, how: str) -> list[str]:
    """Layer i is full attention when (i + 1) % n == 0, else sliding (Gemma 2/3, gpt-oss)."""
    types = config_layer_types(c, layers)
    if types is not None:
        return types
    c.note("layer_types", how)
    return ["sliding" if (i + 1) % n else "full" for i in range(layers)]


def qwen_window(c: Cfg, layers: int) -> list[str]:
    """Qwen2/Qwen3: sliding layers only when use_sliding_window, from max_window_layers on."""
    types = config_layer_types(c, layers)
    if types is not None:
        return types
    if not c.bool("layer_types", "use_sliding_window", False):
        return ["full"] * layers
    first = c.int("layer_types", "max_window_layers", default=layers, low=0, high=LIMITS["layers"])
    c.note("layer_types", "config.json use_sliding_window + max_window_layers (transformers Qwen2Config)")
    return ["sliding" if i >= first else "full" for i in range(layers)]


def all_layers_window(c: Cfg, layers: int) -> list[str]:
    """Mistral/Mixtral/Phi-3: `sliding_window` (when not null) applies to every layer."""
    types = config_layer_types(c, layers)
    if types is not None:
        return types
    if not c.has("sliding_window"):
        c.note("layer_types", "config.json sliding_window null: full attention in every layer")
        return ["full"] * layers
    c.note("layer_types", "config.json sliding_window: every layer (transformers Mistral/Phi3 attention)")
    return ["sliding"] * layers


def no_window(c: Cfg, layers: int) -> list[str]:
    c.note("layer_types", f"{c.model_type}: full attention in every layer")
    return ["full"] * layers
