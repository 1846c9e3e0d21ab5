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


MIXERS: dict[str, Callable[[LanguageModel, int], list[Tensor]]] = {
    "linear_attention": gdn, "mamba2": mamba2, "short_conv": short_conv,
}
