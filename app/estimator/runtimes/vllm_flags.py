"""vLLM's flags resolved against the model, the weight format and the GPU: what `vllm serve` runs with.

Names and defaults: vllm/engine/arg_utils.py and vllm/config/{cache,model,parallel,scheduler}.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter

from app.estimator.errors import InvalidRequest, UnknownChoice
from app.estimator.kv_cache import KV_TYPES, KvType
from app.estimator.memo import ByIdentity
from app.estimator.quantization import FORMATS, Format
from app.estimator.runtimes import vllm_kv, vllm_mtp
from app.estimator.runtimes.vllm_profiles import (
    EXTENSIBLE_UTILIZATION,
    NEWEST,
    VllmProfile,
    batch_defaults,
    large_batch_gpu,
    parse_version,
    profile_for,
)
from app.estimator.schema import VramRequest
from app.estimator.spec import LanguageModel, ModelSpec

SLUG = "vllm"
VOCAB_PADDING = 64  # vllm/model_executor/layers/vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE
DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}  # --dtype -> format / KV slug
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

# Our weight formats as vLLM names their method (--quantization, or the checkpoint's quantization_config).
VLLM_METHODS: dict[str, str | None] = {
    "fp32": None, "fp16": None, "bf16": None,
    "fp8": "fp8",  # --quantization fp8: weights quantized at load, per-tensor scale (V1)
    "fp8-dynamic": "compressed-tensors (fp8 dynamic, per-channel)",  # RedHatAI *-fp8-dynamic (V2)
    "int8": "compressed-tensors (w8a8 int8, per-channel)",  # RedHatAI *-quantized.w8a8 (V2)
    "int4": "compressed-tensors (w4a16, per-channel)",
    "gptq-int4": "gptq_marlin",  # RedHatAI *-quantized.w4a16, GPTQ checkpoint run by Marlin (V2)
    "gptq-int8": "gptq_marlin",
    "awq-int4": "awq_marlin",
    "bnb-nf4-dq": "bitsandbytes",  # pre-quantized bnb-4bit checkpoints, double quantization (V4)
    "fp8-block128": "fp8 (block-wise 128x128)",  # DeepSeek-V3-style checkpoints
    "mxfp4": "mxfp4",  # gpt-oss checkpoints
    # ModelConfig.quantization vLLM resolves for these checkpoints (model_specs/vllm/quant-weights.json)
    "nvfp4": "modelopt_fp4 / compressed-tensors (nvfp4)",
    "nvfp4-w4a16": "modelopt_fp4 (W4A16_NVFP4) / compressed-tensors (nvfp4a16)",
    "fp8-static": "modelopt (fp8)",
    "modelopt-mixed": "modelopt_mixed",
}


def default_format(spec: ModelSpec, req: VramRequest) -> str:
    """Weight format when `quantization` is not given: vLLM's --dtype picks it (auto: the checkpoint's
    torch_dtype; float32 checkpoints run in bfloat16, vllm/config/model.py _resolve_auto_dtype)."""
    base = spec.default_format  # a quantized release keeps its own format
    if req.runtime != SLUG or base not in DTYPE_NAMES:
        return base
    if req.dtype != "auto":
        return DTYPES[req.dtype]
    return "bf16" if base == "fp32" else base


# --kv-cache-dtype auto takes the checkpoint's ModelOpt KV scheme (engine/arg_utils.py create_engine_config:
# resolve_kv_cache_dtype_string, read in the 0.19.0, 0.32.0 and 0.34.0 wheels; earlier releases not checked)
CHECKPOINT_KV_FROM = (0, 19)


def kv_override(req: VramRequest, runtime: str, spec: ModelSpec | None = None) -> str | None:
    """KV slug that --kv-cache-dtype asks for (None: auto, the model dtype); refuses a `kv_cache` that disagrees.
    auto is the checkpoint's own KV scheme where its quantization_config names one (spec.stored_kv_cache)."""
    if runtime != SLUG:
        return None
    if req.kv_cache_dtype == "auto":
        stored = spec.language_model.stored_kv_cache if spec is not None else None
        checked = parse_version(req.vllm_version or NEWEST) >= CHECKPOINT_KV_FROM
        return stored if stored and req.kv_cache is None and checked else None
    if req.kv_cache not in (None, "fp8"):
        raise InvalidRequest("kv_cache_dtype", f"kv_cache_dtype {req.kv_cache_dtype} disagrees with kv_cache "
                             f"{req.kv_cache}; allowed: leave one of them unset, or kv_cache fp8")
    return "fp8"


