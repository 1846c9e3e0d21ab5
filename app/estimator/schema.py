"""The request and the answer: one pydantic model each, behind the JSON API, the pages and the tests.

The request models validate what comes in. The answer (VramEstimate) is a model whose parts (breakdown, detail,
each runtime's report, fit rows, cache layers) are slotted stdlib dataclasses: the estimator builds them from its
own integers and strings, and validating them again cost more than the arithmetic behind them; pydantic still
writes their JSON schema and serializes them. Parts an answer rarely carries (the
--fit report, the Hub source, the traced peak, a GGUF file's report) stay models.
"""

# Annotations evaluated at class creation (no `from __future__ import annotations`): pydantic would otherwise
# compile every field's annotation string when the models are built, a noticeable part of a cold `vram` start.

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from app.estimator.cache_io import CacheReport

# A list field's default as the schema shows it (a dataclass field takes a factory, which the schema leaves out)
EMPTY_LIST = {"default": []}
MAX_CONTEXT = 10_000_000
MAX_BATCH = 4096
MAX_IMAGES = 1024
MAX_GPUS = 64
# --- llama.cpp flags: llama-server's names and limits ---
MAX_LLAMA_BATCH = 1 << 20
MAX_LLAMA_SEQ = 256  # LLAMA_MAX_SEQ, src/llama-cparams.h
MAX_LLAMA_LAYERS = 1024
# llama.cpp's --cache-type-k/-v values (common/arg.cpp kv_cache_types)
LlamaCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
# ggml backends llama.cpp is built with; the keys of runtimes/llamacpp_backends.BACKENDS (a test holds them equal)
LlamaBackend = Literal["cuda", "rocm", "vulkan", "metal", "sycl", "cpu"]
# --- vLLM flags: vllm serve's names ---
MAX_VLLM_TOKENS = 1 << 20
_VLLM_FIELDS = frozenset({"gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
                          "block_size", "kv_cache_dtype", "tensor_parallel_size", "pipeline_parallel_size",
                          "enforce_eager", "dtype", "vllm_version", "memory_profiler_estimate_cudagraphs",
                          "enable_extensible_kv_cache", "data_parallel_size", "enable_expert_parallel",
                          "speculative_method", "num_speculative_tokens"})
MAX_SPECULATIVE_TOKENS = 64
# --- transformers + bitsandbytes ---
MAX_SKIP_MODULES = 64
# A skip entry: a dotted module name, optionally led by `.*`, with at most one `*` in all. transformers reads each
# as a regex; these are the names and the one wildcard its users write (lm_head, model.vision_tower, .*self_attn,
# model.layers.*.mlp), and none can backtrack badly. Text doors: comma-separated.
_SKIP_NAME = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*"
SKIP_ENTRY = rf"(?:(?:\.\*)?{_SKIP_NAME}|{_SKIP_NAME}\.\*(?:\.[A-Za-z0-9_]+)*)"
SKIP_ENTRY_PATTERN = rf"^{SKIP_ENTRY}$"
SkipEntry = Annotated[str, Field(json_schema_extra={"pattern": SKIP_ENTRY_PATTERN})]


def _product(a: object, b: object) -> object:
    """a x b when both read as integers; else `a`, so field validation reports the bad value."""
    try:
        return int(str(a)) * int(str(b))
    except ValueError:
        return a


def _int_choices(annotation: object) -> bool:
    """Whether a field's type is a Literal of integers (optionally `| None`)."""
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) is not Literal \
        else [annotation]
    return any(get_origin(a) is Literal and all(type(c) is int for c in get_args(a)) for a in args)


def _choice_from_text(name: str, value: object) -> object:
    """A Literal of ints never parses text, even in lax mode; a text door's "32" becomes 32 for such fields."""
    field = VramRequest.model_fields.get(name)
    if field is not None and isinstance(value, str) and _int_choices(field.annotation) \
            and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return value


def _json_object(text: str) -> object:
    """config.json text from a form: its object, or the text itself (then reported as not an object)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text  # `null`, `[]`, `1`: reported at config, not an object


# What /openapi.json states for two text fields, exactly what the server accepts (the validators below and the
# estimator's checks give the reasons): a vLLM release from 0.7 (int parts, as vllm_profiles.parse_version reads
# them), and an image size whose sides are 1 to 32768 pixels (app/estimator/images.py; its aspect-ratio bound
# of 200 compares the two sides, which a pattern cannot).
VLLM_RELEASE = r"^(?:0*[1-9]\d*\.\d+|0+\.0*(?:[7-9]|[1-9]\d+))(?:\.\d+)?$"
_SIDE = r"(?:[1-9]\d{0,3}|[12]\d{4}|3[01]\d{3}|32[0-6]\d{2}|327[0-5]\d|3276[0-8])"
IMAGE_SIZE_PATTERN = rf"^{_SIDE}[xX×]{_SIDE}$"


def _enum(schema: dict[str, Any], registry: str) -> None:
    """/openapi.json lists a registry's slugs for an optional text field (which ones a model offers, the
    answer's 422 says). Read when the schema is built: the registries import this module."""
    from app.estimator.kv_cache import KV_TYPES
    from app.estimator.quantization import FORMATS
    from app.estimator.runtimes import RUNTIMES

    slugs = {"formats": FORMATS, "kv": KV_TYPES, "runtimes": RUNTIMES}[registry]
    schema["anyOf"][0]["enum"] = list(slugs)


