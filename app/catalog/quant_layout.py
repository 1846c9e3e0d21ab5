"""Which linear weights a quantized checkpoint stores in which scheme, from its quantization_config's per-module
lists, as vLLM reads them: the spec's `stored_schemes`.

* ModelOpt (quant_method "modelopt"): every linear, lm_head included, takes the checkpoint's quant_algo unless a
  pattern of `ignore` (config.json) / `exclude_modules` (hf_quant_config.json) matches its module name
  (fnmatch; a trailing `name*` also covers the module itself); MIXED_PRECISION takes each module's quant_algo
  from `quantized_layers` and leaves modules not listed unquantized. Vision towers are never quantized
  (vllm/model_executor/layers/quantization/modelopt.py ModelOptQuantConfigBase.is_layer_excluded,
  get_quant_method, ModelOptMixedPrecisionConfig._resolve_quant_algo).
* compressed-tensors: linears of the decoder are quantized unless `ignore` names them (exact names, or `re:`
  regular expressions: compressed_tensors.utils.match).

Our tensors carry GGUF names (params.py); HF_MODULES maps each decoder linear to the checkpoint's module name,
so the config's own patterns are matched against the names it was written for. The result is collapsed over
layers (`blk.*.attn_q.weight`) where every layer holding that tensor agrees.
"""

from __future__ import annotations

import re
from collections import defaultdict
from fnmatch import fnmatchcase
from typing import Any

from app.catalog.config import InvalidConfigValue
from app.estimator.params import Tensor

_Q = "quantization_config"

# GGUF tensor stem (after blk.N.) -> module under the checkpoint's layers.N. (transformers modeling files:
# LlamaAttention / Gemma4TextAttention q_proj..o_proj, *MLP gate/up/down_proj, Qwen3_5GatedDeltaNet in_proj_qkv,
# in_proj_z, in_proj_b, in_proj_a, out_proj; llama.cpp gguf-py tensor_mapping.py for the GGUF side)
HF_MODULES: dict[str, str] = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    "ffn_gate_shexp": "mlp.shared_expert.gate_proj", "ffn_up_shexp": "mlp.shared_expert.up_proj",
    "ffn_down_shexp": "mlp.shared_expert.down_proj",
    "ffn_gate_exps": "mlp.experts.gate_proj", "ffn_up_exps": "mlp.experts.up_proj",
    "ffn_down_exps": "mlp.experts.down_proj",
}
# Gated DeltaNet layers (MIXERS["linear_attention"]) reuse GGUF stems attention uses elsewhere
GDN_MODULES: dict[str, str] = {
    "attn_qkv": "linear_attn.in_proj_qkv", "attn_gate": "linear_attn.in_proj_z", "ssm_beta": "linear_attn.in_proj_b",
    "ssm_alpha": "linear_attn.in_proj_a", "ssm_out": "linear_attn.out_proj",
}


def _layers_prefix(config: dict[str, Any]) -> str:
    """model.language_model. for multimodal wrappers (a text_config beside a vision_config), else model."""
    return "model.language_model." if isinstance(config.get("text_config"), dict) else "model."


def hf_module(t: Tensor, config: dict[str, Any], gdn_layers: set[int]) -> str | None:
    """The checkpoint's module name of language linear `t`, or None where HF_MODULES has no entry."""
    if t.kind == "output":
        return "lm_head"
    if t.layer is None or not t.name.startswith(f"blk.{t.layer}."):
        return None
    stem = t.name.removeprefix(f"blk.{t.layer}.").removesuffix(".weight")
    table = GDN_MODULES if t.layer in gdn_layers else {}
    module = table.get(stem) or HF_MODULES.get(stem)
    return None if module is None else f"{_layers_prefix(config)}layers.{t.layer}.{module}"


def _modelopt_excluded(name: str, patterns: list[str]) -> bool:
    for p in patterns:
        if name == p or fnmatchcase(name, p):
            return True
        if len(p) >= 2 and p.endswith("*") and p[-2] != "." and (name == p[:-1] or fnmatchcase(name, p[:-1] + ".*")):
            return True
    return False


