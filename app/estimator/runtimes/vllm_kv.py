"""vLLM's KV-cache plan: from a KV budget in bytes to KV cache groups, blocks, tokens and concurrency.

Transcribes vLLM's planning code (checked against vLLM's own functions in model_specs/vllm/plan.json,
tests/test_vllm_plan.py):
* per-layer specs (vllm/model_executor/layers/attention/attention.py get_kv_cache_spec): full attention,
  sliding window, MLA (one latent of kv_lora_rank + qk_rope_head_dim, not split by TP); KV heads per rank
  max(1, kv_heads // TP) (vllm/config/model.py get_num_kv_heads);
* groups (vllm/v1/core/kv_cache_utils.py get_kv_cache_groups): one group when every layer has the same spec;
  otherwise the layers of each spec are split into groups of `group_size` layers (the fewest layers of any
  spec, or the most when most < 1.5 x fewest), layers[i::n] to group i (_get_kv_cache_groups_uniform_page_size);
* bytes per block = the largest group's pages; num_blocks = budget // bytes per block
  (get_kv_cache_config_from_groups);
* blocks one max_model_len request holds per group (vllm/v1/kv_cache_interface.py max_memory_usage_bytes):
  full cdiv(max_model_len, block); sliding cdiv(min(window - 1 + in-flight tokens, max_model_len), block) + 1;
* concurrency and tokens per release (RELEASES).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from app.estimator.errors import InvalidRequest
from app.estimator.kv_cache import KV_TYPES, KvType
from app.estimator.memo import per_spec
from app.estimator.spec import LanguageModel, ModelSpec


@dataclass(frozen=True, slots=True)
class PlanRelease:
    """How one vLLM release range turns blocks into tokens and concurrency. Ranges are [first, next)."""

    name: str
    first: tuple[int, int]
    next: tuple[int, int]
    tokens: str  # "per_group": num_blocks // groups x block; "concurrency": int(concurrency x max_model_len)
    in_flight: str  # sliding-window reservation: "batched" (max_num_batched_tokens) or "async" (x concurrent)
    concurrency: str  # "widest_group" (0.19 formula) or "sum_of_groups"
    source: str


RELEASES: tuple[PlanRelease, ...] = (
    PlanRelease("0.19-0.20", (0, 19), (0, 21), "per_group", "batched", "widest_group",
                "vllm 0.19.0 v1/core/kv_cache_utils.py:802-820 (concurrency), :1297-1305 (tokens); "
                "v1/kv_cache_interface.py:256-270 (sliding window)"),
    PlanRelease("0.21-0.25", (0, 21), (0, 26), "concurrency", "batched", "widest_group",
                "vllm 0.21.0 v1/core/kv_cache_utils.py:1708 tokens = int(max_concurrency x max_model_len)"),
    PlanRelease("0.26", (0, 26), (0, 27), "concurrency", "async", "widest_group",
                "vllm 0.26.0 v1/kv_cache_interface.py:568-584 (max_in_flight_tokens)"),
    PlanRelease("0.27-0.34", (0, 27), (0, 35), "concurrency", "async", "sum_of_groups",
                "vllm 0.32.0 v1/core/kv_cache_utils.py get_max_concurrency_for_kv_cache_config, "
                "get_kv_cache_capacity; config/vllm.py max_in_flight_tokens"),
)


def release_for(version: str) -> PlanRelease:
    """The planning rules of `version`.

    Raises:
        InvalidRequest: a release outside RELEASES (field vllm_version).
    """
    major, minor, *_ = (int(p) for p in version.split("."))
    for r in RELEASES:
        if r.first <= (major, minor) < r.next:
            return r
    raise InvalidRequest("vllm_version", f"vllm_version {version} has no KV planning rules here; allowed: "
                         f"{RELEASES[0].name.split('-')[0]}.0 to {RELEASES[-1].name.split('-')[1]}.x")


@dataclass(frozen=True, slots=True)
class LayerKv:
    """One decoder layer's KV cache on one tensor-parallel rank."""

    kind: str  # "full", "sliding", "mla"
    bytes_per_token: int
    window: int | None = None