class VramRequest(BaseModel):
    """What to estimate. Absent optional fields resolve to the model's and runtime's defaults."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"model": "glm-4v-9b", "quantization": "q4_k_m", "context": 8192,
                                         "images": 1, "gpu": "rtx-4090"}]},
    )

    # --- the model: a catalog slug or Hugging Face repo id, or an inline config.json ---
    model: str | None = Field(
        None, description="Catalog slug or Hugging Face repo id, any case, e.g. glm-4v-9b or THUDM/glm-4v-9b "
                          "(see /api/models). Give this or `config`.", examples=["glm-4v-9b"])
    config: dict[str, Any] | None = Field(
        None, description="A Hugging Face config.json object to estimate instead of a catalog model "
                          "(POST only). Give this or `model`.")
    quantization: str | None = Field(
        None, json_schema_extra=lambda s: _enum(s, "formats"),
        description="Weight format slug (see /api/quantizations); default: the checkpoint's stored format "
                    "(its quantization_config) or released dtype.")
    context: int = Field(1024, ge=1, le=MAX_CONTEXT, description="Text tokens per sequence (prompt + output).")
    batch: int = Field(1, ge=1, le=MAX_BATCH, description="Sequences processed together.")
    images: int = Field(0, ge=0, le=MAX_IMAGES, description="Images per sequence (vision models only).")
    image_size: str | None = Field(
        None, json_schema_extra={"pattern": IMAGE_SIZE_PATTERN},
        description="WIDTHxHEIGHT of each image in pixels, e.g. 1024x768, for vision towers whose image "
                          "tokens depend on the image size (Qwen-VL, Pixtral); default: the model's stated default.",
        examples=["1024x768"])
    kv_cache: str | None = Field(None, json_schema_extra=lambda s: _enum(s, "kv"),
                                 description="KV-cache element type; default: the runtime's default.")
    runtime: str | None = Field(
        None, json_schema_extra=lambda s: _enum(s, "runtimes"),
        description="transformers, llama.cpp or vllm; default: llama.cpp for GGUF, else transformers.")
    flash_attention: bool = Field(True, description="llama.cpp: flash attention on (-fa); else ignored.")
    gpu: str | None = Field(None, description="GPU slug (see /api/gpus) to answer first.")
    gpu_count: int = Field(1, ge=1, le=MAX_GPUS, description="GPUs the model is split across (tensor parallel).")
    # --- trace option: transformers' real code traced on fake tensors, beside the formula ---
    trace: bool = Field(False, description="transformers only: also trace the model's real code on fake tensors "
                        "(needs torch and transformers in the server's environment; seconds to a minute) and "
                        "answer the traced allocated peak beside the formula.")
    # --- transformers: which modeling code and which attention kernel ---
    trust_remote_code: bool | None = Field(
        None, description="transformers: run the model repository's own modeling code, as from_pretrained("
        "trust_remote_code=True) does; default: what the model card's snippet runs (THUDM/glm-4v-9b and "
        "THUDM/glm-4-9b-chat: their remote code).")
    attn_implementation: Literal["sdpa", "sdpa_math", "eager", "flash_attention_2"] | None = Field(
        None, description="transformers: attention kernel. sdpa: torch SDPA with a fused kernel (flash or "
        "memory-efficient: no score matrix); sdpa_math: SDPA's math kernel (scores materialized); eager: the "
        "model's own matmul + softmax; flash_attention_2: the flash-attn package. Default: what transformers "
        "picks on a CUDA GPU for the model and dtype.")
    # --- transformers + bitsandbytes: BitsAndBytesConfig's own name ---
    llm_int8_skip_modules: list[SkipEntry] | None = Field(
        None, max_length=MAX_SKIP_MODULES, examples=[["lm_head", "model.vision_tower"]], description=(
            "transformers with bnb-int8, bnb-nf4 or bnb-fp4 (quantized while loading): BitsAndBytesConfig("
            "llm_int8_skip_modules), the modules left 16-bit, by their transformers names (lm_head, "
            "model.vision_tower, .*self_attn). Each entry is matched as transformers 5.25 does: a prefix of the full "
            "module name up to a dot, a regex from its start, or a suffix; `mlp` alone matches no linear inside an "
            "MLP. Given a list, transformers adds none of its defaults, so lm_head is quantized unless named. "
            "Entries: dotted names, optionally led by `.*`, with at most one `*`; query, form and CLI text: "
            "comma-separated. Default: transformers' own (lm_head and tied weights). Ignored by other formats "
            "and runtimes."))
    # --- llama.cpp flags ---
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
    backend: LlamaBackend = Field(
        "cuda", description="llama.cpp ggml backend (cpu: nothing offloaded): padding, host buffer, compute rules.")
    free_memory: int | None = Field(
        None, ge=0, le=1 << 50, description="llama.cpp --fit: free device memory in bytes, of each device when "
        "gpu_count > 1 (layer split, llama.cpp's default split mode); adds --fit's decisions.")
    fit_target: int = Field(1024, ge=0, le=1 << 20, description="llama.cpp --fit-target: MiB left free.")
    fit_ctx: int = Field(4096, ge=0, le=MAX_CONTEXT,
                         description="llama.cpp --fit-ctx: lowest n_ctx --fit sets (only when n_ctx is 0).")
    mmproj: bool | None = Field(
        None, description="Vision models: whether the projector file is loaded. llama-server loads it only when "
                          "--mmproj is passed (or by default with -hf, which fetches it); default: loaded when "
                          "images > 0.")

    # --- vLLM flags ---
    # vLLM's own names and defaults (vllm/engine/arg_utils.py, vllm/config/cache.py). They apply when
    # runtime is vllm; other runtimes ignore them. `gpu_count` = tensor_parallel_size x pipeline_parallel_size x
    # data_parallel_size.
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="vLLM --gpu-memory-utilization: share of each GPU's total memory (as "
        "torch.cuda.mem_get_info reports it) for weights, activation peak, non-torch memory, the CUDA-graph "
        "estimate (0.20+) and KV cache. When not given, the release's default: 0.90 up to 0.19, 0.92 from "
        "0.20, and in 0.34 1.0 with the extensible KV cache (else 0.92); 0.9 is 0.19's.")
    max_model_len: int | None = Field(
        None, ge=1, le=MAX_CONTEXT, description="vLLM --max-model-len: longest sequence (prompt + output) it "
        "admits; startup fails unless one such sequence fits the KV budget. Default: `context` plus the "
        "images' positions (vLLM's own default is the model's max_position_embeddings: pass that value to "
        "reproduce a bare `vllm serve`). `context` is the request length for the concurrency figure.")
    max_num_seqs: int | None = Field(
        None, ge=1, le=MAX_VLLM_TOKENS, description="vLLM --max-num-seqs: sequences per step; the sampler is "
        "profiled over this many. Default: vLLM's for the version and GPU (0.19 serve on >= 70 GiB: 1024).")
    max_num_batched_tokens: int | None = Field(
        None, ge=1, le=MAX_VLLM_TOKENS, description="vLLM --max-num-batched-tokens: tokens per step; the "
        "profiling forward pass runs this many. Default: vLLM's for the version and GPU (0.19 serve on >= 70 "
        "GiB: 8192).")
    block_size: Literal[1, 8, 16, 32, 64, 128, 256] | None = Field(
        None, description="vLLM --block-size: tokens per KV-cache block (vllm/config/cache.py BlockSize). Default: "
        "the release's on CUDA with FlashAttention: 16 up to 0.33, 64 in 0.34 (CacheConfig.DEFAULT_BLOCK_SIZE).")
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = Field(
        "auto", description="vLLM --kv-cache-dtype: auto follows the model dtype (float32 included); fp8 "
        "variants store 1 byte per element. Same meaning as `kv_cache` (fp8 = fp8); when both are given "
        "they must agree.")
    data_parallel_size: int = Field(
        1, ge=1, le=MAX_GPUS, description="vLLM --data-parallel-size: engine replicas, each on tensor_parallel_size "
        "x pipeline_parallel_size GPUs with its own KV cache; attention, dense layers and embeddings are copied per "
        "replica, MoE experts are split across all tensor x data parallel ranks (FusedMoEParallelConfig). Requests "
        "spread over the replicas.")
    enable_expert_parallel: bool = Field(
        False, description="vLLM --enable-expert-parallel: MoE layers place whole experts on each of the tensor x "
        "data parallel ranks (experts / (TP x DP) per GPU) instead of a slice of every expert.")
    pipeline_parallel_size: int = Field(
        1, ge=1, le=MAX_GPUS, description="vLLM --pipeline-parallel-size: stages the layers are split across.")
    tensor_parallel_size: int | None = Field(
        None, ge=1, le=MAX_GPUS, description="vLLM --tensor-parallel-size: GPUs each layer is split across "
        "(linears and KV heads split; embeddings vocab-parallel; norms replicated). Default: gpu_count / "
        "(pipeline_parallel_size x data_parallel_size).")
    enforce_eager: bool = Field(False, description="vLLM --enforce-eager: no CUDA graphs (no graph pool).")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="vLLM --dtype: compute dtype of weights, activations and (with kv_cache_dtype "
        "auto) the KV cache; auto = the checkpoint's torch_dtype (float32 checkpoints run in bfloat16).")
    vllm_version: str | None = Field(
        None, pattern=r"^\d+\.\d+(\.\d+)?$", json_schema_extra={"pattern": VLLM_RELEASE},
        description="vLLM release the answer describes, e.g. 0.21.0 "
        "(the profiled activation peak, defaults and the accounting of the KV budget changed between releases); "
        "accepted from 0.7.0; a release newer than 0.34 is answered as 0.34 with a warning. Default: 0.34.0, "
        "the newest release.")
    memory_profiler_estimate_cudagraphs: bool | None = Field(
        None, description="vLLM's VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS: subtract the CUDA-graph memory "
        "estimate inside the KV budget. Default: the release's (off in 0.19, on from 0.20). Exists from 0.19.")
    enable_extensible_kv_cache: bool | None = Field(
        None, description="vLLM 0.34 --enable-extensible-kv-cache: size the KV cache after warmup and CUDA-graph "
        "capture from the measured free memory (0.34's default on CUDA/ROCm). Earlier releases: must be unset.")
    speculative_method: Literal["mtp", "deepseek_mtp", "glm4_moe_mtp", "qwen3_next_mtp", "qwen3_5_mtp",
                                "mimo_v2_mtp"] | None = Field(
        None, description="vLLM --speculative-config method: mtp loads the checkpoint's multi-token-prediction "
        "layer(s) as the draft model (its own weights and KV cache layers); the per-family names are those of "
        "older releases and must match the model's draft. llama.cpp: mtp = --spec-type draft-mtp (an MTP "
        "context over the target's weights; Qwen3.5/3.6 GGUF architectures). Default: no speculative decoding. "
        "A model without MTP layers is refused.")
    num_speculative_tokens: int | None = Field(
        None, ge=1, le=MAX_SPECULATIVE_TOKENS, description="vLLM --speculative-config num_speculative_tokens: "
        "tokens the draft proposes per step (the MTP layers are run in turn). Needs speculative_method. Default: "
        "the model's MTP layers. llama.cpp: --spec-draft-n-max (default 3), also the recurrent-state rows kept "
        "for rollback.")

    @model_validator(mode="before")
    @classmethod
    def _vllm_parallel(cls, data: object, info: ValidationInfo) -> object:
        """Blank or null vLLM fields mean their default; fill gpu_count from tensor/pipeline parallel sizes.
        Text doors (query string, form, CLI; python mode) carry integers of a choice as text: "32" -> 32."""
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if not (k in _VLLM_FIELDS and (v is None or v == ""))}
        if info.mode == "python":
            data = {k: _choice_from_text(k, v) for k, v in data.items()}
            if isinstance(data.get("config"), str):  # a form carries config.json as JSON text
                data["config"] = _json_object(data["config"])
        given = {k for k in ("gpu_count", "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size")
                 if k in data}
        if given and "gpu_count" not in given:
            count = _product(data.get("pipeline_parallel_size", 1), data.get("data_parallel_size", 1))
            data["gpu_count"] = _product(data.get("tensor_parallel_size", 1), count)
        return data

    @field_validator("max_model_len")
    @classmethod
    def _holds_context(cls, v: int | None, info: ValidationInfo) -> int | None:
        context = info.data.get("context")
        if v is not None and context is not None and v < context:
            raise ValueError(f"max_model_len {v} is shorter than context {context}; allowed: >= context")
        return v

    @field_validator("tensor_parallel_size")
    @classmethod
    def _splits_gpus(cls, v: int | None, info: ValidationInfo) -> int | None:
        count = info.data.get("gpu_count")
        others = info.data.get("pipeline_parallel_size", 1) * info.data.get("data_parallel_size", 1)
        if v is not None and count is not None and v * others != count:
            raise ValueError("tensor_parallel_size x pipeline_parallel_size x data_parallel_size must equal "
                             f"gpu_count ({count})")
        return v

    @field_validator("pipeline_parallel_size")
    @classmethod
    def _divides_gpus(cls, v: int, info: ValidationInfo) -> int:
        count = info.data.get("gpu_count")
        if count is not None and count % (v * info.data.get("data_parallel_size", 1)):
            raise ValueError(f"pipeline_parallel_size {v} x data_parallel_size must divide gpu_count ({count})")
        return v

    @field_validator("data_parallel_size")
    @classmethod
    def _dp_divides_gpus(cls, v: int, info: ValidationInfo) -> int:
        count = info.data.get("gpu_count")
        if count is not None and count % v:
            raise ValueError(f"data_parallel_size {v} must divide gpu_count ({count})")
        return v
    # --- end vLLM flags ---

    @field_validator("llm_int8_skip_modules", mode="before")
    @classmethod
    def _skip_text(cls, v: object, info: ValidationInfo) -> object:
        """Text doors (query string, form; python mode) carry the list as comma-separated names; blank = default."""
        if info.mode == "python" and isinstance(v, str):
            return None if v == "" else v.split(",")
        return v

    @field_validator("llm_int8_skip_modules")
    @classmethod
    def _skip_entries(cls, v: list[str] | None) -> list[str] | None:
        for entry in v or ():
            if not re.fullmatch(SKIP_ENTRY, entry):
                raise ValueError(f"{entry[:80]!r} is not a module name pattern; allowed: dotted names of letters, "
                                 "digits and _ (lm_head, model.vision_tower), optionally led by .* or with one .* "
                                 f"segment (.*self_attn, model.layers.*.mlp); at most {MAX_SKIP_MODULES} entries")
        return v

    @field_validator("quantization", "kv_cache", "runtime", "gpu", mode="before")
    @classmethod
    def _blank_is_default(cls, v: object) -> object:
        return None if v == "" else v

    # a model by name or by its config.json, never both
    @model_validator(mode="after")
    def _model_or_config(self) -> 'VramRequest':
        if (self.model is None) == (self.config is None):
            raise ValueError("give exactly one of `model` (a catalog slug or Hugging Face repo id) or `config` "
                             "(a config.json object)")
        return self


class WeightsRequest(BaseModel):
    """POST /api/weights: a catalog model or an inline config.json, and a weight format."""

    # defer_build: built on first use (/api/weights, `vram weights`), not at every import; oneOf: exactly one of
    # the two (null = absent)
    model_config = ConfigDict(extra="forbid", defer_build=True, json_schema_extra={"oneOf": [
        {"required": ["model"], "properties": {"model": {"type": "string"}, "config": {"type": "null"}}},
        {"required": ["config"], "properties": {"config": {"type": "object"}, "model": {"type": "null"}}}]})

    model: str | None = Field(None, description="Catalog slug or Hugging Face repo id. Give this or `config`.")
    config: dict[str, Any] | None = Field(None, description="A config.json object. Give this or `model`.")
    quantization: str | None = Field(None, json_schema_extra=lambda s: _enum(s, "formats"),
                                     description="Format slug; default: the checkpoint's stored format.")

    @model_validator(mode="after")
    def _model_or_config(self) -> 'WeightsRequest':
        if (self.model is None) == (self.config is None):
            raise ValueError("give exactly one of `model` or `config`")
        return self


@dataclass(slots=True, kw_only=True)
class ResolvedRequest:
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
    # llama.cpp's --mmproj as resolved: the calculator says whether the projector is loaded
    mmproj: Annotated[bool | None, Field(
        description="llama.cpp with a vision model: whether the projector file is loaded (--mmproj; default: images > "
                    "0); null for other runtimes and text models.")] = None
    # present in the JSON only where a list applied (VramEstimate's serializer drops it otherwise)
    llm_int8_skip_modules: Annotated[list[str] | None, Field(
        description="The request's llm_int8_skip_modules where it applied (a bitsandbytes format transformers "
                    "quantizes while loading); absent: transformers' defaults, or not applicable.")] = None


@dataclass(slots=True, kw_only=True)
class Breakdown:
    """Where the GPU memory goes, in bytes. The four keys always sum to `total_bytes`."""

    weights: Annotated[int, Field(description="Model weights resident on the GPU(s).")]
    kv_cache: Annotated[int, Field(
        description="Key/value cache for the whole batch, and the recurrent state of models whose layers keep one "
                    "(Gated DeltaNet, Mamba2, short conv): `cache` has the two apart.")]
    activations: Annotated[int, Field(description="Peak temporary tensors of the forward pass (prefill).")]
    overhead: Annotated[int, Field(description="CUDA context, library workspaces and runtime buffers.")]


@dataclass(slots=True, kw_only=True)
class Detail:
    """Numbers behind the breakdown."""

    parameters: Annotated[int, Field(description="Parameters of the released model (language + vision).")]
    parameters_language: Annotated[int, Field(description="Parameters of the language model.")]
    parameters_vision: Annotated[int, Field(
        description="Parameters of the vision tower and projector (0 for text models).")]
    # MoE: what one token uses, beside the total
    parameters_active: Annotated[int | None, Field(
        description="Parameters one token uses (MoE: minus the routed experts it skips; embeddings included).")] = None
    weights_language_bytes: Annotated[int, Field(description="Language-model weights as stored in this format.")]
    weights_vision_bytes: Annotated[int, Field(description="Vision tower + projector as stored in this format.")]
    weights_host_bytes: Annotated[int, Field(
        description="Weights the runtime keeps in host RAM (llama.cpp token_embd).")]
    bits_per_weight: Annotated[float, Field(description="Stored bits per weight over all stored tensors.")]
    kv_bytes_per_token: Annotated[int, Field(description="KV bytes per cached position, all layers, one sequence.")]
    # --- per-layer cache model ---
    state_bytes_per_sequence: Annotated[int, Field(
        description="Recurrent-state bytes one sequence holds over all layers, whatever its length (0 without "
                    "recurrent layers).")] = 0
    cache_layers: Annotated[str, Field(
        description="Layers by cache kind (full/sliding attention, mla, gdn, mamba2, ...).")] = ""
    image_positions: Annotated[int, Field(description="KV positions the images add beyond the text tokens.")]
    sequence_length: Annotated[int, Field(description="Positions per sequence: text tokens + image positions.")]
    kv_cache_tokens: Annotated[int, Field(description="Positions the runtime allocates per sequence (after padding).")]
    kv_capacity_tokens: Annotated[int | None, Field(description="vLLM: tokens the KV budget holds.")] = None
    max_concurrency: Annotated[float | None, Field(
        description="vLLM: sequences of this length that fit at once.")] = None


# --- llama.cpp's answer: the buffers it prints at load ---
# Up to 16 per answer, built by the runtime model from its own literals (a dataclass, as the module docstring says)
@dataclass(slots=True)
class LlamaCppBuffer:
    """One buffer llama.cpp allocates and prints at load (llama_model_load / llama_context)."""

    name: Annotated[Literal["model", "kv", "rs", "compute", "output", "mmproj", "mmproj_compute", "mtp_model",
                            "mtp_kv", "mtp_compute", "mtp_output"], Field(
        description="model (weights), kv (cache), rs (recurrent states of Mamba/GDN/short-conv layers), compute "
                    "(graph), output (logits), mmproj (projector); mtp_*: --spec-type draft-mtp's MTP block and its "
                    "draft context.")]
    device: Annotated[Literal["gpu", "host"], Field(
        description="gpu (CUDA0 ...) or host (CPU, CPU_Mapped, CUDA_Host).")]
    bytes: int
    basis: Annotated[Literal["exact", "calibrated", "approximate"], Field(
        description="exact: llama.cpp's own arithmetic; calibrated: fitted to llama.cpp's printed sizes; approximate: "
                    "a model not checked against llama.cpp.")]


@dataclass(slots=True, kw_only=True)
class HostMemory:
    """Host RAM llama.cpp uses beside the GPU, in bytes (weights are mmapped from the file)."""

    weights: Annotated[int, Field(description="Weights kept on the host: token_embd, layers not offloaded.")]
    kv_cache: Annotated[int, Field(description="KV cache of the layers not offloaded.")]
    compute: Annotated[int, Field(description="Host compute buffer (CUDA_Host, or CPU when nothing is offloaded).")]
    output: Annotated[int, Field(description="Output (logits) buffer, in pinned host memory.")]
    total_bytes: int
    state: Annotated[int, Field(description="Recurrent states (RS buffer) of the layers not offloaded.")] = 0


class LlamaCppFitDevice(BaseModel):
    """One device of a multi-device --fit (layer split): what it holds and its projected memory, in bytes."""

    model_config = ConfigDict(defer_build=True)  # seldom in an answer: its validator is built on first use

    name: str = Field(description="The device as llama.cpp names it (CUDA0, CUDA1, ...).")
    free: int = Field(description="Free memory of the device (bytes).")
    target: int = Field(description="Memory --fit leaves free on it (--fit-target, bytes).")
    n_layer: int = Field(description="Layers it holds (its --tensor-split share; the last device: the output layer).")
    n_part: int = Field(description="Of these, layers whose expert (or part of the FFN) tensors are elsewhere.")
    overflow_to: str | None = Field(None, description="Device its first partial layer overflows to (None: host).")
    model: int
    context: int
    compute: int
    projected: int = Field(description="model + context + compute.")


class LlamaCppFit(BaseModel):
    """What llama.cpp's --fit (common/fit.cpp common_params_fit_impl) decides for the free memory given."""

    model_config = ConfigDict(defer_build=True)  # seldom in an answer: its validator is built on first use

    free: int = Field(description="Free device memory (bytes).")
    target: int = Field(description="Memory --fit leaves free (--fit-target, bytes).")
    status: Literal["unchanged", "context", "layers", "failed"] = Field(
        description="unchanged: fits as asked; context: n_ctx lowered; layers: layers/experts moved to host; "
                    "failed: even that does not fit (llama.cpp then loads as asked and may run out of memory).")
    n_ctx: int = Field(description="The context --fit settles on (n_ctx).")
    n_gpu_layers: int = Field(description="-ngl it sets (n_layer + 1 = all).")
    n_cpu_moe_layers: list[int] = Field([],
                                        description="Layers whose MoE expert tensors it keeps in host memory.")
    overflow: str | None = Field(None, description="Part of one more layer kept on the device (UP, GATE, ATTN).")
    overrides: list[str] = Field([], description="The -ot patterns (regex=CPU) it sets.")
    projected: int = Field(description="Device memory projected for these settings (model + context + compute; "
                                       "several devices: their sum).")
    fit_print: list[str] = Field([],
                                 description="--fit-print lines: device, model, context, compute in MiB (with "
                                             "draft-mtp: the draft context included, as --fit measures it).")
    command: str = Field("", description="A llama-server command that loads these settings without --fit.")
    notes: list[str] = Field([])
    tensor_split: list[int] = Field([], description="Several devices: layers per device, as "
                                    "--fit writes tensor_split (empty for one device).")
    devices: list[LlamaCppFitDevice] = Field([],
                                             description="Several devices: each one's share (empty for one).")


