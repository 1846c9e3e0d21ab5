"""Runtime registry: slug -> memory model. Adding a runtime means adding a module and an entry."""

from dataclasses import replace

from app.estimator.runtimes import llamacpp, transformers, vllm
from app.estimator.runtimes.base import Runtime, RuntimeInput, RuntimeMemory

RUNTIMES: dict[str, Runtime] = {r.slug: r for r in (transformers.RUNTIME, llamacpp.RUNTIME, vllm.RUNTIME)}

# --- runtime versions (issue 14) ---
# The releases each model was written and checked against: vLLM 0.17-0.19 (field cases V1-V3, the
# llm-d-planner runs of 0.15-0.19 show the activation peak changed at 0.17); llama.cpp builds 2961-8000
# (the public logs of field cases L1-L4 and the llama-cpp-python build used here); transformers 4.4x-5.x.
_VERSIONS = {"vllm": ("vLLM 0.17.0 to 0.19.x", "0.17.0", "0.19.99"),
             "llama.cpp": ("llama.cpp builds b2961 to b8000 (2024-05 to 2026)", "2961", "8000"),
             "transformers": ("transformers 4.40 to 5.x", "4.40.0", "5.99.99")}
RUNTIMES = {slug: replace(r, versions=_VERSIONS[slug][0], versions_min=_VERSIONS[slug][1],
                          versions_max=_VERSIONS[slug][2]) if slug in _VERSIONS else r
            for slug, r in RUNTIMES.items()}

__all__ = ["RUNTIMES", "Runtime", "RuntimeInput", "RuntimeMemory"]
