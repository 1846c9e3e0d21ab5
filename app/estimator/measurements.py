"""Measured GPU memory (model_specs/measurements/*.json) and its comparison with the estimator.

The harness (`python -m app.measure`) writes these files on a CUDA machine; the accuracy page and
the cross-check test read them. Nothing in them is typed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from app.estimator.estimate import estimate
from app.estimator.schema import VramRequest
from app.estimator.spec import ModelSpec

FORMAT = "vram-measurements/1"


class Device(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Device name as NVML reports it.")
    total_memory_bytes: int
    driver: str
    cuda: str
    torch: str
    transformers: str
    git_revision: str


class MeasuredCase(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    quantization: str
    context: int
    images: int
    batch: int
    runtime: str = "transformers"
    new_tokens: int = Field(description="Tokens generate() produced after the prompt.")
    weights_bytes: int = Field(description="torch.cuda.memory_allocated after loading the model.")
    peak_allocated_bytes: int = Field(description="torch.cuda.max_memory_allocated over the case.")
    peak_reserved_bytes: int = Field(description="torch.cuda.max_memory_reserved over the case.")
    device_used_bytes: int = Field(description="Device memory this process held at its peak (NVML).")


class MeasurementFile(BaseModel):
    format: str = FORMAT
    device: Device
    started_at: str
    duration_s: float
    log: str = Field(description="File name of the raw log beside this file.")
    cases: list[MeasuredCase]


@dataclass(frozen=True, repr=False)
class Comparison:
    case: MeasuredCase
    estimated_weights: int
    estimated_total: int

    @property
    def weights_error(self) -> float:
        return (self.estimated_weights - self.case.weights_bytes) / self.case.weights_bytes

    @property
    def total_error(self) -> float:
        return (self.estimated_total - self.case.device_used_bytes) / self.case.device_used_bytes

    @property
    def label(self) -> str:
        c = self.case
        return f"{c.model} {c.quantization} ctx={c.context} img={c.images} batch={c.batch}"


def compare(spec: ModelSpec, case: MeasuredCase) -> Comparison:
    """Our estimate for exactly the measured case (runtime transformers; the sequence as generated)."""
    req = VramRequest(model=case.model, quantization=case.quantization, context=case.context + case.new_tokens,
                      images=case.images, batch=case.batch, runtime=case.runtime)
    est = estimate(spec, req)
    return Comparison(case, est.breakdown.weights, est.total_bytes)


def card_naive_total(case: MeasuredCase, params: int, layers: int, kv_heads: int, head_dim: int) -> int:
    """What a calculator trusting a card would say: params x 2 B + MHA-sized KV, no images, no overhead."""
    return params * 2 + 2 * layers * kv_heads * head_dim * 2 * (case.context + case.new_tokens) * case.batch


def summary(errors: Sequence[float]) -> tuple[float, float]:
    """(median, max) of absolute relative errors."""
    a = sorted(abs(e) for e in errors)
    if not a:
        return (0.0, 0.0)
    mid = len(a) // 2
    median = a[mid] if len(a) % 2 else (a[mid - 1] + a[mid]) / 2
    return median, a[-1]
