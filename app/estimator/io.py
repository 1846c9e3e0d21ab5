"""The request and the answer: one pydantic model each, behind the JSON API, the pages and the tests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_CONTEXT = 10_000_000
MAX_BATCH = 4096
MAX_IMAGES = 1024
MAX_GPUS = 64


class VramRequest(BaseModel):
    """What to estimate. Absent optional fields resolve to the model's and runtime's defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192,
                                         "images": 1, "gpu": "rtx-4090"}]},
    )

    # --- catalog (issue 8): model by slug or Hugging Face repo id, or an inline config.json ---
    model: str | None = Field(
        None, description="Catalog slug or Hugging Face repo id, any case, e.g. glm-4v-9b or THUDM/glm-4v-9b "
                          "(see /api/models). Give this or `config`.", examples=["glm-4v-9b"])
    config: dict[str, Any] | None = Field(
        None, description="A Hugging Face config.json object to estimate instead of a catalog model "
                          "(POST only). Give this or `model`.")
    quantization: str | None = Field(
        None, description="Weight format slug (see /api/quantizations); default: the checkpoint's stored format "
                    "(its quantization_config) or released dtype.")
    context: int = Field(1024, ge=1, le=MAX_CONTEXT, description="Text tokens per sequence (prompt + output).")
    batch: int = Field(1, ge=1, le=MAX_BATCH, description="Sequences processed together.")
    images: int = Field(0, ge=0, le=MAX_IMAGES, description="Images per sequence (vision models only).")
    kv_cache: str | None = Field(None, description="KV-cache element type; default: the runtime's default.")
    runtime: str | None = Field(
        None, description="transformers, llama.cpp or vllm; default: llama.cpp for GGUF, else transformers.")
    flash_attention: bool = Field(True, description="llama.cpp: flash attention on (-fa); else ignored.")
    gpu: str | None = Field(None, description="GPU slug (see /api/gpus) to answer first.")
    gpu_count: int = Field(1, ge=1, le=MAX_GPUS, description="GPUs the model is split across (tensor parallel).")
    # --- trace option (issue 11) ---
    trace: bool = Field(False, description="transformers only: also trace the model's real code on fake tensors "
                        "(needs torch and transformers in the server's environment; seconds to a minute) and "
                        "answer the traced allocated peak beside the formula.")

    @field_validator("quantization", "kv_cache", "runtime", "gpu", mode="before")
    @classmethod
    def _blank_is_default(cls, v: object) -> object:
        return None if v == "" else v

    # --- catalog (issue 8) ---
    @model_validator(mode="after")
    def _model_or_config(self) -> VramRequest:
        if (self.model is None) == (self.config is None):
            raise ValueError("give exactly one of `model` (a catalog slug or Hugging Face repo id) or `config` "
                             "(a config.json object)")
        return self


