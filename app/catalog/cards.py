"""The card of an imported model: the released facts, written from its config (no third-party card)."""

from __future__ import annotations

from app.estimator.params import count_active_parameters, count_parameters
from app.estimator.spec import Card, CardField, ModelSpec

CARD_SOURCE = "This catalog's own card, written from the released config.json (no third-party card)"
_ACTIVATION = {"swiglu": "SwiGLU", "geglu": "GeGLU (GELU-tanh)", "gelu": "GELU"}
_NORM = {"rmsnorm": "RMSNorm", "layernorm": "LayerNorm"}


def _billions(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def _context(tokens: int) -> str:
    return f"{tokens // 1024}K" if tokens % 1024 == 0 else f"{tokens:,}"


def _attention(spec: ModelSpec) -> str:
    lm = spec.language_model
    if lm.mla is not None:
        kind = "Multi-head Latent Attention (MLA)"
    elif lm.kv_heads == 1:
        kind = "Multi-Query Attention"
    elif lm.kv_heads < lm.heads:
        kind = "Grouped-Query Attention"
    else:
        kind = "Multi-Head Attention"
    if lm.sliding_window_layers:
        kind += f"; sliding window {lm.sliding_window:,} on {lm.sliding_window_layers} of {lm.layers} layers"
    return kind


def _architecture(spec: ModelSpec) -> str:
    moe = spec.language_model.moe
    if moe is None:
        return "Dense"
    shared = " + shared" if moe.shared_experts else ""
    return f"Mixture of Experts ({moe.experts} experts{shared}, {moe.experts_per_token} per token)"


def card_for(spec: ModelSpec) -> Card:
    """Card fields in the catalog's usual order, every value taken from the spec."""
    lm = spec.language_model
    params = count_parameters(spec)
    rows = [
        ("Parameters", _billions(params.total)), ("Context Length", _context(lm.max_context)),
        ("Modality", "Multimodal" if spec.vision else "Text"), ("Architecture", _architecture(spec)),
        ("License", spec.license or "-"), ("Release Date", spec.released or "-"), ("Knowledge Cutoff", "-"),
        ("Attention Structure", _attention(spec)), ("Hidden Dimension Size", str(lm.hidden)),
        ("Number of Layers", str(lm.layers)), ("Attention Heads", str(lm.heads)),
        ("Key-Value Heads", str(lm.kv_heads)), ("Activation Function", _ACTIVATION[lm.ffn_kind]),
        ("Normalization", _NORM[lm.norm]), ("Position Embedding", "Rotary (RoPE)"),
    ]
    if lm.moe is not None:  # active parameters right after the total
        rows.insert(1, ("Active Parameters", _billions(count_active_parameters(spec))))
    what = "mixture-of-experts" if lm.moe else "dense"
    modality = "multimodal (text and images)" if spec.vision else "text"
    description = [f"{spec.name} is a {what} {modality} model of the {spec.family} family"
                   f"{' by ' + spec.vendor if spec.vendor else ''}, with {_billions(params.total)} parameters "
                   f"and a {_context(lm.max_context)}-token context as configured."]
    if lm.generic:
        description.append(lm.generic)
    return Card(source=CARD_SOURCE, fields=[CardField(label=k, value=v) for k, v in rows], description=description)
