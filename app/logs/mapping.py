"""Settings recovered from a log -> a VramRequest, and the model it names -> a catalog spec.

Tables, not if-chains: llama.cpp file types (include/llama.h enum llama_ftype, and the names
llama_model_ftype_name prints), vLLM quantization method names (vllm/model_executor/layers/quantization
QUANTIZATION_METHODS) and torch dtypes, each mapped onto this calculator's format slugs.
"""

from __future__ import annotations

import re
from typing import Any

from app.estimator.limits import LIMITS
from app.estimator.spec import Card, LanguageModel, ModelSpec
from app.logs.model import ParsedLog

GGUF_FILE_TYPES = {0: "fp32", 1: "f16", 2: "q4_0", 7: "q8_0", 8: "q5_0", 10: "q2_k", 11: "q3_k_s", 12: "q3_k_m",
                   13: "q3_k_l", 14: "q4_k_s", 15: "q4_k_m", 16: "q5_k_s", 17: "q5_k_m", 18: "q6_k", 19: "iq2_xxs",
                   23: "iq3_xxs", 25: "iq4_nl", 27: "iq3_m", 29: "iq2_m", 30: "iq4_xs", 31: "iq1_m",
                   38: "mxfp4_moe",
                   # Ollama's gpt-oss blobs: its fs/ggml FileTypeMXFP4 took llama.cpp's retired value 4
                   # (LLAMA_FTYPE_MOSTLY_Q4_1_SOME_F16, no longer written); same tensors as MXFP4_MOE
                   4: "mxfp4_moe"}
GGUF_FTYPE_NAMES = {"F16": "f16", "Q4_0": "q4_0", "Q8_0": "q8_0", "Q5_0": "q5_0", "Q2_K - Medium": "q2_k",
                    "Q3_K - Small": "q3_k_s", "Q3_K - Medium": "q3_k_m", "Q3_K - Large": "q3_k_l",
                    "Q4_K - Small": "q4_k_s", "Q4_K - Medium": "q4_k_m", "Q5_K - Small": "q5_k_s",
                    "Q5_K - Medium": "q5_k_m", "Q6_K": "q6_k", "IQ4_XS - 4.25 bpw": "iq4_xs",
                    "IQ4_NL - 4.5 bpw": "iq4_nl", "IQ2_XXS - 2.0625 bpw": "iq2_xxs", "IQ3_XXS - 3.0625 bpw": "iq3_xxs",
                    "IQ2_M - 2.7 bpw": "iq2_m", "IQ3_S mix - 3.66 bpw": "iq3_m", "IQ1_M - 1.75 bpw": "iq1_m",
                    "MXFP4 MoE": "mxfp4_moe"}
VLLM_QUANT = {"fp8": "fp8", "gptq": "gptq-int4", "gptq_marlin": "gptq-int4", "awq": "awq-int4",
              "awq_marlin": "awq-int4", "bitsandbytes": "bnb-nf4-dq"}  # vLLM loads bnb 4-bit with double quant
# compressed-tensors checkpoints name their scheme in the repository name (RedHatAI convention)
COMPRESSED_SCHEMES = {"w4a16": "gptq-int4", "w8a8": "int8", "fp8-dynamic": "fp8-dynamic", "fp8": "fp8"}
VLLM_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32"}
KV_TYPES = {"f16": "f16", "f32": "f32", "bf16": "bf16", "q8_0": "q8_0", "q4_0": "q4_0", "q4_1": "q4_1",
            "iq4_nl": "iq4_nl", "q5_0": "q5_0", "q5_1": "q5_1"}
_TRUE = {"1", "true", "enabled", "on", "True"}
# ggml device names (ggml_backend_dev_name: CUDA0, ROCm0, MTL0, Vulkan0, SYCL0) -> the request's `backend`
DEVICE_BACKENDS = {"CUDA": "cuda", "ROCm": "rocm", "MTL": "metal", "Metal": "metal", "Vulkan": "vulkan",
                   "SYCL": "sycl"}
# GGUF architectures whose released config this log's metadata can stand in for (qkv biases per family)
LOG_ARCHITECTURES = {"llama": {"qkv_bias": False}, "qwen2": {"qkv_bias": True}, "mistral": {"qkv_bias": False}}


