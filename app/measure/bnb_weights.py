"""python -m app.measure bnb-weights: the bytes bitsandbytes stores for a catalog model that transformers loads with
BitsAndBytesConfig, as ground truth for our bnb formats (model_specs/bnb/weights.json; tests/test_bnb_weights.py).

    /tmp/bnbvenv/bin/python -m app.measure bnb-weights           # a python with bitsandbytes, torch and transformers

The python must have bitsandbytes (0.50.2 was used: its CPU backend quantizes); the project's lock does not carry
it, so the table is written once and committed. How, for each case and each format:

1. transformers builds the model class from the catalog's config.json on the meta device (dtype bfloat16), and the
   bitsandbytes quantizer transformers picks for BitsAndBytesConfig(load_in_4bit / load_in_8bit, ...) runs its own
   `preprocess_model` on it, as from_pretrained does (not pre-quantized: no module patching), whose
   `_process_model_before_weight_loading` runs `get_modules_to_not_convert` (tied weights, the module of the last
   parameter, get_output_embeddings(), llm_int8_skip_modules, _keep_in_fp32_modules) and `replace_with_bnb_linear`
   (every module whose type is exactly nn.Linear, or Conv1D, becomes Linear4bit / Linear8bitLt).
2. For each distinct (out, in) of the replaced modules, bitsandbytes quantizes one real bfloat16 tensor of that shape
   on the CPU (Params4bit / Int8Params, as their .to(device) does), and the bytes of every tensor the quantized
   parameter holds are summed (the packed weight; QuantState absmax, code, offset and the nested state2 absmax and
   code for double quantization; CB/SCB for int8), distinct storages counted once.
   Each case also lists its nn.Linear modules by name (layer indices as N): the names llm_int8_skip_modules matches.
4. SKIPS: a few cases measured again with llm_int8_skip_modules given (then transformers adds none of its
   defaults), for bnb-int8 and bnb-nf4.
3. Every other parameter (norms, embeddings, the modules left unconverted, the bnb modules' biases, MoE expert
   tensors that are parameters rather than nn.Linear modules) stays in the load dtype: 2 bytes per element.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from collections import Counter
from pathlib import Path

from app.catalog import SPECS_DIR

OUT = SPECS_DIR / "bnb" / "weights.json"

# case -> (catalog slug, config.json folder under model_specs/configs or a transformers config class whose defaults
# are the released model, the Auto class the card loads it with)
CASES: dict[str, tuple[str, str, str]] = {
    "llama-3.1-8b-instruct": ("llama-3.1-8b-instruct", "llama-3.1-8b-instruct", "AutoModelForCausalLM"),
    "qwen3-8b": ("qwen3-8b", "qwen3-8b", "AutoModelForCausalLM"),
    "qwen3-30b-a3b": ("qwen3-30b-a3b", "qwen3-30b-a3b", "AutoModelForCausalLM"),
    "mixtral-8x7b-v0.1": ("mixtral-8x7b-v0.1", "mixtral-8x7b-v0.1", "AutoModelForCausalLM"),
    "gemma-3-4b-it": ("gemma-3-4b-it", "gemma-3-4b-it", "AutoModelForImageTextToText"),
    "qwen2.5-vl-7b-instruct": ("qwen2.5-vl-7b-instruct", "qwen2.5-vl-7b-instruct", "AutoModelForImageTextToText"),
    "glm-4.1v-9b-thinking": ("glm-4.1v-9b-thinking", "class:Glm4vConfig", "AutoModelForImageTextToText"),
    "lfm2.5-vl-1.6b": ("lfm2.5-vl-1.6b", "lfm2.5-vl-1.6b", "AutoModelForImageTextToText"),
    # the copied config.json says model_type "ministral3" (transformers reads that as the text-only
    # Ministral3Config); its architectures say Mistral3ForConditionalGeneration, whose config class is built here
    "ministral-3-3b-instruct-2512": ("ministral-3-3b-instruct-2512", "Mistral3Config:ministral-3-3b-instruct-2512",
                                     "AutoModelForImageTextToText"),
    "llama-4-scout-17b-16e-instruct": ("llama-4-scout-17b-16e-instruct", "llama-4-scout-17b-16e-instruct",
                                       "AutoModelForImageTextToText"),
}

# llm_int8_skip_modules given explicitly (BitsAndBytesConfig): transformers 5.25 get_modules_to_not_convert then
# leaves out its defaults (tied weights, output embeddings, the last module) and skips a module whose full name
# matches a pattern (quantizers_utils.should_convert_module: a prefix up to a module boundary, a regex from the
# start, or a suffix). name -> (case, llm_int8_skip_modules)
SKIPS: dict[str, tuple[str, list[str]]] = {
    "llama-3.1-8b-instruct mlp": ("llama-3.1-8b-instruct", ["mlp"]),  # matches only the MLP modules themselves
    "llama-3.1-8b-instruct .*self_attn": ("llama-3.1-8b-instruct", [r".*self_attn", "lm_head"]),
    "qwen3-8b layer 0, down_proj": ("qwen3-8b", ["model.layers.0", "down_proj"]),
    "gemma-3-4b-it vision": ("gemma-3-4b-it", ["lm_head", "model.vision_tower", "model.multi_modal_projector"]),
    "qwen2.5-vl-7b-instruct visual": ("qwen2.5-vl-7b-instruct", ["visual"]),
    "qwen2.5-vl-7b-instruct model.visual": ("qwen2.5-vl-7b-instruct", ["model.visual", "lm_head"]),
    "lfm2.5-vl-1.6b q_proj": ("lfm2.5-vl-1.6b", ["lm_head", "q_proj"]),
    "llama-4-scout-17b-16e-instruct vision": ("llama-4-scout-17b-16e-instruct",
                                              ["language_model.lm_head", "vision_model", "multi_modal_projector"]),
}
SKIP_FORMATS = ("bnb-int8", "bnb-nf4")

# our format slug -> BitsAndBytesConfig keyword arguments (the cards' snippets; bnb_4bit_compute_dtype only sets the
# matmul dtype, not what is stored)
FORMATS: dict[str, dict] = {
    "bnb-int8": {"load_in_8bit": True},
    "bnb-nf4": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"},
    "bnb-fp4": {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"},
    "bnb-nf4-dq": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True},
}


def _config(source: str):
    import transformers

    if source.startswith("class:"):
        return getattr(transformers, source.removeprefix("class:"))()
    if ":" in source:  # ConfigClass:folder, the folder's config.json read by that class
        cls, folder = source.split(":")
        data = json.loads((SPECS_DIR / "configs" / folder / "config.json").read_text())
        data.pop("model_type", None)
        return getattr(transformers, cls)(**data)
    return transformers.AutoConfig.from_pretrained(str(SPECS_DIR / "configs" / source))


def _tensors(obj, seen: dict[int, int]) -> None:
    """Every tensor reachable from a quantized parameter and its quant state, by storage."""
    import torch
    from bitsandbytes.functional import QuantState

    if isinstance(obj, torch.Tensor):
        seen[obj.untyped_storage().data_ptr()] = obj.untyped_storage().nbytes()
    elif isinstance(obj, QuantState):
        for v in vars(obj).values():
            _tensors(v, seen)


def quantized_bytes(shape: tuple[int, int], fmt: dict) -> dict[str, int]:
    """bitsandbytes' stored bytes of one bfloat16 weight of `shape`, quantized on the CPU, per tensor."""
    import bitsandbytes as bnb
    import torch

    torch.manual_seed(0)
    w = torch.randn(shape, dtype=torch.bfloat16)
    parts: dict[str, int] = {}
    if fmt.get("load_in_8bit"):
        p = bnb.nn.Int8Params(w.half(), requires_grad=False, has_fp16_weights=False)._quantize("cpu")
        named = {"CB": p.CB, "SCB": p.SCB, "data": p.data}
    else:
        p = bnb.nn.Params4bit(w, requires_grad=False, quant_type=fmt["bnb_4bit_quant_type"],
                              compress_statistics=fmt.get("bnb_4bit_use_double_quant", False),
                              quant_storage=torch.uint8)._quantize("cpu")
        qs = p.quant_state
        named = {"weight": p.data, "absmax": qs.absmax, "code": qs.code, "offset": qs.offset}
        if qs.state2 is not None:
            named |= {"nested_absmax": qs.state2.absmax, "nested_code": qs.state2.code,
                      "nested_offset": qs.state2.offset}
    seen: dict[int, int] = {}
    for name, t in named.items():
        if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in seen:
            seen[t.untyped_storage().data_ptr()] = 0
            parts[f"{name} {str(t.dtype).removeprefix('torch.')}"] = t.untyped_storage().nbytes()
    every: dict[int, int] = {}  # nothing the quant state holds is left out of `named`
    _tensors(p.data, every)
    if not fmt.get("load_in_8bit"):
        _tensors(p.quant_state, every)
    else:
        _tensors(p.SCB, every)
    assert sum(every.values()) == sum(parts.values()), (every, parts)
    return parts


