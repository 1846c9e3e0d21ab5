"""Runtime registry: slug -> memory model. Adding a runtime means adding a module and an entry.

Each entry is the runtime's description (label, KV types, releases, what it refuses) and its memory model by
name: the module loads when the runtime first answers, so `vram` on a llama.cpp request never imports vLLM's
model (a fast cold start)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from app.estimator.runtimes import vllm_profiles
from app.estimator.runtimes.base import Runtime, RuntimeInput, RuntimeMemory


def by_name(module: str, name: str) -> Callable[..., Any]:
    """`app.estimator.runtimes.<module>.<name>`, imported at its first call."""
    found: list[Callable[..., Any]] = []

    def call(*args: Any) -> Any:
        if not found:
            found.append(getattr(importlib.import_module(f"app.estimator.runtimes.{module}"), name))
        return found[0](*args)

    call.__qualname__ = call.__name__ = f"{module}.{name}"
    return call


def _compute_dtype_kv(spec: Any, fmt: Any) -> str:
    """transformers: the KV cache in the compute dtype (the format's for a 16/32-bit format, else the model's)."""
    return fmt.slug if fmt.slug in ("fp32", "fp16", "bf16") else spec.dtype_slug


# The releases each model was written and checked against: vLLM from its per-release profiles (0.7 to the
# newest, 0.34; those checked against a startup log say so: 0.7 V4, 0.15-0.18 V3, 0.19 V1/V2, 0.21 G02);
# llama.cpp builds 2961-8000 (the public logs of field cases L1-L4 and the llama-cpp-python build used
# here); transformers 4.4x-5.x.
_CHECKED = [p.name for p in vllm_profiles.PROFILES if p.calibrated]
_FIRST, _LAST = vllm_profiles.PROFILES[0], vllm_profiles.PROFILES[-1]

RUNTIMES: dict[str, Runtime] = {r.slug: r for r in (
    Runtime(
        slug="transformers",
        label="Hugging Face transformers (PyTorch)",
        source=("transformers generate() with DynamicCache (src/transformers/cache_utils.py); allocated peak traced "
                "on fake tensors (torch MemTracker)"),  # shared/reference/quantization-and-runtimes.md s5
        kv_types=("bf16", "fp16", "fp32"),
        default_kv=_compute_dtype_kv,
        memory=by_name("transformers", "memory"),
        versions="transformers 4.40 to 5.x", versions_min="4.40.0", versions_max="5.99.99",
    ),
    Runtime(
        slug="llama.cpp",
        label="llama.cpp (CUDA)",
        source="llama.cpp src/llama-context.cpp, src/llama-model.cpp, src/llama-kv-cache.cpp",
        kv_types=("fp16", "bf16", "fp32", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"),
        default_kv=lambda spec, fmt: "fp16",
        memory=by_name("llamacpp", "memory"),
        versions="llama.cpp builds b2961 to b8000 (2024-05 to 2026)", versions_min="2961", versions_max="8000",
        unsupported={
            # gguf 0.19.0 (llama.cpp's gguf-py, constants.py MODEL_ARCH): deepseek, deepseek2, deepseek2-ocr only
            "DeepSeek-V4": "llama.cpp has no DeepSeek-V4 architecture (gguf-py 0.19.0 MODEL_ARCH lists deepseek, "
                           "deepseek2 and deepseek2-ocr only): convert_hf_to_gguf.py cannot write a GGUF of it and "
                           "llama.cpp cannot load one",
        },
    ),
    Runtime(
        slug="vllm",
        label="vLLM (paged KV cache)",
        source=("vLLM vllm/v1/worker/gpu_worker.py (determine_available_memory), vllm/v1/core/kv_cache_utils.py; "
                "constants calibrated on published vLLM startup logs (llm-d-incubation/llm-d-planner "
                "accuracy/results, github.com/vllm-project/vllm/issues/13882)"),
        kv_types=("bf16", "fp16", "fp32", "fp8"),
        default_kv=by_name("vllm_flags", "default_kv"),
        memory=by_name("vllm", "memory"),
        versions=(f"vLLM {_FIRST.first[0]}.{_FIRST.first[1]} to {_LAST.first[0]}.{_LAST.first[1]}.x (constants per "
                  f"release range; checked against startup logs: {', '.join(_CHECKED)})"),
        versions_min=f"{_FIRST.first[0]}.{_FIRST.first[1]}.0", versions_max=f"{_LAST.next[0]}.{_LAST.next[1] - 1}.99",
        release_ranges=tuple(p.name for p in vllm_profiles.PROFILES),
        cuda_total=True,
        unsupported={
            # vllm 0.32.0 and 0.34.0: model_executor/models/registry.py DeepseekV4ForCausalLM ->
            # vllm/models/deepseek_v4 (attention.py DeepseekV4SWACache, MLAAttentionSpec with tokens_per_state,
            # DeepseekV4IndexerCache; compressor.py CompressorStateCache, SlidingWindowMLASpec)
            "DeepSeek-V4": "vLLM runs DeepSeek-V4 (vllm/models/deepseek_v4, 0.32 and 0.34), but its cache is not "
                           "modelled here yet: a separate sliding-window cache, compressed MLA pages holding one "
                           "entry per compress rate tokens (fp8_ds_mla rows of 584 bytes), an indexer cache and "
                           "float32 compressor-state pages; use runtime=transformers",
        },
    ),
)}

__all__ = ["RUNTIMES", "Runtime", "RuntimeInput", "RuntimeMemory", "by_name"]