def quantization(log: ParsedLog) -> str | None:
    """The weight format slug the log's file type or vLLM settings name, or None."""
    if log.runtime == "llama.cpp":
        name = log.setting("meta.model ftype")
        ollama = str(log.setting("ollama.file_type", "")).lower()
        return (GGUF_FTYPE_NAMES.get(str(name)) or GGUF_FILE_TYPES.get(log.setting("gguf.general.file_type", -1))
                or (ollama if ollama in GGUF_FILE_TYPES.values() else None))
    method = log.setting("quantization")
    if method == "compressed-tensors":
        repo = str(log.setting("model", "")).lower()
        return next((v for k, v in COMPRESSED_SCHEMES.items() if k in repo), None)
    if method:
        return VLLM_QUANT.get(str(method))
    return VLLM_DTYPES.get(str(log.setting("dtype", "")))


def llamacpp_request(log: ParsedLog) -> dict[str, Any]:
    """llama.cpp context settings -> VramRequest fields (llama.cpp's own names)."""
    n_seq = int(log.setting("n_seq_max", log.setting("cmd.n_seq_max", 1)))
    n_ctx = log.setting("n_ctx", log.setting("cmd.n_ctx"))
    per_seq = log.setting("n_ctx_per_seq", log.setting("n_ctx_seq"))
    req: dict[str, Any] = {"runtime": "llama.cpp", "batch": n_seq, "n_parallel": n_seq}
    if n_ctx is not None:
        req["n_ctx"] = int(n_ctx)
        req["context"] = int(per_seq or int(n_ctx) // n_seq)
    for key in ("n_batch", "n_ubatch"):
        if log.setting(key) is not None:
            req[key] = int(log.setting(key))
    if log.setting("flash_attn") is not None:
        req["flash_attention"] = str(log.setting("flash_attn")) in _TRUE
    # before llama.cpp's per-sequence caches (mid-2025) one pool served every sequence: unified
    req["kv_unified"] = str(log.setting("kv_unified", "true")) in _TRUE
    for ours, theirs in (("cache_type_k", "type_k"), ("cache_type_v", "type_v")):
        if str(log.setting(theirs)) in KV_TYPES:
            req[ours] = KV_TYPES[str(log.setting(theirs))]
    if log.setting("cmd.embeddings"):
        req["embeddings"] = True
    backend = _backend(log)
    if backend:
        req["backend"] = backend
    if log.setting("n_gpu_layers") is not None:
        req["n_gpu_layers"] = int(log.setting("n_gpu_layers"))
    elif log.figures and all(_on_host(f.device) for f in log.figures if f.device):
        req["n_gpu_layers"] = 0  # a CPU-only run: every buffer it printed is a host buffer
    return req


def _backend(log: ParsedLog) -> str | None:
    """The ggml backend the log's device names belong to (the first one named), or None."""
    for f in log.figures:
        m = re.match(r"[A-Za-z]+", f.device or "")
        if m and m[0] in DEVICE_BACKENDS:
            return DEVICE_BACKENDS[m[0]]
    return None


def _on_host(device: str) -> bool:
    return any(h in device for h in ("CPU", "Host", "host", "Mapped"))  # CPU, CPU_Mapped, CUDA_Host


def vllm_request(log: ParsedLog) -> dict[str, Any]:
    """vLLM settings -> VramRequest fields (vLLM's own names)."""
    req: dict[str, Any] = {"runtime": "vllm"}
    length = log.setting("max_model_len", log.setting("concurrency_tokens"))  # V0 logs print only the latter
    if length is not None:
        req["context"] = req["max_model_len"] = int(length)
    for key in ("gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "block_size", "enforce_eager"):
        if log.setting(key) is not None:
            req[key] = log.setting(key)
    tp, pp = int(log.setting("tensor_parallel_size", 1)), int(log.setting("pipeline_parallel_size", 1))
    req.update(tensor_parallel_size=tp, pipeline_parallel_size=pp, gpu_count=tp * pp)
    kv = str(log.setting("kv_cache_dtype", "auto"))
    req["kv_cache_dtype"] = kv if kv in ("auto", "fp8", "fp8_e4m3", "fp8_e5m2") else "auto"
    if kv.startswith("fp8"):
        req["kv_cache"] = "fp8"
    if str(log.setting("dtype")) in ("bfloat16", "float16", "float32"):
        req["dtype"] = log.setting("dtype")
    if log.version and re.fullmatch(r"\d+\.\d+(\.\d+)?", log.version):
        req["vllm_version"] = log.version
    return req


# Re-published checkpoints named after the model they quantize or fine-tune (RedHatAI, unsloth,
# TheBloke conventions); tried in order, each on the previous result.
_RENAMES = [(r"^meta-", "published under Meta's old name"),
            (r"-(quantized\.[\w]+|fp8-dynamic|fp8|awq|gptq[\w-]*|bnb-4bit|unsloth-bnb-4bit)$", "quantized copy of it"),
            (r"-(instruct|it|chat)$", "fine-tune of it")]


def _shape(spec: ModelSpec) -> tuple[int, ...]:
    lm = spec.language_model
    return lm.layers, lm.hidden, lm.heads, lm.kv_heads, lm.ffn, lm.vocab


def _log_shape(log: ParsedLog) -> tuple[int, ...] | None:
    keys = ("meta.n_layer", "meta.n_embd", "meta.n_head", "meta.n_head_kv", "meta.n_ff", "meta.n_vocab")
    values = [log.setting(k) for k in keys]
    return tuple(values) if all(isinstance(v, int) for v in values) else None  # type: ignore[return-value]


def find_model(log: ParsedLog, models: dict[str, ModelSpec]) -> tuple[ModelSpec | None, str]:
    """The catalog entry the log names (repo id), else one of identical architecture, else one built from
    the log's own GGUF metadata. Returns the spec (or None) and how it was found."""
    repo = str(log.setting("model", "")).lower()
    for spec in models.values():
        if repo and (spec.hf_repo.lower() == repo or spec.slug == repo.rsplit("/", 1)[-1]):
            return spec, f"catalog entry {spec.slug} (named by the log)"
    name = repo.rsplit("/", 1)[-1]
    for pattern, why in _RENAMES:
        stripped = re.sub(pattern, "", name)
        if stripped != name and stripped in models:
            return models[stripped], f"catalog entry {stripped}: same architecture as {repo} ({why})"
        name = stripped
    shape = _log_shape(log)
    same = [spec for spec in models.values() if shape is not None and _shape(spec) == shape]
    if same:
        words = set(re.findall(r"[a-z0-9.]+", str(log.setting("meta.general.name", "")).lower()))
        def score(s: ModelSpec) -> tuple[int, int]:  # most words of the log's name, then fewest others
            slug_words = set(re.findall(r"[a-z0-9.]+", s.slug.replace("-", " ")))
            return len(words & slug_words), -len(slug_words - words)
        spec = max(same, key=score)
        return spec, f"catalog entry {spec.slug}: same architecture as the log's GGUF metadata"
    spec = spec_from_metadata(log)
    return (spec, "built from the log's GGUF metadata") if spec else (None, "no model could be identified")


def spec_from_metadata(log: ParsedLog) -> ModelSpec | None:
    """A dense-model spec from llama.cpp's printed metadata (architectures in LOG_ARCHITECTURES only)."""
    arch, shape = str(log.setting("meta.arch", "")), _log_shape(log)
    if arch not in LOG_ARCHITECTURES or shape is None:
        return None
    layers, hidden, heads, kv_heads, ffn, vocab = shape
    highs = (LIMITS["layers"], LIMITS["width"], LIMITS["width"], LIMITS["width"], LIMITS["width"], LIMITS["vocab"])
    if not all(1 <= v <= high for v, high in zip(shape, highs, strict=True)):
        return None  # the config importer's bounds: a log is user input too
    lm = LanguageModel(
        source="the pasted log's GGUF metadata (print_info / llm_load_print_meta)", layers=layers, hidden=hidden,
        heads=heads, kv_heads=kv_heads, head_dim=int(log.setting("meta.n_embd_head_k", hidden // heads)), ffn=ffn,
        ffn_kind="swiglu", vocab=vocab, tied_embeddings=False, linear_bias=False, norm="rmsnorm",
        max_context=int(log.setting("meta.n_ctx_train", 4096)), fused_qkv=False, dtype="bfloat16",
        **LOG_ARCHITECTURES[arch])
    name = str(log.setting("meta.general.name", arch))
    slug = re.sub(r"[^a-z0-9.\-]+", "-", name.lower()).strip("-") or "from-log"
    card = Card(source="the pasted log", fields=[], description=[])
    return ModelSpec(slug=slug, name=name, family=arch, hf_repo="", released="unknown", license="unknown",
                     modality="text", language_model=lm, card=card)
