"""The transformers module names of the estimator's linear tensors, for BitsAndBytesConfig(llm_int8_skip_modules).

transformers 5.25 (quantizers/quantizers_utils.py should_convert_module) leaves a module unconverted when a skip
pattern matches its full name (`model.language_model.layers.3.self_attn.q_proj`): from the start up to a module
boundary, as a regex from the start with that boundary, or as a suffix. So the names must be the class's own. They
are tabled here per family (text-only and vision classes apart), each held to the names transformers' classes
build on the meta device (model_specs/bnb/weights.json linear_modules; tests/test_bnb_weights.py). A family not
tabled here has no module names: a skip list for it is refused, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.estimator.params import Tensor
from app.estimator.spec import ModelSpec

# our per-layer tensor stems (GGUF names, app/estimator/params.py) -> the decoder layer's nn.Linear modules
_LLAMA = {"attn_q": ("self_attn.q_proj",), "attn_k": ("self_attn.k_proj",), "attn_v": ("self_attn.v_proj",),
          "attn_output": ("self_attn.o_proj",), "ffn_gate": ("mlp.gate_proj",), "ffn_up": ("mlp.up_proj",),
          "ffn_down": ("mlp.down_proj",)}
_SIGLIP = {"attn_qkv": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
           "attn_out": ("self_attn.out_proj",), "ffn_up": ("mlp.fc1",), "ffn_down": ("mlp.fc2",)}
_QWEN_VIT = {"attn_qkv": ("attn.qkv",), "attn_out": ("attn.proj",), "ffn_gate": ("mlp.gate_proj",),
             "ffn_up": ("mlp.up_proj",), "ffn_down": ("mlp.down_proj",)}


@dataclass(frozen=True, slots=True, repr=False)
class Naming:
    """Where a family's transformers class keeps its linears."""

    source: str  # the transformers 5.25 classes
    layers: str  # decoder layer i's module, "{i}" for its index
    blocks: Mapping[str, tuple[str, ...]]  # our stem within a layer -> its module(s) in the layer (fused: several)
    vision_layers: str = ""
    vision_blocks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # tensors outside the layers: our stem (or stem prefix ending in ".") -> the module (or module prefix)
    others: Mapping[str, str] = field(default_factory=lambda: {"output": "lm_head"})


