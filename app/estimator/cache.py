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

RowName = Literal["k", "v", "kv", "latent", "index", "compressed", "buffer"]
StateName = Literal["conv", "recurrent", "ssm", "overlap_kv", "overlap_gate"]


@dataclass(frozen=True, slots=True, repr=False)
class Row:
    """One row every cached position adds in one layer, stored in the KV type the user picks."""

    name: RowName  # k, v, kv (K = V stored once), latent (MLA: kv_lora_rank + qk_rope_head_dim), index,
    # compressed (DeepSeek-V4 compressed entry), buffer (DeepSeek-V4 compressor input kept after the prefill)
    elements: int
    heads: int = 1  # heads the row spans (tensor parallelism splits them; an MLA latent / index key is 1)
    every: int = 1  # one row per `every` positions (DeepSeek-V4 compressed entries: the compress rate)
    prefill_only: bool = False  # held for every prompt position until the first decode step, then dropped

    def positions(self, tokens: int, span: int | None, windows: bool) -> int:
        """Rows kept for a `tokens`-long sequence: a compressed row one per `every` positions (whatever the
        window), a prefill-only row every position after the prefill (`windows=False`) and none after, others
        every position or the layer's window / chunk (`span`, with `windows`)."""
        if self.every > 1:
            return tokens // self.every
        if self.prefill_only:
            return 0 if windows else tokens
        return tokens if span is None or not windows else min(tokens, span)

    @property
    def head_dim(self) -> int:
        return self.elements // self.heads


@dataclass(frozen=True, slots=True, repr=False)
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


@dataclass(frozen=True, slots=True, repr=False)
class StateRule:
    """How one runtime stores recurrent states: conv length and bytes per element of each state."""

    conv_bytes: int  # conv states (the compute dtype in every runtime modelled, F32 in llama.cpp)
    recurrent_bytes: int  # Gated DeltaNet recurrent state
    ssm_bytes: int  # Mamba2 SSM state
    conv_keeps_kernel: bool = False  # transformers keeps `kernel` inputs, llama.cpp and vLLM kernel - 1
    source: str = ""
    # DeepSeek-V4 CSA compressor overlap (the last closed window's Ca half): kv and gate scores. Only the
    # transformers runtime answers for DeepSeek-V4 (llama.cpp and vLLM refuse it: runtimes/base.py), so the
    # others leave these at 0.
    overlap_kv_bytes: int = 0
    overlap_gate_bytes: int = 0
    # vLLM with speculative decoding keeps kernel - 1 + num_speculative_tokens conv inputs
    # (vllm 0.32.0 model_executor/layers/mamba/mamba_utils.py MambaStateShapeCalculator, num_spec)
    conv_extra: int = 0

    def elements(self, s: State) -> int:
        if s.name == "conv":
            return s.elements_per_step * (s.kernel if self.conv_keeps_kernel else s.kernel - 1 + self.conv_extra)
        return s.elements_per_step

    def bytes(self, s: State) -> int:
        size = {"conv": self.conv_bytes, "recurrent": self.recurrent_bytes, "ssm": self.ssm_bytes,
                "overlap_kv": self.overlap_kv_bytes, "overlap_gate": self.overlap_gate_bytes}[s.name]
        return self.elements(s) * size


@dataclass(frozen=True, slots=True, repr=False)
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
        """Bytes one cached position adds (each row quantized on its own, as llama.cpp stores K and V); rows kept
        once per several positions (compressed) or only until the first decode step (buffer) are not in it."""
        return sum(kv.bytes_for(r.elements) for r in self.rows if r.every == 1 and not r.prefill_only)

    def kv_bytes(self, kv, tokens: int, *, windows: bool = True) -> int:
        """Bytes of every row this layer keeps for one `tokens`-long sequence (see Row.positions)."""
        return sum(kv.bytes_for(r.elements) * r.positions(tokens, self.span, windows) for r in self.rows)

    def state_bytes(self, rule: StateRule) -> int:
        return sum(rule.bytes(s) for s in self.states)


@dataclass(frozen=True, slots=True, repr=False)
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
    CacheKind("compressed", "a window of K = V rows, one compressed entry per compress rate positions (CSA: and "
                            "indexer keys), the compressor's pending inputs", True, True),
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


