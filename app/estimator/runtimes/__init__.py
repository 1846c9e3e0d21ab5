"""Runtime registry: slug -> memory model. Adding a runtime means adding a module and an entry."""

from dataclasses import replace

from app.estimator.runtimes import llamacpp, transformers, vllm, vllm_profiles
from app.estimator.runtimes.base import Runtime, RuntimeInput, RuntimeMemory

RUNTIMES: dict[str, Runtime] = {r.slug: r for r in (transformers.RUNTIME, llamacpp.RUNTIME, vllm.RUNTIME)}

# --- runtime versions ---
# The releases each model was written and checked against: vLLM from its per-release profiles (0.7 to the
# newest, 0.34; those checked against a startup log say so: 0.7 V4, 0.15-0.18 V3, 0.19 V1/V2, 0.21 G02);
# llama.cpp builds 2961-8000 (the public logs of field cases L1-L4 and the llama-cpp-python build used
# here); transformers 4.4x-5.x.
_CHECKED = [p.name for p in vllm_profiles.PROFILES if p.calibrated]
_FIRST, _LAST = vllm_profiles.PROFILES[0], vllm_profiles.PROFILES[-1]
_VLLM_RANGE = (f"vLLM {_FIRST.first[0]}.{_FIRST.first[1]} to {_LAST.first[0]}.{_LAST.first[1]}.x (constants per "
               f"release range; checked against startup logs: {', '.join(_CHECKED)})",
               f"{_FIRST.first[0]}.{_FIRST.first[1]}.0", f"{_LAST.next[0]}.{_LAST.next[1] - 1}.99")
_VERSIONS = {"vllm": _VLLM_RANGE,
             "llama.cpp": ("llama.cpp builds b2961 to b8000 (2024-05 to 2026)", "2961", "8000"),
             "transformers": ("transformers 4.40 to 5.x", "4.40.0", "5.99.99")}
RUNTIMES = {slug: replace(r, versions=_VERSIONS[slug][0], versions_min=_VERSIONS[slug][1],
                          versions_max=_VERSIONS[slug][2]) if slug in _VERSIONS else r
            for slug, r in RUNTIMES.items()}

__all__ = ["RUNTIMES", "Runtime", "RuntimeInput", "RuntimeMemory"]
