"""The released architecture from our spec, with random weights, built where the caller says (GPU, CPU
or the meta device). Language models use transformers' native classes; GLM-4V-9B's vision tower and
projector are our own module with the shapes of THUDM/glm-4v-9b visual.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import transformers
from torch import nn

from app.estimator.spec import LanguageModel, ModelSpec, VisionTower

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def causal_lm_class(lm: LanguageModel) -> str:
    """The transformers class that matches this decoder exactly."""
    if lm.moe or lm.mla or lm.ffn_kind != "swiglu" or lm.linear_bias:
        raise NotImplementedError("no native transformers class is mapped for this architecture")
    if lm.norms_per_layer == 4:
        return "Glm4ForCausalLM"  # GLM-4-0414: sandwich norms, fused gate_up
    if lm.fused_gate_up:
        return "GlmForCausalLM"  # GLM-4 / GLM-4V language model (fused gate_up, partial rotary)
    if lm.qkv_bias:
        raise NotImplementedError("Llama-style decoder with biases only on Q/K/V")
    return "LlamaForCausalLM"


def causal_lm_config(lm: LanguageModel) -> transformers.PretrainedConfig:
    name = causal_lm_class(lm)
    common = dict(vocab_size=lm.vocab, hidden_size=lm.hidden, intermediate_size=lm.ffn,
                  num_hidden_layers=lm.layers, num_attention_heads=lm.heads, num_key_value_heads=lm.kv_heads,
                  head_dim=lm.head_dim, max_position_embeddings=lm.max_context,
                  tie_word_embeddings=lm.tied_embeddings, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    if name == "LlamaForCausalLM":
        return transformers.LlamaConfig(**common)
    config_cls = transformers.Glm4Config if name == "Glm4ForCausalLM" else transformers.GlmConfig
    return config_cls(**common, attention_bias=lm.qkv_bias)


class VisionBlock(nn.Module):
    """EVA2-CLIP transformer block: pre-LayerNorm attention (fused QKV) and a GELU MLP."""

    def __init__(self, v: VisionTower) -> None:
        super().__init__()
        self.heads = v.heads
        self.input_layernorm = nn.LayerNorm(v.hidden)
        self.query_key_value = nn.Linear(v.hidden, 3 * v.hidden, bias=v.qkv_bias)
        self.dense = nn.Linear(v.hidden, v.hidden, bias=v.linear_bias)
        self.post_attention_layernorm = nn.LayerNorm(v.hidden)
        self.fc1 = nn.Linear(v.hidden, v.mlp, bias=v.linear_bias)
        self.fc2 = nn.Linear(v.mlp, v.hidden, bias=v.linear_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        qkv = self.query_key_value(self.input_layernorm(x)).view(b, t, 3, self.heads, h // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, h)
        x = x + self.dense(attn)
        return x + self.fc2(F.gelu(self.fc1(self.post_attention_layernorm(x))))


class Glm4vVision(nn.Module):
    """GLM-4V-9B's vision tower and projector: 1602 language-model embeddings per 1120x1120 image."""

    def __init__(self, v: VisionTower, lm: LanguageModel) -> None:
        super().__init__()
        if v.mlp_kind != "gelu" or v.norm != "layernorm" or not v.cls_token:
            raise NotImplementedError("this module builds EVA2-CLIP-style towers (GLM-4V-9B)")
        self.grid = v.image_size // v.patch_size
        self.patch = nn.Conv2d(v.in_channels, v.hidden, v.patch_size, v.patch_size, bias=v.patch_bias)
        self.cls = nn.Parameter(torch.zeros(1, v.hidden))
        self.position = nn.Embedding(v.position_embeddings, v.hidden)
        self.blocks = nn.ModuleList(VisionBlock(v) for _ in range(v.layers))
        self.conv = nn.Conv2d(v.hidden, lm.hidden, 2, 2)  # 80x80 -> 40x40
        self.linear_proj = nn.Linear(lm.hidden, lm.hidden, bias=False)
        self.norm1 = nn.LayerNorm(lm.hidden)
        self.gate_proj = nn.Linear(lm.hidden, lm.ffn, bias=False)
        self.dense_h_to_4h = nn.Linear(lm.hidden, lm.ffn, bias=False)
        self.dense_4h_to_h = nn.Linear(lm.ffn, lm.hidden, bias=False)
        self.boi = nn.Parameter(torch.zeros(1, 1, lm.hidden))
        self.eoi = nn.Parameter(torch.zeros(1, 1, lm.hidden))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch(pixels).flatten(2).transpose(1, 2)  # [B, grid^2, hidden]
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1) + self.position.weight
        for block in self.blocks:
            x = block(x)
        x = x[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, self.grid, self.grid)
        x = self.conv(x).flatten(2).transpose(1, 2)  # [B, (grid/2)^2, lm hidden]
        x = F.gelu(self.norm1(self.linear_proj(x)))
        x = self.dense_4h_to_h(F.silu(self.gate_proj(x)) * self.dense_h_to_4h(x))
        return torch.cat([self.boi.expand(x.shape[0], -1, -1), x, self.eoi.expand(x.shape[0], -1, -1)], dim=1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(spec: ModelSpec, device: str | torch.device, dtype: str) -> tuple[nn.Module, nn.Module | None]:
    """(causal LM, vision tower or None) with random weights, allocated directly on `device` in `dtype`."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dtype])
    try:
        with torch.device(device):
            config = causal_lm_config(spec.language_model)
            lm = getattr(transformers, causal_lm_class(spec.language_model))(config)
            vision = Glm4vVision(spec.vision, spec.language_model) if spec.vision is not None else None
    finally:
        torch.set_default_dtype(previous)
    lm.eval()
    if vision is not None:
        vision.eval()
    return lm, vision