@dataclass(frozen=True, slots=True)
class KvGroup:
    kind: str
    layers: int
    block_size: int
    page_bytes: int  # one block of one layer
    window: int | None
    blocks_per_request: int  # blocks one max_model_len request holds in this group


@dataclass(frozen=True, slots=True)
class KvPlan:
    release: str
    groups: tuple[KvGroup, ...]
    bytes_per_block: int
    num_blocks: int
    tokens: int
    max_concurrency: float


# Families whose vLLM class runs every layer as full attention although config.json sets sliding_window:
# vLLM's Llama code slides only the layers that config `layer_types` marks "sliding_attention"
# (vllm 0.32.0 model_executor/models/llama.py:185-204) and Phi3ForCausalLM is LlamaForCausalLM
# (model_executor/models/phi3.py); Phi-3.5's and Phi-4-mini's configs (model_type phi3, sliding_window on
# every layer) have no layer_types.
FULL_ATTENTION_FAMILIES = frozenset({"Phi-3.5", "Phi-4"})


def groups_modelled(lm: LanguageModel) -> bool:
    """Whether these grouping rules describe the model: every layer full or sliding attention of one KV
    geometry (hybrids with recurrent, chunked, shared or differently sized layers need vLLM's page-size
    unification, kv_cache_planning.py unify_kv_cache_spec_page_size, which is not modelled yet)."""
    return (set(lm.layer_types or ("full",)) <= {"full", "sliding"} and not lm.kv_geometry
            and lm.v_head_dim is None and lm.kv_shared_layers == 0 and lm.indexer is None)