@dataclass(slots=True, kw_only=True)
class LlamaCppReport:
    """The llama.cpp context as resolved from the flags, and the buffers it prints."""

    n_ctx: Annotated[int, Field(description="KV cells of all sequences, after llama.cpp's padding.")]
    n_ctx_seq: Annotated[int, Field(description="Cells one sequence may use.")]
    n_batch: int
    n_ubatch: int
    n_parallel: int
    kv_unified: bool
    n_gpu_layers: Annotated[int, Field(description="Layers on the GPU as llama.cpp counts them (n_layer + 1 = all).")]
    output_on_gpu: bool
    cache_type_k: str
    cache_type_v: str
    mmproj: Annotated[bool, Field(description="Whether the projector file is counted as loaded.")]
    mmproj_bytes: Annotated[int, Field(description="Weights of the projector file (F16), loaded or not.")]
    buffers: list[LlamaCppBuffer]
    backend: Annotated[str, Field(description="The ggml backend the buffers are for.")] = "cuda"
    device: Annotated[str, Field(description="The device as llama.cpp names it (CUDA0, ROCm0, MTL0, ...).")] = "CUDA0"
    fit_print: Annotated[list[str], Field(
        description="These buffers as `llama-fit-params --fit-print on` prints them: device, model, context, compute "
                    "in MiB (truncated).",
        json_schema_extra=EMPTY_LIST)] = field(default_factory=list)
    fit: Annotated[LlamaCppFit | None, Field(description="--fit's decisions for `free_memory` (when given).")] = None


