"""What every runtime model takes and returns; runtimes differ only in their constants and formulas."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.estimator.kv_cache import KvType
from app.estimator.quantization import Format, StoredWeights
from app.estimator.schema import HostMemory, LlamaCppReport, VllmDetail, VramRequest
from app.estimator.spec import ModelSpec

MiB = 1 << 20

# CUDA context of one process on one GPU, invisible to torch.cuda.memory_*: 0.27-0.4 GiB with lazy
# module loading (shared/reference/quantization-and-runtimes.md s5). Upper end until measured.
CUDA_CONTEXT_BYTES = 400 * MiB


@dataclass(slots=True)  # not frozen: one per estimate, and a frozen __init__ costs about twice as much
class RuntimeInput:
    spec: ModelSpec
    fmt: Format
    weights: StoredWeights
    kv: KvType
    sequence: int  # positions per sequence: text tokens + image positions
    batch: int
    images: int
    gpu_count: int
    flash_attention: bool
    gpu_memory: int | None  # memory of all GPUs together, when a GPU was named
    request: VramRequest | None = None  # the whole request (vLLM reads its flags from it)
    gpu_slug: str | None = None  # the named GPU (vLLM: its total as torch sees it)
    gguf_tensors: tuple[Any, ...] | None = None  # llama.cpp: a GGUF file's tensor table
    gguf_arch: str | None = None  # llama.cpp: the file's general.architecture


@dataclass
class RuntimeMemory:
    weights: int
    kv_cache: int
    activations: int
    overhead: int
    kv_cache_tokens: int
    weights_host: int = 0
    usable_fraction: float = 1.0  # share of a GPU this runtime lets itself use
    required: int | None = None  # bytes it needs, when it claims more than it needs (vLLM)
    kv_capacity_tokens: int | None = None
    max_concurrency: float | None = None
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    host: HostMemory | None = None  # llama.cpp: host RAM beside the GPU
    llamacpp: LlamaCppReport | None = None  # llama.cpp: resolved context and its buffers
    vllm: VllmDetail | None = None  # vLLM's per-GPU startup figures
    # the runtime's own start/fit decision on every GPU of a fit list (gpus.Decide: the list's FitRows -> its
    # GpuFit rows). None: fits are `required` (or the total) against usable_fraction of the memory.
    fit_on: Callable[[Any], list[Any]] | None = None
    # --- per-layer cache model: recurrent state, apart from the KV cache (kv_cache holds KV only) ---
    state: int = 0  # the whole batch
    state_per_sequence: int = 0
    state_rule: Any = None  # app.estimator.cache.StateRule the runtime stores states with


@dataclass(frozen=True, slots=True, repr=False)
class Runtime:
    slug: str
    label: str
    source: str
    kv_types: tuple[str, ...]
    default_kv: Callable[[ModelSpec, Format], str]
    memory: Callable[[RuntimeInput], RuntimeMemory]
    # --- runtime versions: the releases the model was written and checked against ---
    versions: str = "unspecified"  # the runtime releases this model describes, for people
    versions_min: str = ""  # lowest release (vLLM x.y.z, llama.cpp build number) ...
    versions_max: str = ""  # ... and highest, for comparing a log's version
    release_ranges: tuple[str, ...] = ()  # release ranges the model describes (vLLM: one profile each)
    cuda_total: bool = False  # sizes itself from the total CUDA reports (Gpu.cuda_total), not the driver's
    # model families this runtime cannot run (or whose cache is not modelled for it) -> why: a 422, never a guess
    unsupported: dict[str, str] = field(default_factory=dict)
