"""What a runtime's startup log says: figures with their unit and line, settings, and what was missing.

Units as the runtimes print them: llama.cpp MiB (2^20 B); vLLM GiB (2^30 B; V0 prints "GB" for the same
GiB figure, vLLM worker/model_runner.py formats `bytes / 2**30`). Bytes are exact to the printed precision:
`bytes` is the printed decimal times the unit, `rounding_bytes` half a unit of the last printed digit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

MAX_LOG_BYTES = 2 * 1024 * 1024  # the API and the page refuse longer logs (413)
UNIT_BYTES = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "GB": 1 << 30}

Scalar = str | int | float | bool


class Figure(BaseModel):
    """One number the runtime printed."""

    key: str = Field(description="What it measures: model_buffer, kv_buffer, compute_buffer, weights, ...")
    device: str | None = Field(None, description="Backend buffer or rank it belongs to (CUDA0, CUDA_Host, CPU, TP1).")
    printed: str = Field(description="The number exactly as printed.")
    unit: str = Field(description="Unit as printed: MiB, GiB, GB (= GiB in vLLM), tokens, x, blocks.")
    bytes: int | None = Field(None, description="printed x unit, for memory figures.")
    rounding_bytes: int | None = Field(
        None, description="Half a unit of the last printed digit: |true - bytes| <= this.")
    line: int = Field(description="1-based line number in the pasted log.")

    @property
    def value(self) -> Decimal:
        return Decimal(self.printed.replace(",", ""))


class Setting(BaseModel):
    """One setting or metadata value the log states."""

    key: str
    value: Scalar
    line: int


class ParsedLog(BaseModel):
    """Everything recognised in one log; `missing` names what a full startup log would also have said."""

    runtime: Literal["llama.cpp", "vllm"] | None = Field(description="Which runtime wrote it (None: not recognised).")
    version: str | None = Field(None, description="Runtime version or build, when printed.")
    settings: dict[str, Setting] = Field(default_factory=dict)
    figures: list[Figure] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list, description="Expected parts this log does not contain.")
    notes: list[str] = Field(default_factory=list)
    lines: int = Field(0, description="Lines read.")

    def setting(self, key: str, default: Scalar | None = None) -> Scalar | None:
        s = self.settings.get(key)
        return default if s is None else s.value

    def first(self, key: str, device: str | None = None) -> Figure | None:
        return next((f for f in self.figures if f.key == key and (device is None or f.device == device)), None)

    def all(self, key: str) -> list[Figure]:
        return [f for f in self.figures if f.key == key]


def figure(key: str, printed: str, unit: str, line: int, device: str | None = None) -> Figure:
    """A figure with its bytes exact to the printed precision (memory units only)."""
    per = UNIT_BYTES.get(unit)
    if per is None:
        return Figure(key=key, device=device, printed=printed, unit=unit, line=line)
    d = Decimal(printed.replace(",", ""))
    exp = d.as_tuple().exponent
    half_digit = Decimal(1).scaleb(exp if isinstance(exp, int) else 0) / 2
    return Figure(key=key, device=device, printed=printed, unit=unit, line=line,
                  bytes=int((d * per).to_integral_value()), rounding_bytes=int((half_digit * per).to_integral_value()))