class GgufTypeRow(BaseModel):
    """One GGML type of a GGUF file's type mix."""

    model_config = ConfigDict(defer_build=True)  # seldom in an answer: its validator is built on first use

    type: str
    tensors: int
    bytes: int


class GgufFileReport(BaseModel):
    """What a GGUF header says: architecture, parts, exact tensor bytes and the type mix."""

    model_config = ConfigDict(defer_build=True)  # seldom in an answer: its validator is built on first use

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


# One per catalog GPU in every answer, built by gpus.fits from validated GPUs and integers
@dataclass(slots=True)
class GpuFit:
    """One GPU of the fit list: whether the estimate fits on `count` of it."""

    gpu: Annotated[str, Field(description="GPU slug (see /api/gpus).")]
    name: Annotated[str, Field(description="GPU name.")]
    count: Annotated[int, Field(description="GPUs the model is split across.")]
    memory_bytes: Annotated[int, Field(description="Memory of all `count` GPUs together, as the driver reports it.")]
    headroom_bytes: Annotated[int, Field(description="memory_bytes - total_bytes; negative when it does not fit.")]
    fits: Annotated[bool, Field(description="Whether the total fits in the memory this runtime may use on them.")]


class TracedPeak(BaseModel):
    """transformers' real code traced on fake tensors (torch MemTracker) beside our formula, in bytes."""

    model_config = ConfigDict(defer_build=True)  # seldom in an answer: its validator is built on first use

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


