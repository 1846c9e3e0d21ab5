"""vLLM's behaviour per release range: defaults, sampler profile, non-torch memory, CUDA graphs.

The startup profiler's figures changed between releases with nothing else changed (Qwen3-14B on an H100:
torch activation peak 5.64 GiB in 0.15.0/0.16.0, 2.23 GiB in 0.17.0; non-torch 0.13 -> 0.25 GiB in
0.18.0), so every constant here names the release range it describes. Fitted constants come from
`python -m app.measure.vllm_fit` on the cases in `app/measure/vllm_cases.json`; each names its cases.

Sources of the printed figures: vLLM 0.19.0 and version-sweep startup logs in
https://github.com/llm-d-incubation/llm-d-planner (accuracy/results/, commit d3121e05), and
https://github.com/vllm-project/vllm/issues/13882 (vLLM 0.7.3, RTX 4060).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from app.estimator.errors import InvalidRequest

GiB = 1 << 30
MiB = 1 << 20
LARGE_GPU_BYTES = 70 * GiB  # vllm/engine/arg_utils.py: ">= 70 GiB and not an A100" gets larger batch defaults


# How the profiler measures non-KV memory (VllmProfile.non_kv_measure). Both give weights + activation peak +
# non-torch for the model here; they differ by persistent torch allocations made during profiling, which
# this model does not have, so the arithmetic is the same and the answer names the rule.
NON_KV_MEASURES = {
    "torch peak": "weights + torch peak increase + non-torch increase (0.19 gpu_worker.py:387-391)",
    "mem_get_info": "total consumed (cudaMemGetInfo) + transient peak headroom (0.27+ vllm/utils/mem_utils.py:"
                    "326-336)",
}


def _gib(x: float) -> int:
    return round(x * GiB)


@dataclass(frozen=True, slots=True, eq=False, repr=False)  # PROFILES' own objects: equal and hashed by identity
class VllmProfile:
    """Constants of one vLLM release range. Ranges are [first, next) in (major, minor)."""

    name: str
    first: tuple[int, int]
    next: tuple[int, int]
    engine: str  # "V0" (LLMEngine) or "V1" (EngineCore)
    sampler_extra_bytes: float  # bytes per (sequence x vocab entry) of the sampler pass beyond the logits
    sampler_source: str
    non_torch_bytes: int  # non-torch growth during profiling on one GPU without parallelism
    non_torch_source: str
    calibrated: bool = True  # False: borrowed from the neighbouring range, not checked against a log
    # --- the KV budget's accounting (vllm/v1/worker/gpu_worker.py determine_available_memory) ---
    default_utilization: float = 0.90  # --gpu-memory-utilization when not given (estimate-based sizing)
    default_utilization_source: str = "vllm/config/cache.py gpu_memory_utilization = 0.9 (0.19.0 wheel, :41)"
    graph_estimate_switch: bool = False  # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS exists in this range
    graph_estimate_default: bool = False  # ... and its default: the CUDA-graph estimate inside the budget
    graph_estimate_source: str = "no CUDA-graph estimate before 0.19: the graph pool sits above the budget"
    non_kv_measure: str = "torch peak"  # "torch peak" (< 0.27) or "mem_get_info" (0.27+): see NON_KV_MEASURES
    extensible_kv_cache: bool = False  # 0.34: KV sized after warmup from measured free memory (CUDA/ROCm default)
    # --block-size when not given, on CUDA with FlashAttention (kernel blocks MultipleOf(16), which takes the default
    # as it is: vllm 0.34.0 v1/attention/backends/flash_attn.py:357-379, v1/attention/backend.py:158-166)
    default_block_size: int = 16
    default_block_size_source: str = ("16: vllm 0.11.0 platforms/cuda.py:126-127 (block_size None -> 16); 0.19.0 "
                                      "config/cache.py:34, 0.32.0 :72, 0.33.0 :185 DEFAULT_BLOCK_SIZE = 16 (0.7-0.10, "
                                      "0.12-0.18, 0.20-0.31: not read, taken as their neighbours')")
    checked_on: str = ""  # the logs this range's budget accounting was checked or fitted on


# Sampler pass: vLLM profiles the sampler on max_num_seqs rows of logits. Per (row x vocab entry) it
# holds the lm_head output in the model dtype plus `sampler_extra_bytes` (fp32 logits, probabilities,
# noise, masks...). Fitted by app/measure/vllm_fit.py (see its report for the fit and held-out cases).
SAMPLER_EXTRA_V017 = 13.08  # fit: V1 Llama-3.1-8B (bf16, fp16, fp32, fp8, TP2/4), V2, V3 0.17/0.18 (max of cases)
SAMPLER_EXTRA_V015 = 36.38  # fit: V3 Qwen3-14B 0.15.0/0.16.0 (5.64 GiB); checked on V4 (0.7.3)

# 0.20+: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults to 1; default utilization 0.92
# (vllm/config/cache.py: 0.20.0 gpu_memory_utilization = 0.92; 0.34.0 :186 DEFAULT_GPU_MEMORY_UTILIZATION).
_ESTIMATE_IN_BUDGET = {"graph_estimate_switch": True, "graph_estimate_default": True, "default_utilization": 0.92,
                       "default_utilization_source": "vllm/config/cache.py: 0.92 from 0.20.0 (0.34.0 :186 "
                       "DEFAULT_GPU_MEMORY_UTILIZATION)"}

PROFILES: tuple[VllmProfile, ...] = (
    VllmProfile("0.7", (0, 7), (0, 8), "V0", SAMPLER_EXTRA_V015,
                "sampler as 0.15/0.16 (V3 fit); V4 (0.7.3) activation 1.42 GiB reproduced within 1%",
                _gib(0.03), "V4: vLLM 0.7.3 on an RTX 4060, non_torch_memory 0.03 GiB"),
    VllmProfile("0.8-0.14", (0, 8), (0, 15), "V1", SAMPLER_EXTRA_V015,
                "assumed as 0.15-0.16 (no log of these releases checked)",
                _gib(0.13), "assumed as 0.15-0.16", calibrated=False),
    VllmProfile("0.15-0.16", (0, 15), (0, 17), "V1", SAMPLER_EXTRA_V015,
                "V3: Qwen3-14B 0.15.0/0.16.0 activation 5.64 GiB",
                _gib(0.13), "V3: Qwen3-14B 0.15.0-0.17.0 non-torch 0.13 GiB"),
    VllmProfile("0.17", (0, 17), (0, 18), "V1", SAMPLER_EXTRA_V017,
                "V3: Qwen3-14B 0.17.0 activation 2.23 GiB",
                _gib(0.13), "V3: Qwen3-14B 0.17.0 non-torch 0.13 GiB"),
    VllmProfile("0.18-0.19", (0, 18), (0, 20), "V1", SAMPLER_EXTRA_V017,
                "V1: Llama-3.1-8B 0.19.0 activation 1.89 GiB (bf16), 2.21 GiB (fp32)",
                _gib(0.25), "V1: Llama-3.1-8B 0.19.0 non-torch 0.25 GiB; V3: Qwen3-14B 0.18.0 0.25 GiB",
                graph_estimate_switch=True,
                graph_estimate_source="0.19.0 envs.py:1654-1656: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default "
                "0 (the estimate is computed but applied only when set to 1)",
                checked_on="V1, V2 (0.19.0), V3 (0.18.0)"),
    # 0.20: the switch defaults to 1, so the CUDA-graph estimate moves inside the budget (the log line already
    # says "default since v0.21.0"); default utilization 0.92.
    VllmProfile("0.20", (0, 20), (0, 21), "V1", SAMPLER_EXTRA_V017,
                "assumed as 0.18-0.19 (no 0.20 log checked)",
                _gib(0.25), "assumed as 0.18-0.19", calibrated=False, **_ESTIMATE_IN_BUDGET,
                graph_estimate_source="0.20.0 envs.py:1724-1726: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default 1; "
                "gpu_worker.py:456 subtracts the estimate from the KV budget"),
    VllmProfile("0.21-0.26", (0, 21), (0, 27), "V1", SAMPLER_EXTRA_V017,
                "assumed as 0.18-0.19 (no 0.21 activation line in the logs)",
                _gib(0.25), "assumed as 0.18-0.19", **_ESTIMATE_IN_BUDGET,
                graph_estimate_source="0.21.0 gpu_worker.py:462-477 (Available KV cache memory after the estimate; "
                "the equivalent-utilization line), gpu_model_runner.py:6049-6147 (the estimate)",
                checked_on="G02 (0.21.0, RTX A5000): the CUDA-graph estimate per layer is fitted on it"),
    # 0.27: non-KV memory = total consumed (cudaMemGetInfo) + transient peak headroom (mem_utils.py:326-336)
    VllmProfile("0.27-0.33", (0, 27), (0, 34), "V1", SAMPLER_EXTRA_V017,
                "assumed as 0.18-0.19 (no 0.27-0.33 activation line in the logs)",
                _gib(0.25), "assumed as 0.18-0.19", calibrated=False, **_ESTIMATE_IN_BUDGET,
                graph_estimate_source="0.33.0 gpu_worker.py:707-724 (estimate applied when the switch is set)",
                non_kv_measure="mem_get_info",
                checked_on="G05 (nightly of Sep 2026): the budget arithmetic of its ledger line only"),
    # 0.34: the extensible KV cache (config/vllm.py:3181-3260 on for CUDA/ROCm), sized after warmup
    VllmProfile("0.34", (0, 34), (0, 35), "V1", SAMPLER_EXTRA_V017,
                "assumed as 0.18-0.19 (no 0.34 log checked)",
                _gib(0.25), "assumed as 0.18-0.19", calibrated=False, **_ESTIMATE_IN_BUDGET,
                graph_estimate_source="0.34.0 gpu_worker.py:747 (estimate only when the switch is set, then "
                "always applied), envs.py:2355-2357 (default 1)",
                non_kv_measure="mem_get_info", extensible_kv_cache=True, default_block_size=64,
                default_block_size_source="64: vllm 0.34.0 config/cache.py:185 DEFAULT_BLOCK_SIZE = 64, :488-489 "
                "(block_size None -> the default); platforms/interface.py:781-791 update_block_size_for_backend keeps "
                "it when the backend supports it (FlashAttention: MultipleOf(16))"),
)
NEWEST = "0.34.0"  # the default version: the newest release (0.34.0 on PyPI, December 2026)
NEWEST_CHECKED = "0.19.0"  # the newest release whose whole startup ledger a log checks (V1, V2)

# Non-torch growth with tensor parallelism, beyond the single-GPU figure: NCCL and custom all-reduce
# buffers. Printed: V1 (Llama-3.1-8B) TP1 0.25, TP2 2.07, TP4 2.13 GiB; V2 (70B fp8) TP2 2.10, TP4 2.21.
# Fit (app/measure/vllm_fit.py): the larger of the two minus 0.25. Larger TP: the TP4 figure.
NCCL_TP2_GIB = 1.85  # fit
NCCL_TP4_GIB = 1.96  # fit
NCCL_BYTES = {1: 0, 2: _gib(NCCL_TP2_GIB), 4: _gib(NCCL_TP4_GIB)}
# CUDA context and communicator set-up before profiling, outside the budget (worker init snapshot
# "cuda_memory"): V1 TP1 0.51 GiB; TP2 1.53; TP4 1.55 (same logs). PP2 1.43 (held out).
CUDA_CONTEXT_BYTES = {1: _gib(0.51), 2: _gib(1.53), 4: _gib(1.55)}
# CUDA graph pool, captured after the KV cache and outside the budget (0.19 default: PIECEWISE and FULL
# graphs for 51 batch sizes each). Grows with the piecewise graphs, one per layer: fitted a + b x layers
# on V1 (32 layers: 0.91 GiB) and V2 70B fp8 TP2 (80 layers: 1.79 GiB), same logs.
GRAPH_POOL_BASE_GIB = 0.3233  # fit (app/measure/vllm_fit.py)
GRAPH_POOL_PER_LAYER_GIB = 0.018333  # fit (app/measure/vllm_fit.py)


# CUDA-graph memory estimate subtracted inside the budget when VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS is
# on (0.20+ default): a throwaway capture of the largest sizes per mode, extrapolated (0.21
# gpu_model_runner.py:6049-6147; 0.34 v1/worker/gpu/cudagraph_utils.py:989). Fit: G02 (Qwen3-8B, 36 layers,
# vLLM 0.21.0, "Estimated CUDA graph memory: 0.52 GiB total", PIECEWISE=51, FULL=35), one case, per layer.
# G05's "0.2 GiB (estimated)" is of a model not in the catalog: not checked.
GRAPH_ESTIMATE_PER_LAYER_GIB = 0.52 / 36  # fit (G02)
# 0.34 extensible KV cache: v1/worker/extensible_kv_cache.py:64-65 (CUDA; ROCm keeps a 3 GiB floor)
KV_CACHE_MARGIN_FLOOR_BYTES = 1 << 30  # extensible_kv_cache.py:64 KV_CACHE_MARGIN_FLOOR_BYTES (CUDA)
KV_CACHE_MARGIN_FRACTION = 0.75  # extensible_kv_cache.py:65 KV_CACHE_MARGIN_FRACTION
EXTENSIBLE_UTILIZATION = 1.0  # config/cache.py:495 resolved_gpu_memory_utilization with the extensible cache


def graph_estimate_bytes(layers: int) -> int:
    return _gib(GRAPH_ESTIMATE_PER_LAYER_GIB * layers)


def extensible_margin(transient_peak: int) -> int:
    """0.34 measure_kv_cache_bytes (extensible_kv_cache.py:592): max(1 GiB, 0.75 x transient peak)."""
    return max(KV_CACHE_MARGIN_FLOOR_BYTES, int(transient_peak * KV_CACHE_MARGIN_FRACTION))


def parse_version(text: str) -> tuple[int, int]:
    major, minor, *_ = (int(p) for p in text.split("."))
    return major, minor


@lru_cache(maxsize=256)  # asked on every vLLM estimate; a release is any x.y.z
def profile_for(version: str | None) -> VllmProfile:
    """The profile describing `version` (default: the newest release); a release newer than the newest
    profile gets the newest profile (see `version_warning`).

    Raises:
        InvalidRequest: a release older than every profile (field vllm_version).
    """
    key = parse_version(version or NEWEST)
    for p in PROFILES:
        if p.first <= key < p.next:
            return p
    if key >= PROFILES[-1].next:
        return PROFILES[-1]
    allowed = f"{PROFILES[0].first[0]}.{PROFILES[0].first[1]}.0 or later"
    raise InvalidRequest("vllm_version", f"vllm_version {version} is not modelled; allowed: {allowed}")


def version_warning(version: str | None) -> str | None:
    """A warning for a release newer than the newest profile (answered with that profile)."""
    if version is None or parse_version(version) < PROFILES[-1].next:
        return None
    return (f"vLLM {version} is newer than the newest release modelled ({PROFILES[-1].name}): answered with "
            f"{PROFILES[-1].name}'s accounting; a later release may size the KV cache differently")


def by_size(table: dict[int, int], size: int) -> int:
    """The entry for the largest key <= size (TP 8 uses the TP 4 figure)."""
    return table[max(k for k in table if k <= size)]


def graph_pool_bytes(layers: int) -> int:
    return _gib(GRAPH_POOL_BASE_GIB + GRAPH_POOL_PER_LAYER_GIB * layers)


def batch_defaults(profile: VllmProfile, large: bool, max_model_len: int) -> tuple[int, int]:
    """(max_num_seqs, max_num_batched_tokens) that `vllm serve` picks when they are not given, on a GPU of the
    large class or not (large_batch_gpu).

    V1 engine (vllm/engine/arg_utils.py, OPENAI_API_SERVER usage context): 1024 and 8192 on GPUs of
    >= 70 GiB except A100s (the 0.19.0 logs print "Defaulting max_num_batched_tokens to 8192", "max_num_seqs
    to 1024"), else 256 and 2048. V0 without chunked prefill: 256 and max(max_model_len, 2048).
    """
    if profile.engine == "V0":
        return 256, max(max_model_len, 2048)
    if large:
        return 1024, 8192
    return 256, 2048


def large_batch_gpu(gpu_bytes: int | None, a100: bool) -> bool:
    """The GPU class batch_defaults tells apart (none given: the large one); nothing else of the GPU matters."""
    return (gpu_bytes is None or gpu_bytes >= LARGE_GPU_BYTES) and not a100