def _compressed(lm: LanguageModel, i: int, layer_type: str) -> LayerCache:
    """transformers 5.25 DeepseekV4HCACache / DeepseekV4CSACache (models/deepseek_v4/modeling_deepseek_v4.py):
    - keys: the sliding window of K = V rows (values is the same tensor), head_dim wide;
    - compressed_kv: one head_dim entry per compress rate positions (CSA: and one index_head_dim indexer key);
    - buffer_kv / buffer_gate: the compressor's kv_proj and gate_proj outputs (CSA: 2 x head_dim each, and the
      indexer's 2 x index_head_dim; HCA: head_dim). After the prefill the buffer is a slice of the whole
      prompt's projections, so their storage holds every prompt position until the next forward;
    - CSA overlap_kv / overlap_gate: the last closed window's first half (compress rate x head_dim, and the
      indexer's x index_head_dim), kv in the compute dtype, the gate (+ float32 position_bias) in float32."""
    a = lm.compressed_attention
    assert a is not None
    rate, d = a.compress_rates[layer_type], lm.head_dim  # type: ignore[index]
    sparse = layer_type == "compressed_sparse"
    width = (2 * d + 2 * a.index_head_dim) if sparse else d  # kv_proj (= gate_proj) outputs per position
    rows = [Row("kv", d), Row("compressed", d, every=rate), Row("buffer", 2 * width, prefill_only=True)]
    states: tuple[State, ...] = ()
    if sparse:
        rows.insert(2, Row("index", a.index_head_dim, every=rate))
        states = tuple(State(name, (rate, x)) for x in (d, a.index_head_dim) for name in ("overlap_kv", "overlap_gate"))
    return LayerCache(i, layer_type, "compressed", tuple(rows), lm.sliding_window, states=states)


def _none(lm: LanguageModel, i: int, layer_type: str) -> LayerCache:
    return LayerCache(i, layer_type, "none")


LAYER_BUILDERS: dict[str, Callable[[LanguageModel, int, str], LayerCache]] = {
    "full": _attention, "sliding": _attention, "chunked": _attention,
    "linear_attention": _gdn, "mamba2": _mamba2, "short_conv": _short_conv, "none": _none,
    "compressed_sparse": _compressed, "heavily_compressed": _compressed,
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
def _spans(lm: LanguageModel, kv) -> tuple[tuple[int, Row, int | None], ...]:
    """(bytes per row, a row of that kind, span) summed over the layers sharing a span and a row rule: computed
    once per model and KV type, so a request costs one term per distinct window / rate, not one per layer."""
    acc: dict[tuple[int | None, int, bool], tuple[int, Row]] = {}
    for layer in layer_caches(lm):
        for r in layer.rows:
            key = (layer.span, r.every, r.prefill_only)
            b, _ = acc.get(key, (0, r))
            acc[key] = (b + kv.bytes_for(r.elements), r)
    return tuple((b, r, span) for (span, _, _), (b, r) in acc.items())


def kv_bytes(lm: LanguageModel, kv, tokens: int, *, windows: bool = True) -> int:
    """KV bytes of one `tokens`-long sequence; `windows=False`: sliding/chunked layers hold every position
    (transformers right after the prefill), and prefill-only rows (DeepSeek-V4 compressor buffers) count."""
    return sum(b * r.positions(tokens, span, windows) for b, r, span in _spans(lm, kv))


@per_spec
def state_bytes_per_sequence(lm: LanguageModel, rule: StateRule) -> int:
    """Recurrent-state bytes one sequence holds over all layers, whatever its length."""
    return sum(layer.state_bytes(rule) for layer in layer_caches(lm))


@dataclass(frozen=True, slots=True, repr=False)
class CacheTotals:
    kv: int  # grows with tokens
    state: int  # grows with sequences


def cache_totals(lm: LanguageModel, kv, rule: StateRule, tokens: int, sequences: int, *,
                 windows: bool = True) -> CacheTotals:
    """KV for `sequences` sequences of `tokens` positions each, and their recurrent states."""
    return CacheTotals(sequences * kv_bytes(lm, kv, tokens, windows=windows),
                       sequences * state_bytes_per_sequence(lm, rule))


@per_spec
def kinds(lm: LanguageModel) -> tuple[frozenset[str], frozenset[str]]:
    """(every layer kind, the kinds that keep a recurrent state), once per model."""
    layers = layer_caches(lm)
    return frozenset(x.kind for x in layers), frozenset(x.kind for x in layers if x.states)


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
        key = f"{layer.layer_type} attention" if layer.kind in ("attention", "compressed") else layer.kind
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())