def _ct_ignored(name: str, patterns: list[str]) -> bool:
    return any(re.fullmatch(p[3:], name) if p.startswith("re:") else name == p for p in patterns)


def _list(q: dict[str, Any], key: str) -> list[str]:
    value = q.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidConfigValue(f"{_Q}.{key}", value, "a list of module names or patterns")
    return value


MODELOPT_SCHEMES = {"NVFP4": "nvfp4", "W4A16_NVFP4": "nvfp4-w4a16", "FP8": "fp8-static"}


def _modelopt_patterns(q: dict[str, Any]) -> list[str]:
    """`ignore` (config.json) or, in the hf_quant_config.json form, quantization.exclude_modules (vLLM
    ModelOptQuantConfigBase.from_config)."""
    inner = q.get("quantization")
    return _list(inner, "exclude_modules") if isinstance(inner, dict) else _list(q, "ignore")


def _modelopt_scheme(name: str, q: dict[str, Any], algo: str) -> str:
    if _modelopt_excluded(name, _modelopt_patterns(q)):
        return "unquantized"
    if algo != "MIXED_PRECISION":
        return MODELOPT_SCHEMES[algo]
    layers = q.get("quantized_layers")
    if not isinstance(layers, dict):
        raise InvalidConfigValue(f"{_Q}.quantized_layers", layers, "an object of module -> {quant_algo}")
    entry = layers.get(name)
    if entry is None:
        return "unquantized"
    module_algo = str(entry.get("quant_algo", "")).upper() if isinstance(entry, dict) else ""
    if module_algo not in MODELOPT_SCHEMES:
        raise InvalidConfigValue(f"{_Q}.quantized_layers.{name}.quant_algo", module_algo,
                                 ", ".join(MODELOPT_SCHEMES))
    return MODELOPT_SCHEMES[module_algo]


def stored_schemes(config: dict[str, Any], fmt: str, algo: str | None,
                   tensors: list[Tensor], gdn_layers: set[int]) -> dict[str, str] | None:
    """Tensor name (or glob over layers) -> scheme for the language linears the config places itself; None when
    the format's own rule covers every tensor (no per-module list in the config)."""
    q = config[_Q]
    method = q.get("quant_method")
    modelopt = method == "modelopt"
    if not modelopt and not (method == "compressed-tensors" and fmt.startswith("nvfp4") and _list(q, "ignore")):
        return None
    found: dict[str, str] = {}
    for t in tensors:
        if t.part != "language" or t.kind not in ("linear", "output"):
            continue
        name = hf_module(t, config, gdn_layers)
        if name is None:
            if modelopt:  # ModelOpt quantizes every linear: a tensor we cannot name cannot be placed
                raise InvalidConfigValue(_Q, f"module of {t.name}", "a model whose linear modules this calculator "
                                         "can name (HF_MODULES in app/catalog/quant_layout.py)")
            continue
        if modelopt:
            found[t.name] = _modelopt_scheme(name, q, algo or "")
        else:
            found[t.name] = "unquantized" if _ct_ignored(name, _list(q, "ignore")) else fmt
    return _collapse(found)


def _collapse(found: dict[str, str]) -> dict[str, str]:
    """blk.N.x -> blk.*.x where every layer holding x has one scheme."""
    by_stem: dict[str, dict[str, str]] = defaultdict(dict)
    out: dict[str, str] = {}
    for name, scheme in found.items():
        m = re.fullmatch(r"blk\.(\d+)\.(.+)", name)
        if m:
            by_stem[m.group(2)][m.group(1)] = scheme
        else:
            out[name] = scheme
    for stem, layers in by_stem.items():
        if len(set(layers.values())) == 1:
            out[f"blk.*.{stem}"] = next(iter(layers.values()))
        else:
            out.update({f"blk.{i}.{stem}": s for i, s in sorted(layers.items(), key=lambda kv: int(kv[0]))})
    return dict(sorted(out.items()))
