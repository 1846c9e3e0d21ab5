"""Which weight format a checkpoint is stored in, from its config.json `quantization_config`.

Maps each `quant_method` (transformers' quantizers: gptq, awq, bitsandbytes, fp8, compressed-tensors,
mxfp4; vLLM's modelopt) onto a format slug of app.estimator.quantization.FORMATS; None means unquantized (the
dtype). Per-module lists (ignore, quantized_layers) are app.catalog.quant_layout's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.catalog.config import InvalidConfigValue
from app.estimator.errors import UnknownChoice

_Q = "quantization_config"


def _bits(q: dict[str, Any], *keys: str) -> Any:
    return next((q[k] for k in keys if q.get(k) is not None), None)


def _gptq(q: dict[str, Any]) -> str:
    bits = _bits(q, "bits")
    if bits not in (4, 8):
        raise InvalidConfigValue(f"{_Q}.bits", bits, "4 or 8 (GPTQ)")
    return f"gptq-int{bits}"


def _awq(q: dict[str, Any]) -> str:
    bits = _bits(q, "bits", "w_bit")
    if bits != 4:
        raise InvalidConfigValue(f"{_Q}.bits", bits, "4 (AWQ)")
    return "awq-int4"


def _bnb(q: dict[str, Any]) -> str:
    if q.get("load_in_4bit") is True:
        kind = q.get("bnb_4bit_quant_type", "fp4")
        if kind not in ("nf4", "fp4"):
            raise InvalidConfigValue(f"{_Q}.bnb_4bit_quant_type", kind, "nf4 or fp4")
        return f"bnb-{kind}"
    if q.get("load_in_8bit") is True:
        return "bnb-int8"
    raise InvalidConfigValue(f"{_Q}.load_in_4bit", q.get("load_in_4bit"), "load_in_4bit or load_in_8bit true")


def _fp8(q: dict[str, Any]) -> str:
    """DeepSeek-V3/R1 style: weight_block_size [128, 128] means one scale per 128x128 tile."""
    block = q.get("weight_block_size")
    if block is None:
        return "fp8"
    if block != [128, 128]:
        raise InvalidConfigValue(f"{_Q}.weight_block_size", block, "[128, 128] or absent")
    return "fp8-block128"


def _compressed(q: dict[str, Any]) -> str:
    """compressed-tensors: the weights scheme of the first config group (num_bits, type, strategy)."""
    groups = q.get("config_groups")
    group = next(iter(groups.values()), None) if isinstance(groups, dict) and groups else None
    weights = group.get("weights") if isinstance(group, dict) else None
    if not isinstance(weights, dict):
        raise InvalidConfigValue(f"{_Q}.config_groups", groups, "a group with a weights scheme")
    if (weights.get("num_bits"), weights.get("type"), weights.get("group_size")) == (4, "float", 16):
        # NVFP4 (llm-compressor presets NVFP4 / NVFP4A16): vLLM compressed_tensors.py _is_nvfp4_format; W4A4 when
        # the activations are NVFP4 too, else weight-only
        acts = group.get("input_activations") if isinstance(group, dict) else None
        w4a4 = isinstance(acts, dict) and (acts.get("num_bits"), acts.get("type")) == (4, "float")
        return "nvfp4" if w4a4 else "nvfp4-w4a16"
    key = (weights.get("num_bits"), weights.get("type"), weights.get("strategy"))
    table = {(8, "float", "tensor"): "fp8", (8, "float", "channel"): "fp8", (8, "float", "block"): "fp8-block128",
             (8, "int", "channel"): "int8", (4, "int", "channel"): "int4"}
    if key not in table:
        raise InvalidConfigValue(f"{_Q}.config_groups.weights", weights,
                                 "fp8 (tensor/channel/block), int8 or int4 per channel, or nvfp4 (float 4-bit, "
                                 "group_size 16)")
    return table[key]


def modelopt_algo(q: dict[str, Any]) -> str:
    """quant_algo of a ModelOpt config: top level (config.json) or under `quantization` (hf_quant_config.json),
    upper-cased as vLLM reads it (modelopt.py _extract_modelopt_quant_algo)."""
    inner = q.get("quantization")
    algo = (inner if isinstance(inner, dict) else q).get("quant_algo")
    return str(algo).upper() if algo is not None else ""


# ModelOpt quant_algo -> format (vLLM modelopt.py LINEAR_ALGOS + MIXED_PRECISION; FP8_PB_WO stores e4m3 weights
# and one fp32 scale per 128x128 block, KFp8Block128)
MODELOPT_FORMATS = {"NVFP4": "nvfp4", "W4A16_NVFP4": "nvfp4-w4a16", "FP8": "fp8-static",
                    "FP8_PB_WO": "fp8-block128", "MIXED_PRECISION": "modelopt-mixed"}


def _modelopt(q: dict[str, Any]) -> str:
    algo = modelopt_algo(q)
    if algo not in MODELOPT_FORMATS:
        raise InvalidConfigValue(f"{_Q}.quant_algo", algo or None, ", ".join(MODELOPT_FORMATS))
    return MODELOPT_FORMATS[algo]


QUANT_METHODS: dict[str, Callable[[dict[str, Any]], str]] = {
    "gptq": _gptq,
    "awq": _awq,
    "bitsandbytes": _bnb,
    "fp8": _fp8,
    "compressed-tensors": _compressed,
    "mxfp4": lambda q: "mxfp4",
    "modelopt": _modelopt,
}


def stored_group_size(config: dict[str, Any], fmt: str | None) -> int | None:
    """GPTQ / AWQ group_size (q_group_size in AutoAWQ's older configs) when it is not 128; None for 128 and for
    other formats."""
    if fmt not in ("gptq-int4", "gptq-int8", "awq-int4"):
        return None
    q = config[_Q]
    group = _bits(q, "group_size", "q_group_size")
    if group is None or group == 128:
        return None
    if not isinstance(group, int) or isinstance(group, bool) or not (group == -1 or group > 0):
        raise InvalidConfigValue(f"{_Q}.group_size", group, "a positive integer or -1 (one group per row)")
    return group


def stored_kv_cache(config: dict[str, Any]) -> str | None:
    """"fp8" where a ModelOpt quantization_config asks for an FP8 KV cache: kv_cache_scheme {dynamic false,
    num_bits 8, type float} or kv_cache_quant_algo FP8, top level or under `quantization` (vLLM
    utils/torch_utils.py get_kv_cache_quant_algo_string, the same in the 0.19.0, 0.32.0 and 0.34.0 wheels);
    other schemes (NVFP4 KV) are not modelled: None."""
    q = config.get(_Q)
    if not isinstance(q, dict) or not str(q.get("quant_method", "")).startswith("modelopt"):
        return None
    inner = q.get("quantization") if isinstance(q.get("quantization"), dict) else q
    algo = (inner.get("kv_cache_scheme") or q.get("kv_cache_scheme") or inner.get("kv_cache_quant_algo")
            or q.get("kv_cache_quant_algo"))
    if isinstance(algo, dict):
        fp8 = (algo.get("dynamic"), algo.get("num_bits"), algo.get("type")) == (False, 8, "float")
        return "fp8" if fp8 else None
    return "fp8" if isinstance(algo, str) and algo.lower() in ("fp8", "fp8_e4m3") else None


def stored_format(config: dict[str, Any]) -> str | None:
    """The format slug `config` says its weights are stored in, or None for the plain dtype."""
    q = config.get(_Q)
    if q is None:
        return None
    if not isinstance(q, dict):
        raise InvalidConfigValue(_Q, q, "an object with quant_method")
    method = q.get("quant_method")
    if not isinstance(method, str) or method not in QUANT_METHODS:
        raise UnknownChoice(f"config.{_Q}.quant_method", str(method)[:40], sorted(QUANT_METHODS))
    return QUANT_METHODS[method](q)