# --- vLLM's answer: its startup figures, per GPU ---
@dataclass(slots=True, kw_only=True)
class VllmFix:
    """One change that lets vLLM start: the flag and the value to pass."""

    flag: Annotated[str, Field(description="Request field (vLLM flag) to change.")]
    value: Annotated[str, Field(description="Value that makes the KV budget hold one max_model_len sequence.")]
    note: Annotated[str, Field(description="What it costs or why it works.")]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)  # kept per stages, GPU and utilization, shared by answers
class VllmStage:
    """One pipeline stage as each of its GPUs holds it (vLLM logs one line per stage worker)."""

    index: Annotated[int, Field(
        description="Stage index (0 holds the embedding, the last holds lm_head and the sampler).")]
    layers: Annotated[int, Field(description="Decoder layers on this stage.")]
    weights_bytes: Annotated[int, Field(description="Weights on one GPU of this stage.")]
    activation_peak_bytes: Annotated[int, Field(description="Profiled torch peak on one GPU of this stage.")]
    non_torch_bytes: Annotated[int, Field(description="Non-torch growth during profiling.")]
    kv_budget_bytes: Annotated[int | None, Field(description="This stage's KV budget (None without a GPU).")]
    kv_blocks: Annotated[int | None, Field(description="Blocks this stage's budget holds; vLLM uses the smallest.")]
    kv_block_bytes: Annotated[int, Field(description="One KV block over this stage's layers on one GPU.")]


