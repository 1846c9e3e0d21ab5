"""The answer's cache section: KV and recurrent state apart, layer by layer (app.estimator.cache)."""

# Annotations evaluated at class creation (no `from __future__ import annotations`): pydantic would otherwise
# compile every field's annotation string when the models are built, a noticeable part of a cold `vram` start.

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)  # kept per model and shared by answers
class CacheLayer:
    """What one decoder layer caches, as the chosen runtime stores it."""

    index: int
    layer_type: Annotated[str, Field(
        description="The spec's layer_types entry (full, sliding, chunked, linear_attention, mamba2, short_conv, "
                    "none).")]
    kind: Annotated[str, Field(description="Cache kind: attention, mla, shared, gdn, mamba2, short_conv, none.")]
    kv_bytes_per_token: Annotated[int, Field(description="KV bytes one cached position adds in this layer (0: no KV).")]
    span: Annotated[int | None, Field(description="Positions kept per sequence when windowed or chunked.")] = None
    source: Annotated[int | None, Field(description="Shared KV: the layer whose cache this one reads.")] = None
    state_bytes_per_sequence: Annotated[int, Field(description="Recurrent state of this layer for one sequence.")]


@dataclass(slots=True, kw_only=True)
class CacheReport:
    """KV cache and recurrent state as two separate terms; they add up to the breakdown's kv_cache."""

    kv_bytes: Annotated[int, Field(description="KV cache of the whole batch as the runtime allocates it.")]
    state_bytes: Annotated[int, Field(description="Recurrent state of the whole batch (0 without recurrent layers).")]
    kv_bytes_per_token: Annotated[int, Field(description="KV bytes per cached position, all layers, one sequence.")]
    state_bytes_per_sequence: Annotated[int, Field(
        description="Recurrent state of one sequence, all layers, whatever its length.")]
    state_rule: Annotated[str, Field(
        description="How the runtime stores states (dtypes, conv length), and its source.")] = ""
    layers: list[CacheLayer]
