"""Per-layer cache model: what each decoder layer keeps while it generates, derived from a LanguageModel.

Two kinds of storage, kept apart everywhere:
- per token (KV): the rows every cached position adds in a layer: K and V of attention (the layer's own
  KV heads and head dims; one row when K = V), the MLA latent (+ its rope part), indexer keys. A layer keeps
  every position, a window (sliding), a chunk (chunked), or none of its own (shared with another layer).
- per sequence (state): fixed-size tensors a recurrent layer keeps whatever the context: the Gated DeltaNet
  recurrent state + conv state, the Mamba2 SSM state + conv state, the short-conv state.

`layer_caches(lm)` is the one description; every runtime computes its KV and state terms from it and
differs only in positions kept per layer (cells, blocks), in the conv length and in state dtypes
(`StateRule`). A table keyed by layer type builds each layer (`LAYER_BUILDERS`); `CACHE_KINDS` names what
each kind holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import prod
from typing import Literal

from app.estimator.memo import per_spec
from app.estimator.spec import LanguageModel

DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}

RowName = Literal["k", "v", "kv", "latent", "index"]
StateName = Literal["conv", "recurrent", "ssm"]


@dataclass(frozen=True, slots=True)
class Row:
    """One row every cached position adds in one layer, stored in the KV type the user picks."""

    name: RowName  # k, v, kv (K = V stored once), latent (MLA: kv_lora_rank + qk_rope_head_dim), index
    elements: int
    heads: int = 1  # heads the row spans (tensor parallelism splits them; an MLA latent / index key is 1)

    @property
    def head_dim(self) -> int:
        return self.elements // self.heads


@dataclass(frozen=True, slots=True)
class State:
    """One fixed-size tensor a recurrent layer keeps per sequence.

    conv: `channels` x the last conv inputs (kernel - 1 in llama.cpp and vLLM, kernel in transformers), in
    the compute dtype; recurrent / ssm: `shape`, in the state dtype (StateRule decides per runtime).
    """

    name: StateName
    shape: tuple[int, ...]  # conv: (channels,); recurrent / ssm: the state's shape
    kernel: int = 0  # conv: the kernel size
    heads: int = 1  # the heads (or channels) the first axis spans, for tensor-parallel splitting

    @property
    def elements_per_step(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True, slots=True)
class StateRule:
    """How one runtime stores recurrent states: conv length and bytes per element of each state."""

    conv_bytes: int  # conv states (the compute dtype in every runtime modelled, F32 in llama.cpp)
    recurrent_bytes: int  # Gated DeltaNet recurrent state
    ssm_bytes: int  # Mamba2 SSM state
    conv_keeps_kernel: bool = False  # transformers keeps `kernel` inputs, llama.cpp and vLLM kernel - 1
    source: str = ""

    def elements(self, s: State) -> int:
        if s.name == "conv":
            return s.elements_per_step * (s.kernel if self.conv_keeps_kernel else s.kernel - 1)
        return s.elements_per_step

    def bytes(self, s: State) -> int:
        size = {"conv": self.conv_bytes, "recurrent": self.recurrent_bytes, "ssm": self.ssm_bytes}[s.name]
        return self.elements(s) * size


@dataclass(frozen=True, slots=True)
class LayerCache:
    """What one layer caches."""

    index: int
    layer_type: str  # the spec's layer_types entry
    kind: str  # a CACHE_KINDS key
    rows: tuple[Row, ...] = ()  # per cached position
    span: int | None = None  # positions kept per sequence: None = all; the window or the chunk
    source: int | None = None  # kind "shared": the layer whose cache this one reads
    states: tuple[State, ...] = ()  # per sequence

    @property
    def row_elements(self) -> int:
        return sum(r.elements for r in self.rows)

    def positions(self, tokens: int) -> int:
        """Positions this layer keeps for a `tokens`-long sequence (its window or chunk at most)."""
        if not self.rows:
            return 0
        return tokens if self.span is None else min(tokens, self.span)

    def kv_bytes_per_token(self, kv) -> int:
        """Bytes one cached position adds (each row quantized on its own, as llama.cpp stores K and V)."""
        return sum(kv.bytes_for(r.elements) for r in self.rows)

    def state_bytes(self, rule: StateRule) -> int:
        return sum(rule.bytes(s) for s in self.states)


@dataclass(frozen=True, slots=True)
class CacheKind:
    name: str
    holds: str  # what it keeps, for people
    per_token: bool
    per_sequence: bool


CACHE_KINDS: dict[str, CacheKind] = {k.name: k for k in [
    CacheKind("attention", "K and V rows of its KV heads per position (all, a window or a chunk)", True, False),
    CacheKind("mla", "one compressed latent (kv_lora_rank) + the rope key part per position", True, False),
    CacheKind("shared", "nothing: reads the cache of an earlier layer of its type", False, False),
    CacheKind("gdn", "Gated DeltaNet recurrent state + causal-conv state per sequence", False, True),
    CacheKind("mamba2", "Mamba2 SSM state + causal-conv state per sequence", False, True),
    CacheKind("short_conv", "short-convolution state per sequence", False, True),
    CacheKind("none", "nothing (a block without a token mixer)", False, False),
]}


def kv_geometry(lm: LanguageModel, layer_type: str) -> tuple[int, int, int, bool]:
    """(kv_heads, k head dim, v head dim, K = V) of attention layers of `layer_type`."""
    g = lm.kv_geometry.get(layer_type)  # type: ignore[call-overload]
    if g is not None:
        return g.kv_heads, g.head_dim, g.v_head_dim or g.head_dim, g.k_eq_v
    return lm.kv_heads, lm.head_dim, lm.v_head_dim or lm.head_dim, False


def _span(lm: LanguageModel, layer_type: str) -> int | None:
    return {"sliding": lm.sliding_window, "chunked": lm.attention_chunk_size}.get(layer_type)


def _attention(lm: LanguageModel, i: int, layer_type: str) -> LayerCache:
    x = lm.indexer
    index = (Row("index", x.head_dim),) if x is not None and i not in x.shared_layers else ()
    if lm.mla is not None:
        latent = Row("latent", lm.mla.kv_lora_rank + lm.mla.qk_rope_head_dim)
        return LayerCache(i, layer_type, "mla", (latent, *index), _span(lm, layer_type))
    heads, k_dim, v_dim, k_eq_v = kv_geometry(lm, layer_type)
    rows = (Row("kv", heads * k_dim, heads),) if k_eq_v else (Row("k", heads * k_dim, heads),
                                                             Row("v", heads * v_dim, heads))
    return LayerCache(i, layer_type, "attention", (*rows, *index), _span(lm, layer_type))


def _gdn(lm: LanguageModel, i: int, layer_type: str) -> LayerCache:
    g = lm.linear_attention
    assert g is not None  # the spec's validator requires it for these layers
    # transformers qwen3_next/qwen3_5 GatedDeltaNet: conv over [q, k, v] channels; state [value_heads, dk, dv]
    states = (State("conv", (g.conv_channels,), g.conv_kernel, g.conv_channels),
              State("recurrent", g.state_shape, heads=g.value_heads))
    return LayerCache(i, layer_type, "gdn", states=states)


def _mamba2(lm: LanguageModel, i: int, layer_type: str) -> LayerCache:
    m = lm.mamba
    assert m is not None
    states = (State("conv", (m.conv_channels,), m.conv_kernel, m.conv_channels),
              State("ssm", m.state_shape, heads=m.heads))
    return LayerCache(i, layer_type, "mamba2", states=states)


def _short_conv(lm: LanguageModel, i: int, layer_type: str) -> LayerCache:
    c = lm.short_conv
    assert c is not None
    return LayerCache(i, layer_type, "short_conv", states=(State("conv", (lm.hidden,), c.conv_kernel, lm.hidden),))


def _none(lm: LanguageModel, i: int, layer_type: str) -> LayerCache:
    return LayerCache(i, layer_type, "none")


LAYER_BUILDERS: dict[str, Callable[[LanguageModel, int, str], LayerCache]] = {
    "full": _attention, "sliding": _attention, "chunked": _attention,
    "linear_attention": _gdn, "mamba2": _mamba2, "short_conv": _short_conv, "none": _none,
}


def layer_type_list(lm: LanguageModel) -> tuple[str, ...]:
    """The spec's layer_types, or (older specs) its sliding layers first, as kv_cache.layer_tokens orders them."""
    if lm.layer_types is not None:
        return lm.layer_types
    return ("sliding",) * lm.sliding_window_layers + ("full",) * (lm.layers - lm.sliding_window_layers)