# --- catalog (issue 8) ---
class WeightsRequest(BaseModel):
    """POST /api/weights: a catalog model or an inline config.json, and a weight format."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="Catalog slug or Hugging Face repo id. Give this or `config`.")
    config: dict[str, Any] | None = Field(None, description="A config.json object. Give this or `model`.")
    quantization: str | None = Field(None, description="Format slug; default: the checkpoint's stored format.")

    @model_validator(mode="after")
    def _model_or_config(self) -> WeightsRequest:
        if (self.model is None) == (self.config is None):
            raise ValueError("give exactly one of `model` or `config`")
        return self


class ResolvedRequest(BaseModel):
    """The request with every default filled in."""

    model: str
    quantization: str
    context: int
    batch: int
    images: int
    kv_cache: str
    runtime: str
    flash_attention: bool
    gpu: str | None
    gpu_count: int


class Breakdown(BaseModel):
    """Where the GPU memory goes, in bytes. The four keys always sum to `total_bytes`."""

    weights: int = Field(description="Model weights resident on the GPU(s).")
    kv_cache: int = Field(description="Key/value cache for the whole batch.")
    activations: int = Field(description="Peak temporary tensors of the forward pass (prefill).")
    overhead: int = Field(description="CUDA context, library workspaces and runtime buffers.")


class Detail(BaseModel):
    """Numbers behind the breakdown."""

    parameters: int = Field(description="Parameters of the released model (language + vision).")
    parameters_language: int = Field(description="Parameters of the language model.")
    parameters_vision: int = Field(description="Parameters of the vision tower and projector (0 for text models).")
    # --- catalog (issue 8) ---
    parameters_active: int | None = Field(
        None, description="Parameters one token uses (MoE: minus the routed experts it skips; embeddings included).")
    weights_language_bytes: int = Field(description="Language-model weights as stored in this format.")
    weights_vision_bytes: int = Field(description="Vision tower + projector as stored in this format.")
    weights_host_bytes: int = Field(description="Weights the runtime keeps in host RAM (llama.cpp token_embd).")
    bits_per_weight: float = Field(description="Stored bits per weight over all stored tensors.")
    kv_bytes_per_token: int = Field(description="KV bytes per cached position, all layers, one sequence.")
    image_positions: int = Field(description="KV positions the images add beyond the text tokens.")
    sequence_length: int = Field(description="Positions per sequence: text tokens + image positions.")
    kv_cache_tokens: int = Field(description="Positions the runtime allocates per sequence (after padding).")
    kv_capacity_tokens: int | None = Field(None, description="vLLM: tokens the KV budget holds.")
    max_concurrency: float | None = Field(None, description="vLLM: sequences of this length that fit at once.")


class GpuFit(BaseModel):
    gpu: str = Field(description="GPU slug (see /api/gpus).")
    name: str = Field(description="GPU name.")
    count: int = Field(description="GPUs the model is split across.")
    memory_bytes: int = Field(description="Memory of all `count` GPUs together, as the driver reports it.")
    headroom_bytes: int = Field(description="memory_bytes - total_bytes; negative when it does not fit.")
    fits: bool = Field(description="Whether the total fits in the memory this runtime may use on them.")


class TracedPeak(BaseModel):
    """transformers' real code traced on fake tensors (torch MemTracker) beside our formula, in bytes."""

    architecture: str = Field(description="transformers class that was traced.")
    attn_implementation: str = Field(description="Attention implementation the class defaults to.")
    parameters_bytes: int = Field(description="Parameters and buffers.")
    kv_cache_bytes: int = Field(description="DynamicCache storage after the prefill.")
    temporaries_bytes: int = Field(description="Peak minus parameters minus KV cache.")
    peak_bytes: int = Field(description="Allocated peak over the prefill and one decode step.")
    formula_bytes: int = Field(description="Our weights + kv_cache + activations for the same request.")
    error: float = Field(description="(formula - traced) / traced.")
    seconds: float = Field(description="Wall time of the trace.")
    torch: str
    transformers: str
    note: str = Field(description="What the traced peak leaves out: the GPU-only additions in `overhead`.")


# --- Hub source (hub branch, issue 8) ---
class HubSource(BaseModel):
    """Where a model fetched from the Hugging Face Hub came from, and its checkpoint size cross-check."""

    repo: str = Field(description="Hugging Face repo id, owner/name.")
    revision: str = Field(description="The commit config.json was read at (X-Repo-Commit), else the asked one.")
    pinned: bool = Field(description="True when `revision` is the commit sha the Hub reported.")
    config_url: str = Field(description="Public URL of that config.json.")
    index_total_size: int | None = Field(
        None, description="`metadata.total_size` of model.safetensors.index.json (bytes), when the repo has one.")
    stored_bytes: int = Field(description="Our count of the checkpoint's tensor bytes in its stored format.")
    stored_format: str = Field(description="That stored format's slug.")
    matches_index: bool | None = Field(
        None, description="stored_bytes == index_total_size; null without an index.")
    notes: list[str] = Field(default_factory=list, description="What could not be pinned or read, and why.")


class VramEstimate(BaseModel):
    """The answer: resolved inputs, a breakdown in bytes, how it was derived and where it fits."""

    request: ResolvedRequest
    model_name: str
    quantization_label: str
    runtime_label: str
    breakdown: Breakdown
    total_bytes: int = Field(description="weights + kv_cache + activations + overhead.")
    detail: Detail
    assumptions: list[str]
    warnings: list[str]
    fits: list[GpuFit] = Field(description="Catalog GPUs, the requested one first, then by memory.")
    # --- trace option (issue 11) ---
    trace: TracedPeak | None = Field(None, description="With trace=true: the traced allocated peak.")
    hub: HubSource | None = Field(  # --- Hub source (hub branch, issue 8) ---
        None, description="For a model fetched from the Hugging Face Hub: the pinned revision and the check of "
                          "our weight bytes against the repo's safetensors index.")


class WeightGroup(BaseModel):
    """Tensors of one name pattern stored as one type: a row of the weights table."""

    name: str = Field(description="Tensor name with the layer index as N.")
    part: str = Field(description="language or vision.")
    type: str = Field(description="Storage type (GGML type, or the format's label for quantized linears).")
    count: int = Field(description="Tensors in this row.")
    parameters: int = Field(description="Elements they hold.")
    bytes: int = Field(description="Bytes as stored.")


class WeightsReport(BaseModel):
    """A checkpoint as stored in one format."""

    model: str
    quantization: str
    total_bytes: int
    parameters: int
    stored_elements: int
    bits_per_weight: float
    groups: list[WeightGroup]