def default_kv(spec: ModelSpec, fmt: Format) -> str:
    """--kv-cache-dtype auto: the model's compute dtype (fp32 included, V1 --dtype float32)."""
    if fmt.slug in DTYPES.values():
        return fmt.slug
    return "bf16" if spec.dtype_slug == "fp32" else spec.dtype_slug


@dataclass(slots=True)  # not frozen (one or more per vLLM estimate; a frozen __init__ costs about twice) nor hashed
class VllmFlags:
    profile: VllmProfile
    gpu_memory_utilization: float
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    block_size: int
    kv: KvType
    kv_name: str  # as vLLM prints it
    dtype: str  # float16 / bfloat16 / float32
    compute_bytes: int
    tp: int
    pp: int
    enforce_eager: bool
    method: str | None
    graph_estimate: bool = False  # the CUDA-graph estimate is subtracted inside the budget
    extensible: bool = False  # 0.34's extensible KV cache (sized after warmup)
    # KV cache groups as vLLM forms them (vllm_kv), with the release's planning rules; None: one group of
    # all layers (pipeline parallelism, or releases whose planning code is not transcribed: vllm_kv.RELEASES).
    kv_release: vllm_kv.PlanRelease | None = None
    kv_groups: tuple[vllm_kv.GroupShape, ...] | None = None
    dp: int = 1  # --data-parallel-size: engine replicas (each with its own KV cache)
    ep: bool = False  # --enable-expert-parallel: whole experts per rank over TP x DP ranks
    # --speculative-config method mtp: the MTP layers loaded as the draft (0: no speculative decoding) and
    # num_speculative_tokens (vllm_mtp)
    draft_layers: int = 0
    speculative_tokens: int = 0

    @property
    def in_flight(self) -> int:
        return vllm_kv.in_flight_tokens(self.kv_release, self.max_num_batched_tokens) if self.kv_release else 0


def tp_allowed(lm: LanguageModel, tp: int) -> bool:
    """vLLM's checks: attention heads divisible by TP; KV heads divisible by TP or TP by them (then
    replicated); the vocabulary padded to 64 divisible by TP (vocab_parallel_embedding; the held-out
    Qwen3-14B TP5 log fails with "151936 is not divisible by 5")."""
    kv_ok = lm.kv_heads % tp == 0 or tp % lm.kv_heads == 0
    return lm.heads % tp == 0 and kv_ok and padded_vocab(lm.vocab) % tp == 0