def layer_kv(lm: LanguageModel, kv: KvType, tp: int, windows: bool = True) -> list[LayerKv]:
    """Every decoder layer's spec, in layer order (`windows` False: vLLM ignores the sliding windows)."""
    if lm.mla is not None:
        return [LayerKv("mla", kv.bytes_for(lm.mla.kv_lora_rank + lm.mla.qk_rope_head_dim))] * lm.layers
    heads = max(1, lm.kv_heads // tp)
    per_token = 2 * kv.bytes_for(heads * lm.head_dim)
    types = lm.layer_types or ("sliding",) * lm.sliding_window_layers + ("full",) * (
        lm.layers - lm.sliding_window_layers)
    return [LayerKv("sliding", per_token, lm.sliding_window) if t == "sliding" and windows
            else LayerKv("full", per_token) for t in types]


def rules(version: str) -> PlanRelease | None:
    """The planning rules of `version`, or None for releases before 0.19 (not transcribed)."""
    try:
        return release_for(version)
    except InvalidRequest:
        return None


@dataclass(frozen=True, slots=True)
class GroupShape:
    """One KV cache group without its bytes: layer kind, window and how many layers share its block table."""

    kind: str
    window: int | None
    layers: int


def _shapes(layers: list[LayerKv]) -> tuple[GroupShape, ...]:
    """The KV cache groups get_kv_cache_groups forms from these layers."""
    buckets: dict[LayerKv, int] = {}
    for layer in layers:
        buckets[layer] = buckets.get(layer, 0) + 1
    if len(buckets) == 1:
        ((spec, n),) = buckets.items()
        return (GroupShape(spec.kind, spec.window, n),)
    if len({b.bytes_per_token for b in buckets}) != 1:
        raise InvalidRequest("model", "layers with different KV bytes per token need vLLM's page-size "
                             "unification, which is not modelled here")
    fewest, most = min(buckets.values()), max(buckets.values())
    size = most if most < 1.5 * fewest else fewest
    out = []
    for spec, n in buckets.items():
        count = ceil(n / size)
        out += [GroupShape(spec.kind, spec.window, len(range(i, n, count))) for i in range(count)]
    return tuple(out)


@per_spec
def group_shapes(lm: LanguageModel, windows: bool = True) -> tuple[GroupShape, ...]:
    """The model's KV cache groups (they do not depend on TP or the KV dtype: every layer's bytes scale alike)."""
    return _shapes(layer_kv(lm, KV_TYPES["bf16"], 1, windows))


def in_flight_tokens(rel: PlanRelease, max_num_batched_tokens: int, async_scheduling: bool = True) -> int:
    """Tokens a sliding-window group reserves beyond its window (VllmConfig.max_in_flight_tokens)."""
    if rel.in_flight == "async" and async_scheduling:
        return 2 * max_num_batched_tokens  # max_concurrent_batches: pp + 1 (V2 runner) or 2 (V1 runner, pp 1)
    return max_num_batched_tokens


def blocks_per_request(g: GroupShape, block_size: int, max_model_len: int, in_flight: int) -> int:
    """Blocks one max_model_len request holds in group `g` (max_memory_usage_bytes / page)."""
    if g.kind == "sliding":
        return ceil(min(g.window - 1 + in_flight, max_model_len) / block_size) + 1
    return ceil(max_model_len / block_size)


def capacity(rel: PlanRelease, shapes: tuple[GroupShape, ...], num_blocks: int, block_size: int,
             max_model_len: int, in_flight: int) -> tuple[int, float]:
    """(tokens, max concurrency) vLLM logs for `num_blocks` blocks ("GPU KV cache size", "Maximum concurrency")."""
    per_group = [blocks_per_request(g, block_size, max_model_len, in_flight) for g in shapes]
    if rel.concurrency == "sum_of_groups":
        per_request = sum(per_group)
    else:  # the widest group's layers x summed usage, over one page of that many layers (pages are equal)
        widest = max(g.layers for g in shapes)
        per_request = ceil(widest * sum(per_group) / widest)
    concurrency = num_blocks / per_request
    if rel.tokens == "per_group":
        return num_blocks // len(shapes) * block_size, concurrency
    return int(concurrency * max_model_len), concurrency


def plan(lm: LanguageModel, kv: KvType, *, vllm_version: str, max_model_len: int, block_size: int,
         tensor_parallel_size: int, kv_budget_bytes: int, max_num_batched_tokens: int,
         async_scheduling: bool = True, windows: bool = True) -> KvPlan:
    """vLLM's KV cache plan on one GPU for `kv_budget_bytes` of KV memory (pipeline parallel size 1)."""
    rel = release_for(vllm_version)
    in_flight = in_flight_tokens(rel, max_num_batched_tokens, async_scheduling)
    per_token = layer_kv(lm, kv, tensor_parallel_size, windows)[0].bytes_per_token
    shapes = group_shapes(lm, windows)
    groups = tuple(KvGroup(g.kind, g.layers, block_size, per_token * block_size, g.window,
                           blocks_per_request(g, block_size, max_model_len, in_flight)) for g in shapes)
    bytes_per_block = max(g.layers * g.page_bytes for g in groups)
    num_blocks = max(0, kv_budget_bytes) // bytes_per_block
    tokens, concurrency = capacity(rel, shapes, num_blocks, block_size, max_model_len, in_flight)
    return KvPlan(rel.name, groups, bytes_per_block, num_blocks, tokens, concurrency)


def plan_for(spec: ModelSpec, *, vllm_version: str, max_model_len: int, kv_budget_bytes: int, block_size: int = 16,
             kv_cache_dtype: str = "auto", tensor_parallel_size: int = 1, max_num_batched_tokens: int = 8192,
             dtype: str = "auto") -> KvPlan:
    """`plan` with vLLM's flag names: kv_cache_dtype auto stores the compute dtype (--dtype auto: the
    checkpoint's, float32 run as bfloat16), the fp8 variants one byte per element."""
    if kv_cache_dtype.startswith("fp8"):
        kv = KV_TYPES["fp8"]
    else:
        name = dtype if dtype != "auto" else spec.language_model.dtype
        kv = KV_TYPES[{"float32": "fp32", "float16": "fp16"}.get(name, "bf16") if dtype != "auto"
                      else ("bf16" if name in ("bfloat16", "float32") else "fp16")]
    return plan(spec.language_model, kv, vllm_version=vllm_version, max_model_len=max_model_len,
                block_size=block_size, tensor_parallel_size=tensor_parallel_size, kv_budget_bytes=kv_budget_bytes,
                max_num_batched_tokens=max_num_batched_tokens, windows=spec.family not in FULL_ATTENTION_FAMILIES)
