"""Tensors of the token mixers that are not attention: Gated DeltaNet, Mamba2, short convolution.

Shapes follow the transformers modules (PyTorch order); names follow llama.cpp's GGUF tensor names
(gguf-py/gguf/constants.py: ssm_*, shortconv.*). A table keyed by the spec's layer type.
"""

from __future__ import annotations

from collections.abc import Callable

from app.estimator.params import Tensor, _linear, _norm
from app.estimator.spec import LanguageModel


def _vector(name: str, n: int, i: int) -> Tensor:
    return Tensor(name, (n,), "language", "norm", i)


def gdn(lm: LanguageModel, i: int) -> list[Tensor]:
    """transformers Qwen3_5GatedDeltaNet (= Qwen3NextGatedDeltaNet with in_proj_qkvz / in_proj_ba split):
    in_proj_qkv [2 key_dim + value_dim, hidden], in_proj_z [value_dim, hidden], in_proj_b and in_proj_a
    [value_heads, hidden], depthwise conv1d [conv_dim, 1, kernel] without bias, dt_bias and A_log
    [value_heads], RMSNormGated [value_head_dim], out_proj [hidden, value_dim]; no biases."""
    g = lm.linear_attention
    assert g is not None
    p, h = f"blk.{i}", lm.hidden
    value_dim = g.value_heads * g.value_head_dim
    return [
        *_linear(f"{p}.attn_qkv", g.conv_channels, h, False, "language", i),
        *_linear(f"{p}.attn_gate", value_dim, h, False, "language", i),
        *_linear(f"{p}.ssm_beta", g.value_heads, h, False, "language", i),
        *_linear(f"{p}.ssm_alpha", g.value_heads, h, False, "language", i),
        Tensor(f"{p}.ssm_conv1d.weight", (g.conv_channels, 1, g.conv_kernel), "language", "conv", i),
        _vector(f"{p}.ssm_dt.bias", g.value_heads, i),
        _vector(f"{p}.ssm_a", g.value_heads, i),
        *_norm(f"{p}.ssm_norm", g.value_head_dim, "rmsnorm", "language", i),
        *_linear(f"{p}.ssm_out", h, value_dim, False, "language", i),
    ]


def mamba2(lm: LanguageModel, i: int) -> list[Tensor]:
    """transformers NemotronHMamba2Mixer: in_proj [2 inner + 2 groups x state + heads, hidden] (use_bias),
    conv1d [conv_dim, 1, kernel] (+ bias with use_conv_bias), dt_bias, A_log and D [heads], gated RMSNorm
    [inner], out_proj [hidden, inner] (use_bias)."""
    m = lm.mamba
    assert m is not None
    p, h = f"blk.{i}", lm.hidden
    tensors = [*_linear(f"{p}.ssm_in", 2 * m.inner + 2 * m.groups * m.state_size + m.heads, h, m.proj_bias,
                        "language", i),
               Tensor(f"{p}.ssm_conv1d.weight", (m.conv_channels, 1, m.conv_kernel), "language", "conv", i)]
    if m.conv_bias:
        tensors.append(Tensor(f"{p}.ssm_conv1d.bias", (m.conv_channels,), "language", "bias", i))
    return [*tensors, _vector(f"{p}.ssm_dt.bias", m.heads, i), _vector(f"{p}.ssm_a", m.heads, i),
            _vector(f"{p}.ssm_d", m.heads, i), *_norm(f"{p}.ssm_norm", m.inner, "rmsnorm", "language", i),
            *_linear(f"{p}.ssm_out", h, m.inner, m.proj_bias, "language", i)]


def short_conv(lm: LanguageModel, i: int) -> list[Tensor]:
    """transformers Lfm2ShortConv: in_proj [3 hidden, hidden], depthwise conv [hidden, 1, conv_L_cache],
    out_proj [hidden, hidden], all with conv_bias."""
    c = lm.short_conv
    assert c is not None
    p, h = f"blk.{i}", lm.hidden
    tensors = [*_linear(f"{p}.shortconv.in_proj", 3 * h, h, c.bias, "language", i),
               Tensor(f"{p}.shortconv.conv.weight", (h, 1, c.conv_kernel), "language", "conv", i)]
    if c.bias:
        tensors.append(Tensor(f"{p}.shortconv.conv.bias", (h,), "language", "bias", i))
    return [*tensors, *_linear(f"{p}.shortconv.out_proj", h, h, c.bias, "language", i)]