@per_spec
def layer_caches(lm: LanguageModel) -> tuple[LayerCache, ...]:
    """Every layer's cache, in layer order. The last `kv_shared_layers` attention layers own no KV: each reads
    the last earlier layer of its type (Gemma 3n / Gemma 4 num_kv_shared_layers)."""
    types = layer_type_list(lm)
    out = [LAYER_BUILDERS[t](lm, i, t) for i, t in enumerate(types)]
    first_shared = lm.layers - lm.kv_shared_layers
    for i in range(first_shared, lm.layers):
        if not out[i].rows:
            continue
        source = max((j for j in range(first_shared) if types[j] == types[i] and out[j].rows), default=None)
        out[i] = LayerCache(i, types[i], "shared", span=out[i].span, source=source)
    return tuple(out)


# --- totals --------------------------------------------------------------------------------------------
@per_spec
def kv_bytes_per_token(lm: LanguageModel, kv) -> int:
    """KV bytes one position adds over all layers that own a cache (one sequence)."""
    return sum(layer.kv_bytes_per_token(kv) for layer in layer_caches(lm))


@per_spec
def _spans(lm: LanguageModel, kv, windows: bool) -> tuple[tuple[int, int | None], ...]:
    """(bytes per position, span) summed over the layers sharing a span: computed once per model and KV type,
    so a request costs one term per distinct window, not one per layer."""
    acc: dict[int | None, int] = {}
    for layer in layer_caches(lm):
        if layer.rows:
            span = layer.span if windows else None
            acc[span] = acc.get(span, 0) + layer.kv_bytes_per_token(kv)
    return tuple((b, span) for span, b in acc.items())