# (family, whether the spec has a vision tower) -> naming
NAMINGS: dict[tuple[str, bool], Naming] = {
    ("Llama 3.1", False): Naming("LlamaForCausalLM", "model.layers.{i}", _LLAMA),
    ("Qwen3", False): Naming("Qwen3ForCausalLM, Qwen3MoeForCausalLM (experts are parameters, the router "
                             "is no nn.Linear)", "model.layers.{i}", _LLAMA),
    ("Mixtral", False): Naming("MixtralForCausalLM (experts are parameters)", "model.layers.{i}", _LLAMA),
    ("Gemma 3", True): Naming(
        "Gemma3ForConditionalGeneration (SigLIP: SiglipEncoderLayer; mm_input_projection_weight is a parameter)",
        "model.language_model.layers.{i}", _LLAMA, "model.vision_tower.encoder.layers.{i}", _SIGLIP),
    ("Qwen2.5-VL", True): Naming(
        "Qwen2_5_VLForConditionalGeneration", "model.language_model.layers.{i}", _LLAMA, "model.visual.blocks.{i}",
        _QWEN_VIT, {"output": "lm_head", "mm.merger.": "model.visual.merger."}),
    ("GLM-4.1V", True): Naming(
        "Glm4vForConditionalGeneration (mlp.gate_up_proj fused)", "model.language_model.layers.{i}",
        {**_LLAMA, "ffn_up": ("mlp.gate_up_proj",)}, "model.visual.blocks.{i}", _QWEN_VIT,
        {"output": "lm_head", "mm.merger.": "model.visual.merger."}),
    ("LFM2", True): Naming(
        "Lfm2VlForConditionalGeneration (Lfm2ShortConv in_proj/out_proj, Lfm2MLP w1/w3/w2; Siglip2 tower)",
        "model.language_model.layers.{i}",
        {"shortconv.in_proj": ("conv.in_proj",), "shortconv.out_proj": ("conv.out_proj",),
         "attn_q": ("self_attn.q_proj",), "attn_k": ("self_attn.k_proj",), "attn_v": ("self_attn.v_proj",),
         "attn_output": ("self_attn.out_proj",), "ffn_gate": ("feed_forward.w1",), "ffn_up": ("feed_forward.w3",),
         "ffn_down": ("feed_forward.w2",)},
        "model.vision_tower.encoder.layers.{i}", _SIGLIP,
        {"output": "lm_head", "v.patch_embd": "model.vision_tower.embeddings.patch_embedding",
         "mm.": "model.multi_modal_projector."}),
    ("Mistral 3", True): Naming(
        "Mistral3ForConditionalGeneration (PixtralTransformer: attention, feed_forward)",
        "model.language_model.layers.{i}", _LLAMA, "model.vision_tower.transformer.layers.{i}",
        {"attn_qkv": ("attention.q_proj", "attention.k_proj", "attention.v_proj"), "attn_out": ("attention.o_proj",),
         "ffn_gate": ("feed_forward.gate_proj",), "ffn_up": ("feed_forward.up_proj",),
         "ffn_down": ("feed_forward.down_proj",)},
        {"output": "lm_head", "mm.": "model.multi_modal_projector."}),
    ("Llama 4", True): Naming(
        "Llama4ForConditionalGeneration (no `model.` prefix; experts are parameters, the router subclasses "
        "nn.Linear and is not converted)", "language_model.model.layers.{i}",
        {**{k: v for k, v in _LLAMA.items() if k.startswith("attn_")},
         "ffn_gate_shexp": ("feed_forward.shared_expert.gate_proj",),
         "ffn_up_shexp": ("feed_forward.shared_expert.up_proj",),
         "ffn_down_shexp": ("feed_forward.shared_expert.down_proj",)},
        "vision_model.model.layers.{i}", {**_SIGLIP, "attn_out": ("self_attn.o_proj",)},
        {"output": "language_model.lm_head", "v.patch_embd": "vision_model.patch_embedding.linear",
         "mm.adapter.": "vision_model.vision_adapter.mlp.", "mm.linear_1": "multi_modal_projector.linear_1"}),
}


def naming(spec: ModelSpec) -> Naming | None:
    return NAMINGS.get((spec.family, spec.vision is not None))


def modelled() -> str:
    """The families whose module names are tabled, for messages."""
    return ", ".join(f + (" (vision)" if v else "") for f, v in NAMINGS)


def module_names(n: Naming, t: Tensor) -> tuple[str, ...] | None:
    """The nn.Linear module(s) tensor `t` is in the class (`t.modules` of them), or None if not tabled."""
    stem = t.name.removesuffix(".weight")
    for prefix, layers, blocks in ((f"blk.{t.layer}.", n.layers, n.blocks),
                                   (f"v.blk.{t.layer}.", n.vision_layers, n.vision_blocks)):
        if t.layer is not None and stem.startswith(prefix) and layers:
            mods = blocks.get(stem.removeprefix(prefix))
            names = tuple(f"{layers.format(i=t.layer)}.{m}" for m in mods) if mods else None
            return names if names and len(names) == t.modules else None
    for ours, theirs in n.others.items():
        if stem == ours or (ours.endswith(".") and stem.startswith(ours)):
            return (theirs + stem.removeprefix(ours),) if t.modules == 1 else None
    return None


_BOUNDARY = r"(?:(?<=\.)|(?=\.|$))"  # transformers 5.25 should_convert_module's module boundary


def skip_matcher(patterns: tuple[str, ...]):
    """transformers 5.25 should_convert_module, inverted: whether a module name is skipped (left 16-bit)."""
    compiled = [re.compile(rf"(?:{p}){_BOUNDARY}") for p in patterns]

    def skipped(name: str) -> bool:
        return any(c.match(name) or name.endswith(p) for c, p in zip(compiled, patterns, strict=True))
    return skipped
