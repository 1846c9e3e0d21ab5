"""The request and the answer: one pydantic model each, behind the JSON API, the pages and the tests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_CONTEXT = 10_000_000
MAX_BATCH = 4096
MAX_IMAGES = 1024
MAX_GPUS = 64
# --- llama.cpp flags (issue 9) ---
MAX_LLAMA_BATCH = 1 << 20
MAX_LLAMA_SEQ = 256  # LLAMA_MAX_SEQ, src/llama-cparams.h
MAX_LLAMA_LAYERS = 1024
# llama.cpp's --cache-type-k/-v values (common/arg.cpp kv_cache_types)
LlamaCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]


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
    # --- llama.cpp flags (issue 9) ---
    # Names and defaults are llama.cpp's (common/common.h, common/arg.cpp, tools/server/server.cpp of the
    # build vendored in llama-cpp-python 0.3.36). `context` stays the per-sequence context; llama-server's
    # -c (n_ctx) is the KV pool of all slots together, so n_ctx defaults to context x n_parallel.
    n_ctx: int | None = Field(
        None, ge=0, le=MAX_CONTEXT,
        description="llama.cpp -c/--ctx-size: KV cells of all sequences together (llama-server semantics); "
                    "0 = the model's training context; default: context x n_parallel.")
    n_batch: int = Field(2048, ge=1, le=MAX_LLAMA_BATCH,
                         description="llama.cpp -b/--batch-size: logical batch (default 2048; capped at n_ctx).")
    n_ubatch: int = Field(512, ge=1, le=MAX_LLAMA_BATCH,
                          description="llama.cpp -ub/--ubatch-size: physical micro-batch the compute buffer is "
                                      "sized for (default 512; capped at n_batch).")
    n_parallel: int | None = Field(
        None, ge=1, le=MAX_LLAMA_SEQ,
        description="llama.cpp -np/--parallel: sequences (server slots); default: `batch`. llama-server's own "
                    "default is auto = 4 slots sharing one unified KV pool of n_ctx cells.")
    kv_unified: bool = Field(
        False, description="llama.cpp -kvu: one KV pool shared by all sequences (n_ctx padded to 256) instead of "
                           "n_parallel pools of n_ctx/n_parallel (each padded to 256). Default off, as llama.cpp "
                           "when -np is given.")
    n_gpu_layers: int | None = Field(
        None, ge=0, le=MAX_LLAMA_LAYERS,
        description="llama.cpp -ngl: repeating layers on the GPU; n_layer + 1 also puts the output layer there; "
                    "default: all (-ngl all). The other layers' weights and KV stay in host RAM.")
    cache_type_k: LlamaCacheType | None = Field(
        None, description="llama.cpp -ctk/--cache-type-k (f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1); "
                          "default: `kv_cache`, else f16.")
    cache_type_v: LlamaCacheType | None = Field(
        None, description="llama.cpp -ctv/--cache-type-v; a quantized V cache needs flash attention; "
                          "default: `kv_cache`, else f16.")
    embeddings: bool = Field(
        False, description="llama.cpp --embeddings: the output buffer also holds n_embd floats per sequence "
                           "(Ollama's runner turns it on).")
    mmproj: bool | None = Field(
        None, description="Vision models: whether the projector file is loaded. llama-server loads it only when "
                          "--mmproj is passed (or by default with -hf, which fetches it); default: loaded when "
                          "images > 0.")

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


# --- llama.cpp flags (issue 9) ---
class LlamaCppBuffer(BaseModel):
    """One buffer llama.cpp allocates and prints at load (llama_model_load / llama_context)."""

    name: Literal["model", "kv", "compute", "output", "mmproj", "mmproj_compute"] = Field(
        description="model (weights), kv (cache), compute (graph), output (logits), mmproj (projector).")
    device: Literal["gpu", "host"] = Field(description="gpu (CUDA0 ...) or host (CPU, CPU_Mapped, CUDA_Host).")
    bytes: int
    basis: Literal["exact", "calibrated"] = Field(
        description="exact: llama.cpp's own arithmetic; calibrated: fitted to llama.cpp's printed sizes.")


class HostMemory(BaseModel):
    """Host RAM llama.cpp uses beside the GPU, in bytes (weights are mmapped from the file)."""

    weights: int = Field(description="Weights kept on the host: token_embd, layers not offloaded.")
    kv_cache: int = Field(description="KV cache of the layers not offloaded.")
    compute: int = Field(description="Host compute buffer (CUDA_Host, or CPU when nothing is offloaded).")
    output: int = Field(description="Output (logits) buffer, in pinned host memory.")
    total_bytes: int


class LlamaCppReport(BaseModel):
    """The llama.cpp context as resolved from the flags, and the buffers it prints."""

    n_ctx: int = Field(description="KV cells of all sequences, after llama.cpp's padding.")
    n_ctx_seq: int = Field(description="Cells one sequence may use.")
    n_batch: int
    n_ubatch: int
    n_parallel: int
    kv_unified: bool
    n_gpu_layers: int = Field(description="Layers on the GPU as llama.cpp counts them (n_layer + 1 = all).")
    output_on_gpu: bool
    cache_type_k: str
    cache_type_v: str
    mmproj: bool = Field(description="Whether the projector file is counted as loaded.")
    mmproj_bytes: int = Field(description="Weights of the projector file (F16), loaded or not.")
    buffers: list[LlamaCppBuffer]


class GgufTypeRow(BaseModel):
    """One GGML type of a GGUF file's type mix."""

    type: str
    tensors: int
    bytes: int


class GgufFileReport(BaseModel):
    """What a GGUF header says: architecture, parts, exact tensor bytes and the type mix."""

    filename: str
    architecture: str = Field(description="general.architecture")
    name: str | None = Field(None, description="general.name")
    file_type: str | None = Field(None, description="general.file_type as llama.cpp names it (e.g. MOSTLY_Q4_K_M).")
    parts: int = Field(description="Files of a split GGUF (1 when not split).")
    tensors: int
    tensor_bytes: int = Field(description="Every tensor's stored bytes, summed (what llama_model_size reports).")
    parameters: int = Field(description="Elements of every tensor.")
    header_bytes: int = Field(description="Bytes before the tensor data of the first part.")
    type_mix: list[GgufTypeRow]


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
    # --- llama.cpp flags (issue 9) ---
    host: HostMemory | None = Field(None, description="llama.cpp: host RAM beside the GPU breakdown.")
    llamacpp: LlamaCppReport | None = Field(None, description="llama.cpp: resolved context and its buffers.")
    gguf_file: GgufFileReport | None = Field(None, description="POST /api/gguf: the uploaded file's header.")


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