def _model(case: str):
    import torch
    import transformers

    _, source, auto = CASES[case]
    with torch.device("meta"):
        return getattr(transformers, auto).from_config(_config(source), dtype=torch.bfloat16)


def linear_modules(case: str) -> list[list]:
    """[name with layer indices as N, out, in, modules] of every module replace_with_bnb_linear may swap (type
    exactly nn.Linear; none of these classes has Conv1D), before any is skipped: what llm_int8_skip_modules names."""
    import re

    import torch

    rows: Counter[tuple[str, int, int]] = Counter()
    for name, module in _model(case).named_modules():
        if type(module) is torch.nn.Linear:
            rows[(re.sub(r"\.\d+\.", ".N.", name), module.out_features, module.in_features)] += 1
    return [[n, o, i, c] for (n, o, i), c in rows.items()]


def measure(case: str, slug_fmt: str, skip: list[str] | None = None) -> dict:
    import torch
    import transformers
    from bitsandbytes.nn import Linear4bit, Linear8bitLt
    from transformers.quantizers import AutoHfQuantizer

    model = _model(case)
    qcfg = transformers.BitsAndBytesConfig(**FORMATS[slug_fmt], llm_int8_skip_modules=skip)
    quantizer = AutoHfQuantizer.from_config(qcfg, pre_quantized=False)
    quantizer.preprocess_model(model, dtype=torch.bfloat16, device_map=None)  # as from_pretrained calls it
    shapes: Counter[tuple[int, int]] = Counter()
    bnb_weights: set[str] = set()
    kept_linears: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, Linear4bit | Linear8bitLt):
            shapes[(module.out_features, module.in_features)] += 1
            bnb_weights.add(f"{name}.weight")
        elif type(module) is torch.nn.Linear:
            kept_linears.append(name)
    kept = sum(p.numel() for n, p in model.named_parameters() if n not in bnb_weights)
    per_shape = {s: quantized_bytes(s, FORMATS[slug_fmt]) for s in sorted(shapes)}
    quantized = sum(sum(per_shape[s].values()) * n for s, n in shapes.items())
    return {
        "modules_to_not_convert": sorted(quantizer.modules_to_not_convert),
        "keep_in_fp32_modules": sorted(model._keep_in_fp32_modules or []),
        "linears_left_16bit": kept_linears,
        "quantized": [{"shape": list(s), "count": n, "bytes": per_shape[s]} for s, n in sorted(shapes.items())],
        "quantized_bytes": quantized,
        "elements_16bit": kept,
        "total_bytes": quantized + 2 * kept,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m app.measure bnb-weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=sorted(CASES))
    p.add_argument("--skip-only", nargs="*", choices=sorted(SKIPS), help="measure these llm_int8_skip_modules cases")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    import bitsandbytes
    import torch
    import transformers

    started = dt.datetime.now(dt.UTC)
    cases = {}
    for case in args.only or CASES:
        slug = CASES[case][0]
        cases[case] = {"model": slug, "config": CASES[case][1], "auto_class": CASES[case][2],
                       "linear_modules": linear_modules(case), "formats": {f: measure(case, f) for f in FORMATS}}
        print(case, {f: v["total_bytes"] for f, v in cases[case]["formats"].items()}, file=sys.stderr)
    skips = {}
    for name in SKIPS if args.skip_only is None else args.skip_only:
        case, skip = SKIPS[name]
        skips[name] = {"case": case, "model": CASES[case][0], "llm_int8_skip_modules": skip,
                       "formats": {f: measure(case, f, skip) for f in SKIP_FORMATS}}
        print(name, {f: v["total_bytes"] for f, v in skips[name]["formats"].items()}, file=sys.stderr)
    doc = {
        "command": "python -m app.measure bnb-weights" + (f" --only {' '.join(args.only)}" if args.only else "")
                   + (f" --skip-only {' '.join(args.skip_only)}" if args.skip_only is not None else ""),
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {"bitsandbytes": bitsandbytes.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "python": platform.python_version()},
        "how": "transformers' bnb quantizer on the meta-device model; bitsandbytes quantizes one real bf16 tensor per "
               "distinct shape on the CPU; everything else 2 bytes per element (app/measure/bnb_weights.py)",
        "bnb_config": FORMATS,
        "cases": cases,
        "skip_modules": skips,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