@dataclass(slots=True, kw_only=True)
class VllmDetail:
    """What vLLM computes at startup, per GPU (the first pipeline stage when pipeline_parallel_size > 1).

    Mirrors the startup log: "Model loading took", "torch peak memory increase", "non-torch forward
    increase memory", "Available KV cache memory", "GPU KV cache size", "Maximum concurrency".
    """

    version: Annotated[str, Field(description="vLLM release range the constants describe (vllm_version).")]
    gpu_memory_utilization: Annotated[float, Field(
        description="Share of each GPU vLLM claims (--gpu-memory-utilization).")]
    max_model_len: Annotated[int, Field(description="Longest sequence admitted (tokens).")]
    max_num_seqs: Annotated[int, Field(
        description="Sequences per step, as resolved (the sampler is profiled over them).")]
    max_num_batched_tokens: Annotated[int, Field(
        description="Tokens per step, as resolved (the profiling forward pass).")]
    block_size: Annotated[int, Field(description="Tokens per KV block.")]
    dtype: Annotated[str, Field(description="Compute dtype vLLM resolves (--dtype).")]
    kv_cache_dtype: Annotated[str, Field(description="KV element type vLLM resolves (--kv-cache-dtype).")]
    quantization: Annotated[str | None, Field(description="vLLM's quantization method name, or None for 16/32-bit.")]
    tensor_parallel_size: Annotated[int, Field(description="GPUs each layer is split across.")]
    pipeline_parallel_size: Annotated[int, Field(description="Stages the layers are split across.")]
    data_parallel_size: Annotated[int, Field(
        description="Engine replicas; every figure here is one GPU of one replica.")] = 1
    enable_expert_parallel: Annotated[bool, Field(
        description="Whole MoE experts per GPU over the tensor x data parallel ranks.")] = False
    enforce_eager: Annotated[bool, Field(description="No CUDA graphs when true.")]
    gpu_total_bytes: Annotated[int | None, Field(description="One GPU's total as torch.cuda.mem_get_info reports it.")]
    weights_bytes: Annotated[int, Field(
        description="Weights on one GPU: its share of the split linears and vocab-parallel embeddings, plus "
                    "replicated norms and rotary cache.")]
    weights_replicated_bytes: Annotated[int, Field(description="Part of weights_bytes every GPU holds in full.")]
    activation_peak_bytes: Annotated[int, Field(description="Torch peak of the profiling run (forward + sampler).")]
    non_torch_bytes: Annotated[int, Field(description="Non-torch growth during profiling (NCCL buffers with TP/PP).")]
    requested_bytes: Annotated[int | None, Field(
        description="gpu_memory_utilization x gpu_total_bytes (0.34's extensible KV cache: at most the memory free at "
                    "start).")]
    kv_budget_bytes: Annotated[int | None, Field(
        description="requested - weights - activation peak - non-torch - the CUDA-graph estimate (0.20+); 0.34 "
                    "extensible: also at most free - used - margin - transient peak (negative: does not start).")]
    kv_block_bytes: Annotated[int, Field(description="One block of block_size tokens over this GPU's layers.")]
    kv_blocks: Annotated[int | None, Field(description="Blocks the budget holds (GPU blocks).")]
    kv_tokens: Annotated[int | None, Field(description="GPU KV cache size: kv_blocks x block_size tokens.")]
    max_concurrency: Annotated[float | None, Field(
        description="Sequences of `context` (+ image) tokens that fit at once.")]
    cuda_graph_bytes: Annotated[int, Field(
        description="CUDA graph pool, captured after the KV cache, above the budget.")]
    cuda_context_bytes: Annotated[int, Field(description="CUDA context, outside torch and outside the budget.")]
    process_bytes: Annotated[int | None, Field(
        description="What the process holds on one GPU once serving: context + weights + activation + non-torch + KV "
                    "cache + graph pool.")]
    cuda_graph_estimate_bytes: Annotated[int, Field(
        description="CUDA-graph memory estimate subtracted inside the budget "
                    "(VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, on by default from 0.20).")] = 0
    equivalent_gpu_memory_utilization: Annotated[float | None, Field(
        description="What vLLM prints when the estimate is on: the utilization that gives the same KV cache without "
                    "the estimate (utilization - estimate / total), rounded to 4 places.")] = None
    suggested_gpu_memory_utilization: Annotated[float | None, Field(
        description="... and the utilization that keeps the KV cache of an earlier release: min(utilization + "
                    "estimate / total, 1).")] = None
    extensible_kv_cache: Annotated[bool, Field(
        description="0.34: the KV cache is sized after warmup from measured free memory: min(requested - non-KV, free "
                    "- margin) - transient peak.")] = False
    calibrated: Annotated[bool, Field(
        description="False: this release range is not checked against a startup log.")] = True
    headroom_bytes: Annotated[int | None, Field(
        description="Per GPU: KV budget beyond one max_model_len sequence when it starts; minus the shortfall when it "
                    "does not.")] = None
    starts: Annotated[bool | None, Field(description="Whether startup succeeds (None when no GPU was named).")]
    shortfall_bytes: Annotated[int, Field(
        description="Bytes missing for one max_model_len sequence (0 when it starts).")] = 0
    fixes: Annotated[list[VllmFix], Field(
        description="Smallest changes that make it start.",
        json_schema_extra=EMPTY_LIST)] = field(default_factory=list)
    stages: Annotated[list[VllmStage], Field(
        description="Every pipeline stage; the figures above are those of the stage with the fewest KV blocks.",
        json_schema_extra=EMPTY_LIST)] = field(default_factory=list)
    speculative_method: Annotated[str | None, Field(
        description="--speculative-config method (mtp: the checkpoint's MTP layers as the draft); None: no "
                    "speculative decoding.")] = None
    num_speculative_tokens: Annotated[int, Field(description="Draft tokens proposed per step (0: none).")] = 0
    draft_layers: Annotated[int, Field(description="MTP layers vLLM loads as the draft model.")] = 0
    draft_weights_bytes: Annotated[int, Field(
        description="Of weights_bytes (last pipeline stage): the draft's own parameters on one GPU; its embed_tokens "
                    "and lm_head are the target's.")] = 0
    draft_kv_bytes_per_token: Annotated[int, Field(
        description="KV bytes per token of the draft's attention layer(s) on one GPU; they are planned with the "
                    "target's layers (of kv_block_bytes).")] = 0
    draft_kv_bytes: Annotated[int | None, Field(
        description="Of the KV cache on one GPU: the draft's layers' pages (kv_tokens x draft_kv_bytes_per_token; "
                    "None for grouped hybrid plans, where the draft's layer takes a page slot in its group).")] = None