def padded_vocab(vocab: int) -> int:
    return -(-vocab // VOCAB_PADDING) * VOCAB_PADDING


def _check_parallel(spec: ModelSpec, tp: int, pp: int) -> None:
    lm = spec.language_model
    if not tp_allowed(lm, tp):
        allowed = [str(d) for d in range(1, lm.heads + 1) if tp_allowed(lm, d)]
        raise UnknownChoice("tensor_parallel_size", str(tp), allowed,
                            f"vLLM splits {lm.heads} attention heads, {lm.kv_heads} KV heads and the padded "
                            f"vocabulary of {padded_vocab(lm.vocab):,} evenly")
    if pp > lm.layers:
        raise InvalidRequest("pipeline_parallel_size", f"pipeline_parallel_size {pp} exceeds the "
                             f"{lm.layers} layers; allowed: 1 to {lm.layers}")


def _compute_dtype(spec: ModelSpec, fmt: Format, req: VramRequest) -> str:
    if fmt.slug in DTYPE_NAMES:
        if req.dtype not in ("auto", DTYPE_NAMES[fmt.slug]):
            raise InvalidRequest("dtype", f"dtype {req.dtype} disagrees with quantization {fmt.slug}; allowed: "
                                 f"auto or {DTYPE_NAMES[fmt.slug]}")
        return DTYPE_NAMES[fmt.slug]
    if fmt.slug not in VLLM_METHODS:
        raise UnknownChoice("quantization", fmt.slug, list(VLLM_METHODS), "vLLM loads these formats")
    if req.dtype != "auto":
        return req.dtype
    return "bfloat16" if spec.dtype_slug == "fp32" else DTYPE_NAMES[spec.dtype_slug]


def _switches(profile: VllmProfile, req: VramRequest) -> tuple[bool, bool, float]:
    """(CUDA-graph estimate in the budget, extensible KV cache, gpu_memory_utilization) for this release."""
    estimate = req.memory_profiler_estimate_cudagraphs
    if estimate is None:
        estimate = profile.graph_estimate_default
    elif estimate and not profile.graph_estimate_switch:
        raise InvalidRequest("memory_profiler_estimate_cudagraphs", f"VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS does "
                             f"not exist in vLLM {profile.name}; allowed: unset or false (0.18-0.19 and later: "
                             "true)")
    extensible = req.enable_extensible_kv_cache
    if extensible is None:
        extensible = profile.extensible_kv_cache
    elif extensible and not profile.extensible_kv_cache:
        raise InvalidRequest("enable_extensible_kv_cache", f"the extensible KV cache does not exist in vLLM "
                             f"{profile.name}; allowed: unset or false (0.34 and later: true)")
    if "gpu_memory_utilization" in req.model_fields_set:
        util = req.gpu_memory_utilization
    else:  # vllm/config/cache.py: the release's default; 0.34 resolved_gpu_memory_utilization (:495)
        util = EXTENSIBLE_UTILIZATION if extensible else profile.default_utilization
    return estimate and not req.enforce_eager, extensible, util


def speculative(spec: ModelSpec, req: VramRequest) -> tuple[int, int]:
    """(MTP layers vLLM loads as the draft, num_speculative_tokens) for --speculative-config; (0, 0) without.
    vllm/config/speculative.py: method mtp (older releases: the draft's model_type) needs the checkpoint's
    MTP layers; num_speculative_tokens defaults to their count (n_predict)."""
    method = req.speculative_method
    if method is None:
        if req.num_speculative_tokens is not None:
            raise InvalidRequest("num_speculative_tokens", "num_speculative_tokens needs speculative_method; "
                                 "allowed: unset, or with speculative_method mtp")
        return 0, 0
    lm = spec.language_model
    draft = lm.mtp_draft
    if draft is None:
        why = (f"its {lm.mtp_layers} stored MTP layer(s) are not modelled as a vLLM draft here" if lm.mtp_layers
               else "it has no multi-token-prediction layers")
        raise InvalidRequest("speculative_method", f"speculative_method {method}: {spec.slug} cannot run an MTP "
                             f"draft ({why}); allowed: unset (MTP drafts: DeepSeek-V3 / R1, GLM-4.5 MoE, "
                             "Qwen3-Next, Qwen3.5 / 3.6, MiMo-V2-Flash)")
    if method not in ("mtp", draft.draft):
        raise InvalidRequest("speculative_method", f"speculative_method {method} is not {spec.slug}'s draft; "
                             f"allowed: mtp or {draft.draft}")
    return draft.layers, req.num_speculative_tokens or draft.layers


# Every VramRequest field `resolve` reads, the sequence aside (the default max_model_len): the flags but
# max_model_len are kept per model, format, KV type, GPU batch class and these (tests/test_estimate_cache.py changes
# every other field and finds the same flags)
REQUEST_FIELDS = ("vllm_version", "memory_profiler_estimate_cudagraphs", "enable_extensible_kv_cache", "enforce_eager",
                  "gpu_memory_utilization", "dtype", "pipeline_parallel_size", "data_parallel_size",
                  "tensor_parallel_size", "gpu_count", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
                  "kv_cache_dtype", "block_size", "speculative_method", "num_speculative_tokens",
                  "enable_expert_parallel")
_REQUEST_KEY = attrgetter(*REQUEST_FIELDS)
_BASES = ByIdentity()


def resolve(spec: ModelSpec, fmt: Format, kv: KvType, req: VramRequest, sequence: int,
            gpu_bytes: int | None, gpu_slug: str | None) -> VllmFlags:
    """Every vLLM flag with its default filled in for this model, format, length and GPU. All but max_model_len
    (and V0's batched tokens, which follow it) are kept per model, format, KV type, GPU batch class and the
    request's REQUEST_FIELDS: a new sequence length costs one copy.

    Raises:
        InvalidRequest: a flag vLLM would refuse for this model (names the field and what it allows).
    """
    return resolve_kept(spec, fmt, kv, req, sequence, gpu_bytes, gpu_slug)[0]


def resolve_kept(spec: ModelSpec, fmt: Format, kv: KvType, req: VramRequest, sequence: int,
                 gpu_bytes: int | None, gpu_slug: str | None) -> tuple[VllmFlags, VllmFlags | None]:
    """`resolve`'s flags and the kept flags object they were copied from, the same object for every request that
    differs from this one in max_model_len alone (None: a format outside the registry, nothing kept)."""
    large = large_batch_gpu(gpu_bytes, "a100" in (gpu_slug or ""))
    if FORMATS.get(fmt.slug) is fmt:  # a registry format: keyed by its slug
        key = (fmt.slug, kv.slug, large, "gpu_memory_utilization" in req.model_fields_set, _REQUEST_KEY(req))
        base = kept = _BASES.get(spec, key, lambda: _base(spec, fmt, kv, req, large))
    else:
        base, kept = _base(spec, fmt, kv, req, large), None
    max_model_len = req.max_model_len or sequence
    if max_model_len < sequence:
        raise InvalidRequest("max_model_len", f"max_model_len {max_model_len} is shorter than the sequence "
                             f"({sequence:,} positions with the images); allowed: >= {sequence}")
    if base.profile.engine == "V0" and not req.max_num_batched_tokens:  # batch_defaults: max(max_model_len, 2048)
        return evolve(base, max_model_len=max_model_len,
                      max_num_batched_tokens=batch_defaults(base.profile, large, max_model_len)[1]), kept
    return evolve(base, max_model_len=max_model_len), kept


def _base(spec: ModelSpec, fmt: Format, kv: KvType, req: VramRequest, large: bool) -> VllmFlags:
    """`resolve`'s flags with max_model_len 0 (V0's default batched tokens: those of max_model_len 0)."""
    profile = profile_for(req.vllm_version)
    graph_estimate, extensible, util = _switches(profile, req)
    dtype = _compute_dtype(spec, fmt, req)
    pp, dp = req.pipeline_parallel_size, req.data_parallel_size
    tp = req.tensor_parallel_size or req.gpu_count // (pp * dp)
    _check_parallel(spec, tp, pp)
    seqs, tokens = batch_defaults(profile, large, 0)
    kv_name = "fp8" if kv.slug == "fp8" else DTYPE_NAMES.get(kv.slug, kv.slug)
    if req.kv_cache_dtype != "auto":
        kv_name = req.kv_cache_dtype
    release = vllm_kv.rules(req.vllm_version or NEWEST) if pp == 1 else None
    groups, block_size = None, req.block_size or profile.default_block_size
    draft_layers, speculative_tokens = speculative(spec, req)
    lm = vllm_mtp.with_draft(spec.language_model, draft_layers) if draft_layers else spec.language_model
    if release is not None and vllm_kv.groups_modelled(lm):
        block_size, groups = vllm_kv.runtime_groups(
            lm, KV_TYPES[kv.slug], tp, spec.family not in vllm_kv.FULL_ATTENTION_FAMILIES,
            block_size, 4 if dtype == "float32" else 2, vllm_kv.window_offset(spec), speculative_tokens)
    return VllmFlags(
        profile=profile, gpu_memory_utilization=util, max_model_len=0,
        max_num_seqs=req.max_num_seqs or seqs, max_num_batched_tokens=req.max_num_batched_tokens or tokens,
        block_size=block_size, kv=KV_TYPES[kv.slug], kv_name=kv_name, dtype=dtype,
        compute_bytes=4 if dtype == "float32" else 2, tp=tp, pp=pp, enforce_eager=req.enforce_eager,
        method=VLLM_METHODS[fmt.slug], graph_estimate=graph_estimate, extensible=extensible,
        kv_release=release, kv_groups=groups, dp=dp, ep=req.enable_expert_parallel,
        draft_layers=draft_layers, speculative_tokens=speculative_tokens,
    )


def batch_for(f: VllmFlags, req: VramRequest, gpu_bytes: int | None, gpu_slug: str | None) -> tuple[int, int]:
    """(max_num_seqs, max_num_batched_tokens) `resolve` picks for this request on another GPU."""
    seqs, tokens = batch_defaults(f.profile, large_batch_gpu(gpu_bytes, "a100" in (gpu_slug or "")), f.max_model_len)
    return req.max_num_seqs or seqs, req.max_num_batched_tokens or tokens


_FIELDS = tuple(x.name for x in fields(VllmFlags))
_VALUES = attrgetter(*_FIELDS)
_AT = {name: i for i, name in enumerate(_FIELDS)}


def evolve(f: VllmFlags, **changes: object) -> VllmFlags:
    """dataclasses.replace(f, **changes), positionally (about half its cost: the fit list and the fixes ask it)."""
    values = list(_VALUES(f))
    for name, value in changes.items():
        values[_AT[name]] = value
    return VllmFlags(*values)


def for_gpu(f: VllmFlags, batch: tuple[int, int]) -> VllmFlags:
    """`resolve(...)` of the same request on another GPU, from its answer `f` and that GPU's `batch_for`: only the
    batch defaults depend on the GPU (tests/test_estimate_cache.py holds this equal to `resolve` on every GPU)."""
    if batch == (f.max_num_seqs, f.max_num_batched_tokens):
        return f
    return evolve(f, max_num_seqs=batch[0], max_num_batched_tokens=batch[1])