def kv_bytes(lm: LanguageModel, kv, tokens: int, *, windows: bool = True) -> int:
    """KV bytes of one `tokens`-long sequence; `windows=False`: sliding/chunked layers hold every position
    (transformers right after the prefill)."""
    return sum(b * (tokens if span is None else min(tokens, span)) for b, span in _spans(lm, kv, windows))


@per_spec
def state_bytes_per_sequence(lm: LanguageModel, rule: StateRule) -> int:
    """Recurrent-state bytes one sequence holds over all layers, whatever its length."""
    return sum(layer.state_bytes(rule) for layer in layer_caches(lm))


@dataclass(frozen=True, slots=True)
class CacheTotals:
    kv: int  # grows with tokens
    state: int  # grows with sequences


def cache_totals(lm: LanguageModel, kv, rule: StateRule, tokens: int, sequences: int, *,
                 windows: bool = True) -> CacheTotals:
    """KV for `sequences` sequences of `tokens` positions each, and their recurrent states."""
    return CacheTotals(sequences * kv_bytes(lm, kv, tokens, windows=windows),
                       sequences * state_bytes_per_sequence(lm, rule))


@per_spec
def has_state(lm: LanguageModel) -> bool:
    return any(layer.states for layer in layer_caches(lm))


def state_dtype_bytes(lm: LanguageModel, fallback: int) -> int:
    """Bytes per element of the state dtype the release names (mamba_ssm_dtype), else `fallback`."""
    return DTYPE_BYTES[lm.state_dtype] if lm.state_dtype else fallback


@per_spec
def describe(lm: LanguageModel) -> str:
    """One line for people: how many layers of each kind, and their per-token / per-sequence parts."""
    counts: dict[str, int] = {}
    for layer in layer_caches(lm):
        key = layer.kind if layer.kind != "attention" else f"{layer.layer_type} attention"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())