# --- Hub source: the commit a fetched config.json came from ---
class HubSource(BaseModel):
    """Where a model fetched from the Hugging Face Hub came from, and its checkpoint size cross-check."""

    model_config = ConfigDict(defer_build=True)  # seldom in an answer: its validator is built on first use

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
    notes: list[str] = Field([], description="What could not be pinned or read, and why.")


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
    # --- parts present only when the request or its runtime calls for them ---
    trace: TracedPeak | None = Field(None, description="With trace=true: the traced allocated peak.")
    hub: HubSource | None = Field(
        None, description="For a model fetched from the Hugging Face Hub: the pinned revision and the check of "
                          "our weight bytes against the repo's safetensors index.")
    host: HostMemory | None = Field(None, description="llama.cpp: host RAM beside the GPU breakdown.")
    llamacpp: LlamaCppReport | None = Field(None, description="llama.cpp: resolved context and its buffers.")
    vllm: VllmDetail | None = Field(None, description="vLLM's own startup figures, per GPU (runtime vllm).")
    # how to run it: the runtime's command line, and the releases the estimate describes
    command: str | None = Field(None, description="The invocation that runs this estimate: llama-server, "
                                "vllm serve, or transformers from_pretrained.")
    runtime_versions: str | None = Field(None, description="Runtime releases this estimate's model describes.")
    gguf_file: GgufFileReport | None = Field(None, description="POST /api/gguf: the uploaded file's header.")
    # --- per-layer cache model ---
    cache: CacheReport | None = Field(None, description="The cache per layer: KV (grows with tokens) and recurrent "
                                                        "state (grows with sequences), apart.")

    @field_serializer("request", mode="wrap")
    def _request(self, request: ResolvedRequest, handler):
        out = handler(request)
        if out.get("llm_int8_skip_modules") is None:  # present only where a list applied
            out.pop("llm_int8_skip_modules", None)
        return out

    def runs(self) -> bool | None:
        """The one verdict for the requested GPU, which every view shows: vLLM's own startup decision
        (`vllm.starts`) when vLLM was modelled on a GPU, else whether the total fits it; None without a GPU."""
        if self.vllm is not None and self.vllm.starts is not None:
            return self.vllm.starts
        return self.fits[0].fits if self.request.gpu and self.fits else None

    def margin_bytes(self) -> int | None:
        """Bytes to spare (>= 0) or missing (< 0) behind `runs()`: vLLM's shortfall when it does not start."""
        if self.vllm is not None and self.vllm.starts is False:
            return -self.vllm.shortfall_bytes
        return self.fits[0].headroom_bytes if self.request.gpu and self.fits else None


class WeightGroup(BaseModel):
    """Tensors of one name pattern stored as one type: a row of the weights table."""

    model_config = ConfigDict(defer_build=True)  # built on first use, as WeightsRequest

    name: str = Field(description="Tensor name with the layer index as N.")
    part: str = Field(description="language or vision.")
    type: str = Field(description="Storage type (GGML type, or the format's label for quantized linears).")
    count: int = Field(description="Tensors in this row.")
    parameters: int = Field(description="Elements they hold.")
    bytes: int = Field(description="Bytes as stored.")


class WeightsReport(BaseModel):
    """A checkpoint as stored in one format."""

    model_config = ConfigDict(defer_build=True)  # built on first use, as WeightsRequest

    model: str
    quantization: str
    total_bytes: int
    parameters: int
    stored_elements: int
    bits_per_weight: float
    groups: list[WeightGroup]
