"""The calculator's runtime option controls, generated from VramRequest's own fields (llama.cpp and vLLM flags,
transformers' BitsAndBytesConfig keywords), so the page's controls, their limits, help text and defaults cannot
drift from the API."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import cache

from annotated_types import Ge, Gt, Le
from pydantic.fields import FieldInfo

from app.estimator import VramRequest

# The blocks of VramRequest the two fieldsets show: first and last field of each marked block.
BLOCKS = {"llama.cpp": ("n_ctx", "mmproj"), "vllm": ("gpu_memory_utilization", "vllm_version"),
          "transformers": ("llm_int8_skip_modules", "llm_int8_skip_modules")}
LABELS = {"llama.cpp": "llama.cpp", "vllm": "vLLM", "transformers": "transformers + bitsandbytes"}
# Flags the page leaves to one shared control, so two controls can never disagree: vLLM's --kv-cache-dtype
# is the "KV-cache precision" select (fp8 there is kv_cache_dtype=fp8; the API takes either).
SHARED = {"kv_cache_dtype": "kv_cache"}


@dataclass(frozen=True)
class Control:
    """One form control: `kind` is number, select or text; `choices` are (value, label) for a select."""

    name: str
    kind: str
    help: str
    placeholder: str
    choices: tuple[tuple[str, str], ...] = ()
    min: str = ""
    max: str = ""
    step: str = ""
    pattern: str = ""


def _bare(annotation: object) -> object:
    """The field's type without `| None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return args[0] if len(args) == 1 else annotation
    return annotation


def _limits(info: FieldInfo) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in info.metadata:
        if isinstance(m, Ge | Gt):
            out["min"] = str(getattr(m, "ge", None) if isinstance(m, Ge) else m.gt)
        if isinstance(m, Le):
            out["max"] = str(m.le)
        if getattr(m, "pattern", None):
            out["pattern"] = m.pattern
    return out


def control(name: str, info: FieldInfo) -> Control:
    """The control for one VramRequest field; a blank choice or box always means the field's default."""
    bare, default = _bare(info.annotation), info.default
    shown = "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
    placeholder = f"default: {shown}" if shown else "default"
    base = {"name": name, "help": info.description or "", "placeholder": placeholder}
    if bare is bool:
        return Control(kind="select", choices=(("", placeholder), ("true", "true"), ("false", "false")), **base)
    if typing.get_origin(bare) is typing.Literal:
        values = tuple((str(v), str(v)) for v in typing.get_args(bare))
        return Control(kind="select", choices=(("", placeholder), *values), **base)
    limits = _limits(info)
    if bare is int:
        return Control(kind="number", step="1", **base, **limits)
    if bare is float:
        return Control(kind="number", step="any", **base, **limits)
    return Control(kind="text", **base, **limits)


@cache
def runtime_controls() -> dict[str, tuple[Control, ...]]:
    """{runtime: its controls in VramRequest's field order}."""
    names = list(VramRequest.model_fields)
    return {rt: tuple(control(n, VramRequest.model_fields[n])
                      for n in names[names.index(first):names.index(last) + 1] if n not in SHARED)
            for rt, (first, last) in BLOCKS.items()}