def _compressor(lm: LanguageModel, i: int, prefix: str, head_dim: int, rate: int, overlap: bool) -> list[Tensor]:
    """DeepseekV4HCACompressor / CSACompressor / Indexer: kv_proj and gate_proj [width, hidden], position_bias
    [rate, width] (float32), kv_norm [head_dim]; width = head_dim, or 2 x head_dim with CSA's overlapping
    windows."""
    width = 2 * head_dim if overlap else head_dim
    return [*_linear(f"{prefix}_kv", width, lm.hidden, False, "language", i),
            *_linear(f"{prefix}_gate", width, lm.hidden, False, "language", i),
            Tensor(f"{prefix}_ape.weight", (rate, width), "language", "norm", i),
            *_norm(f"{prefix}_norm", head_dim, "rmsnorm", "language", i)]


def compressed_attention(lm: LanguageModel, i: int) -> list[Tensor]:
    """transformers DeepseekV4Attention (every layer): q_a_proj [q_lora_rank, hidden], q_a_norm, q_b_proj
    [heads x head_dim, q_lora_rank], kv_proj [head_dim, hidden], kv_norm, o_a_proj (grouped) [o_groups x
    o_lora_rank, heads x head_dim / o_groups], o_b_proj [hidden, o_groups x o_lora_rank], sinks [heads]; plus
    the compressor of CSA / HCA layers, and CSA's DeepseekV4Indexer (its compressor at index_head_dim, q_b_proj
    [index_heads x index_head_dim, q_lora_rank], scorer.weights_proj [index_heads, hidden])."""
    a = lm.compressed_attention
    assert a is not None
    p, h, d = f"blk.{i}", lm.hidden, lm.head_dim
    kind = lm.layer_types[i] if lm.layer_types is not None else "sliding"
    tensors = [*_linear(f"{p}.attn_q_a", a.q_lora_rank, h, False, "language", i),
               *_norm(f"{p}.attn_q_a_norm", a.q_lora_rank, "rmsnorm", "language", i),
               *_linear(f"{p}.attn_q_b", lm.heads * d, a.q_lora_rank, False, "language", i),
               *_linear(f"{p}.attn_kv", d, h, False, "language", i),
               *_norm(f"{p}.attn_kv_norm", d, "rmsnorm", "language", i),
               *_linear(f"{p}.attn_output_a", a.o_groups * a.o_lora_rank, lm.heads * d // a.o_groups, False,
                        "language", i),
               *_linear(f"{p}.attn_output_b", h, a.o_groups * a.o_lora_rank, False, "language", i),
               _vector(f"{p}.attn_sinks.weight", lm.heads, i)]
    rate = a.compress_rates.get(kind)  # type: ignore[call-overload]
    if rate is None:  # sliding: no compressor
        return tensors
    sparse = kind == "compressed_sparse"
    tensors += _compressor(lm, i, f"{p}.attn_compressor", d, rate, sparse)
    if sparse:
        x = a.index_head_dim
        tensors += _compressor(lm, i, f"{p}.indexer.compressor", x, rate, True)
        tensors += _linear(f"{p}.indexer.attn_q_b", a.index_heads * x, a.q_lora_rank, False, "language", i)
        tensors += _linear(f"{p}.indexer.proj", a.index_heads, h, False, "language", i)
    return tensors


def hyper_connection(lm: LanguageModel, name: str, i: int | None, outputs: int, scales: int) -> list[Tensor]:
    """transformers DeepseekV4HyperConnection (fn [outputs, hc_mult x hidden], base [outputs], scale [3]) and
    DeepseekV4HyperHead (hc_fn [hc_mult, hc_mult x hidden], hc_base [hc_mult], hc_scale [1]); float32."""
    n = lm.hyper_connections
    return [Tensor(f"{name}_fn.weight", (outputs, n * lm.hidden), "language", "norm", i),
            Tensor(f"{name}_base.weight", (outputs,), "language", "norm", i),
            Tensor(f"{name}_scale.weight", (scales,), "language", "norm", i)]


def layer_hyper_connections(lm: LanguageModel, i: int) -> list[Tensor]:
    """attn_hc and ffn_hc of one decoder layer: (2 + hc_mult) x hc_mult mixing weights each (pre, post, comb)."""
    n = lm.hyper_connections
    return [*hyper_connection(lm, f"blk.{i}.hc_attn", i, (2 + n) * n, 3),
            *hyper_connection(lm, f"blk.{i}.hc_ffn", i, (2 + n) * n, 3)]


MIXERS: dict[str, Callable[[LanguageModel, int], list[Tensor]]] = {
    "linear_attention": gdn, "mamba2": mamba2, "short_conv": short_conv,
    "compressed_sparse": compressed_attention, "heavily_compressed": compressed_attention,
}
