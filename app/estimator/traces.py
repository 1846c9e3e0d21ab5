"""Traced allocated peaks (model_specs/traces/*.json) and their comparison with the estimator.

`python -m app.measure trace` writes these files: transformers' real model classes run the first two
steps of generate() on fake tensors while torch's MemTracker follows every allocation and free. Nothing
in them is typed by hand. The estimator and the accuracy page read them without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from app.estimator.estimate import estimate
from app.estimator.schema import VramRequest
from app.estimator.spec import ModelSpec

TRACE_FORMAT = "vram-traces/1"


class TraceEnvironment(BaseModel):
    """Where and with what a table was traced."""

    torch: str
    transformers: str
    python: str
    host_cpu: str = Field(description="CPU model of the machine that ran the trace (fake tensors: no GPU).")
    platform: str
    traced_at: str = Field(description="UTC time the table was written, ISO format.")
    command: str = Field(description="Command line that regenerates this file.")
    git_revision: str


class TracedRow(BaseModel):
    """One prompt length x batch x dtype: prefill with use_cache=True and logits_to_keep=1, then one decode step."""

    model: str
    quantization: str = Field(description="Weight format slug (bf16, fp16, fp32).")
    context: int = Field(description="Prompt tokens per sequence (one more token is then decoded).")
    batch: int
    images: int = Field(0, description="Images per sequence (their positions come on top of `context`).")
    code: str = Field("native", description="native: transformers' own class; remote: the model repository's "
                      "modeling code (trust_remote_code=True).")
    architecture: str = Field(description="transformers class that was traced.")
    attn_implementation: str = Field(description="Attention implementation the class defaults to.")
    attention_kernels: list[str] = Field(description="Attention ops the trace dispatched (aten names).")
    parameters_bytes: int = Field(description="Parameters and buffers of the model (MemTracker).")
    kv_cache_bytes: int = Field(description="Storage held by the DynamicCache after prefill.")
    peak_bytes: int = Field(description="Allocated peak over prefill and the decode step (MemTracker).")
    prefill_peak_bytes: int
    peak_phase: str = Field(description="prefill or decode: where the peak happened.")
    seconds: float = Field(description="Wall time of this row's trace (both steps, tracker included).")

    @property
    def temporaries_bytes(self) -> int:
        """Everything at the peak that is neither a parameter nor the prefill's KV cache."""
        return self.peak_bytes - self.parameters_bytes - self.kv_cache_bytes

    @property
    def label(self) -> str:
        extra = (f" img {self.images}" if self.images else "") + (f" {self.code}/{self.attn_implementation}"
                                                                   if self.code != "native" else "")
        return f"{self.model} {self.quantization} ctx {self.context:,} x{self.batch}{extra}"


class NotTraced(BaseModel):
    """A row or a whole model the tracer did not produce, and why."""

    model: str
    quantization: str | None = None
    context: int | None = None
    batch: int | None = None
    reason: str


class RemoteSource(BaseModel):
    """One remote-code file traced: the public copy (never committed here) and what it copies."""

    file: str = Field(description="File name the modeling code imports it by.")
    upstream: str = Field(description="The Hugging Face repository file it copies.")
    repository: str = Field(description="GitHub repository of the copy traced.")
    path: str
    commit: str
    sha256: str
    notes: str = Field("", description="Local edits of the copy, and whether the traced path runs them.")


class TraceFile(BaseModel):
    format: str = TRACE_FORMAT
    model: str
    environment: TraceEnvironment
    rows: list[TracedRow]
    not_traced: list[NotTraced] = Field([])
    sources: list[RemoteSource] = Field([], description="Remote code: the files traced.")
    shims: list[str] = Field([], description="Remote code: what the tracer changed to run it.")


@dataclass(frozen=True, repr=False)
class TraceComparison:
    row: TracedRow
    estimated_weights: int
    estimated_kv: int
    estimated_activations: int

    @property
    def estimated_peak(self) -> int:
        """What the traced allocated peak corresponds to: weights + KV cache + activations (no GPU overhead)."""
        return self.estimated_weights + self.estimated_kv + self.estimated_activations

    @property
    def error(self) -> float:
        return (self.estimated_peak - self.row.peak_bytes) / self.row.peak_bytes

    @property
    def weights_error(self) -> float:
        return (self.estimated_weights - self.row.parameters_bytes) / self.row.parameters_bytes

    @property
    def kv_error(self) -> float:
        return (self.estimated_kv - self.row.kv_cache_bytes) / self.row.kv_cache_bytes

    @property
    def temporaries_error(self) -> float:
        return (self.estimated_activations - self.row.temporaries_bytes) / self.row.temporaries_bytes


def compare_trace(spec: ModelSpec, row: TracedRow) -> TraceComparison:
    """The transformers runtime's estimate for the traced prompt length and batch."""
    e = estimate(spec, VramRequest(model=row.model, quantization=row.quantization, context=row.context,
                                   batch=row.batch, images=row.images, runtime="transformers",
                                   trust_remote_code=row.code == "remote",
                                   attn_implementation=row.attn_implementation))
    return TraceComparison(row, e.breakdown.weights, e.breakdown.kv_cache, e.breakdown.activations)


def kernel_corrected_peak(spec: ModelSpec, row: TracedRow, attn_implementation: str) -> int:
    """The traced peak as it would be with another attention kernel: a CPU trace that ran one kernel (SDPA's
    math fallback, say) corrected by the difference the kernel makes in our estimate (its score matrix and
    softmax copies against the fused kernel's output and logsumexp), everything else as traced."""
    other = row.model_copy(update={"attn_implementation": attn_implementation})
    return row.peak_bytes + compare_trace(spec, other).estimated_peak - compare_trace(spec, row).estimated_peak


def load_traces(root: Path) -> list[TraceFile]:
    return [TraceFile.model_validate_json(p.read_bytes()) for p in sorted(root.glob("*.json"))]
