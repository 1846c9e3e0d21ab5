"""vLLM's KV-cache plan: from a KV budget in bytes to KV cache groups, blocks, tokens and concurrency.

Transcribes vLLM's planning code (checked against vLLM's own functions in model_specs/vllm/plan.json,
tests/test_vllm_plan.py):
* per-layer specs (vllm/model_executor/layers/attention/attention.py get_kv_cache_spec): full attention,
  sliding window, MLA (one latent of kv_lora_rank + qk_rope_head_dim, not split by TP); KV heads per rank
  max(1, kv_heads // TP) (vllm/config/model.py get_num_kv_heads);
* recurrent layers (Gated DeltaNet, Mamba2, short conv: vLLM's MambaSpec) hold their state of one sequence
  in one page; for such hybrids vLLM raises the attention block until one attention page holds that state and
  pads the state page to the attention page (hybrid_block_size, unify); a request holds 2 (+1 prefill
  checkpoint for Mamba2) state pages per layer in mamba_cache_mode "align". vLLM's "GPU KV cache size: N
  tokens" (int(concurrency x max_model_len)) does not count them, its block count and concurrency do;
* page-size unification (unify): a smaller attention page is raised to the largest by a block-size multiple;
* groups (vllm/v1/core/kv_cache_utils.py get_kv_cache_groups): one group when every layer has the same spec;
  otherwise the layers of each spec are split into groups of `group_size` layers (the fewest layers of any
  spec, or the most when most < 1.5 x fewest), layers[i::n] to group i (_get_kv_cache_groups_uniform_page_size);
* bytes per block = the largest group's pages; num_blocks = budget // bytes per block
  (get_kv_cache_config_from_groups);
* blocks one max_model_len request holds per group (vllm/v1/kv_cache_interface.py max_memory_usage_bytes):
  full cdiv(max_model_len, block); sliding cdiv(min(window - 1 + in-flight tokens, max_model_len), block) + 1;
  chunked local cdiv(min(chunk + in-flight tokens, max_model_len), block); Mamba a fixed count;
* concurrency and tokens per release (RELEASES).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import ceil

from app.estimator import cache
from app.estimator.errors import InvalidRequest
from app.estimator.kv_cache import KV_TYPES, KvType
from app.estimator.memo import per_spec
from app.estimator.spec import LanguageModel, ModelSpec


@dataclass(frozen=True, slots=True, eq=False, repr=False)  # RELEASES' own objects: equal and hashed by identity
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
    # 0.11.0: the 0.19 formulas already (checked in the 0.11.0 wheel); 0.12-0.18 are not transcribed
    PlanRelease("0.11", (0, 11), (0, 12), "per_group", "batched", "widest_group",
                "vllm 0.11.0 v1/core/kv_cache_utils.py:780-797 (concurrency), :824 (num_blocks = available // "
                "page // layers), :1080-1091 (tokens); v1/kv_cache_interface.py:196-214 (sliding window)"),
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
    allowed = ", ".join(f"{r.name}.x" if r.next == (r.first[0], r.first[1] + 1) else
                        f"{r.first[0]}.{r.first[1]}.0 to {r.next[0]}.{r.next[1] - 1}.x" for r in RELEASES)
    raise InvalidRequest("vllm_version", f"vllm_version {version} has no KV planning rules here; allowed: {allowed}")


@dataclass(frozen=True, slots=True, repr=False)
class LayerKv:
    """One decoder layer's KV cache spec on one tensor-parallel rank (vLLM's per-layer KVCacheSpec)."""

    kind: str  # "full", "sliding", "chunked", "mla" (per token) or "mamba" (per sequence: GDN, Mamba2, short conv)
    bytes_per_token: int
    window: int | None = None  # sliding window, or attention_chunk_size of a chunked layer
    state_bytes: int = 0  # mamba: the state of one sequence (MambaSpec page before padding)
    checkpoint_blocks: int = 0  # mamba: num_prefill_checkpoint_blocks
    speculative_blocks: int = 0  # mamba: num_speculative_blocks (= num_speculative_tokens, mamba/abstract.py)


@dataclass(frozen=True, slots=True, repr=False)
class KvGroup:
    kind: str
    layers: int
    block_size: int
    page_bytes: int  # one block of one layer (after page-size unification)
    window: int | None
    blocks_per_request: int  # blocks one max_model_len request holds in this group


@dataclass(frozen=True, slots=True, repr=False)
class KvPlan:
    release: str
    groups: tuple[KvGroup, ...]
    bytes_per_block: int
    num_blocks: int
    tokens: int
    max_concurrency: float
    block_size: int = 16  # the attention block size vLLM runs with (raised for Mamba/GDN hybrids)
    state_page_bytes: int = 0  # one Mamba/GDN layer's page: its state of one sequence padded to the attention page
    state_bytes: int = 0  # that state before padding


# Families whose vLLM class runs every layer as full attention although config.json sets sliding_window:
# vLLM's Llama code slides only the layers that config `layer_types` marks "sliding_attention"
# (vllm 0.32.0 model_executor/models/llama.py:185-204) and Phi3ForCausalLM is LlamaForCausalLM
# (model_executor/models/phi3.py); Phi-3.5's and Phi-4-mini's configs (model_type phi3, sliding_window on
# every layer) have no layer_types.
FULL_ATTENTION_FAMILIES = frozenset({"Phi-3.5", "Phi-4"})
# Families whose sliding window vLLM takes from another key than transformers: vLLM's MiMo-V2-Flash layers
# slide over config sliding_window (128: vLLM 0.32.0's own layer specs, model_specs/vllm/plan.json), while
# transformers' MiMoV2FlashConfig attends sliding_window_size + 1 positions (the spec's window).
WINDOW_OFFSET = {"MiMo-V2-Flash": -1}


def window_offset(spec: ModelSpec) -> int:
    """What vLLM's sliding window adds to the spec's (transformers') window for this model."""
    return WINDOW_OFFSET.get(spec.family, 0)

# FlashAttention's smallest kernel block: get_supported_kernel_block_sizes -> [MultipleOf(16)]
# (vllm 0.32.0 v1/attention/backends/flash_attn.py:365).
KERNEL_BLOCK = 16
# MLA hybrids: the manager block is a multiple of 128 (vllm 0.32.0 platforms/interface.py:1076-1081).
MLA_KERNEL_BLOCK = 128
# Prefill checkpoint blocks a recurrent layer's MambaSpec holds in "align" mode: Mamba2 exports the
# block-boundary state inside one forward (vllm 0.32.0 model_executor/layers/mamba/mamba_mixer2.py:1107
# num_prefill_checkpoint_blocks=1); Gated DeltaNet and short conv keep the default 0
# (v1/kv_cache_interface.py:1042).
CHECKPOINT_BLOCKS = {"mamba2": 1, "gdn": 0, "short_conv": 0}
# MambaSpec.max_memory_usage_bytes in mamba_cache_mode "align" (the default with prefix caching,
# model_executor/models/config.py MambaModelConfig): page x (2 + speculative + checkpoint blocks)
# (vllm 0.32.0 v1/kv_cache_interface.py:1076-1082).
ALIGN_STATE_BLOCKS = 2


@per_spec
def groups_modelled(lm: LanguageModel) -> bool:
    """Whether vLLM's planning rules are transcribed for this model: every layer full, sliding or chunked
    attention, MLA, or a recurrent (Mamba/GDN/short-conv) layer; no indexer (DeepSeek V3.2's indexer cache is a
    separate spec) and no KV-sharing layers."""
    kinds = {c.kind for c in cache.layer_caches(lm)}
    return (lm.kv_shared_layers == 0 and lm.indexer is None and bool(kinds & {"attention", "mla"})
            and kinds <= {"attention", "mla", "gdn", "mamba2", "short_conv", "none"})


def _vllm_state_rule(lm: LanguageModel, compute_bytes: int, ssm_bytes: int | None = None,
                     speculative_tokens: int = 0) -> cache.StateRule:
    """vLLM MambaStateDtypeCalculator: conv state in the model dtype, SSM / GDN state in --mamba-ssm-cache-dtype
    (`ssm_bytes`; auto, None: what the model's config hook resolves, vllm 0.32.0 model_executor/models/config.py
    Qwen3_5ForConditionalGenerationConfig (config mamba_ssm_dtype) :856-866, NemotronHForCausalLMConfig
    (config mamba_ssm_cache_dtype, default float32) :717-732, as the spec's state_dtype records it; else the
    model dtype); conv keeps kernel - 1 inputs (vllm/model_executor/layers/mamba/mamba_utils.py)."""
    state = ssm_bytes or cache.state_dtype_bytes(lm, compute_bytes)
    return cache.StateRule(conv_bytes=compute_bytes, recurrent_bytes=state, ssm_bytes=state,
                           source="vLLM MambaStateDtypeCalculator", conv_extra=speculative_tokens)


def layer_kv(lm: LanguageModel, kv: KvType, tp: int, windows: bool = True, compute_bytes: int = 2,
             ssm_bytes: int | None = None, window_offset: int = 0, speculative_tokens: int = 0) -> list[LayerKv]:
    """Every decoder layer's spec, in layer order (`windows` False: vLLM ignores the sliding windows); layers
    without a cache (no token mixer) are left out, as vLLM gives them no spec. `speculative_tokens`
    (--speculative-config num_speculative_tokens): longer conv states and as many more state blocks."""
    rule = _vllm_state_rule(lm, compute_bytes, ssm_bytes, speculative_tokens)
    out = []
    for c in cache.layer_caches(lm):
        if c.kind == "mla":  # MLAAttentionSpec: one latent (kv_lora_rank + rope dim), head_size_v 0, 1 KV head
            out.append(LayerKv("mla", kv.bytes_for(lm.mla.kv_lora_rank + lm.mla.qk_rope_head_dim)))
        elif c.kind == "attention":
            # AttentionSpec page: num_kv_heads x (head_size + head_size_v) x dtype (v1/kv_cache_interface.py:604+);
            # K and V are both stored even where the checkpoint shares them (k_eq_v).
            per_token = sum(kv.bytes_for(max(1, r.heads // tp) * r.head_dim) * (2 if r.name == "kv" else 1)
                            for r in c.rows if r.name in ("k", "v", "kv"))
            kind = c.layer_type if windows or c.layer_type == "chunked" else "full"
            span = None if kind == "full" else c.span + (window_offset if kind == "sliding" else 0)
            out.append(LayerKv(kind, per_token, span))
        elif c.states:
            state = sum(rule.bytes(st) // tp if st.heads % tp == 0 else rule.bytes(st) for st in c.states)
            out.append(LayerKv("mamba", 0, None, state, CHECKPOINT_BLOCKS[c.kind], speculative_tokens))
    return out


@lru_cache(maxsize=256)  # asked on every vLLM estimate; a release is any x.y.z
def rules(version: str) -> PlanRelease | None:
    """The planning rules of `version`, or None for releases before 0.19 (not transcribed)."""
    try:
        return release_for(version)
    except InvalidRequest:
        return None


@dataclass(frozen=True, slots=True, repr=False)
class GroupShape:
    """One KV cache group without its bytes: layer kind, window and how many layers share its block table."""

    kind: str
    window: int | None
    layers: int
    block_scale: int = 1  # this group's block = block_scale x the attention block (page-size unification)
    state_blocks: int = 0  # mamba: blocks one request holds, whatever its length


@dataclass(frozen=True, slots=True, repr=False)
class Unified:
    """Layers after vLLM's hybrid alignment and page-size unification."""

    block_size: int  # the attention block size vLLM runs with
    page_bytes: int  # every layer's page
    layers: tuple[tuple[LayerKv, int], ...]  # (spec, block_scale) per layer, in layer order
    state_bytes: int = 0  # the largest recurrent state (one layer, one sequence) before padding


def hybrid_block_size(layers: list[LayerKv], block_size: int) -> int:
    """The attention block size of a Mamba/GDN hybrid (vllm 0.32.0 platforms/interface.py:939-1099
    _align_hybrid_block_size): align = max(kernel block, --block-size) (MLA: at least 128); attn_block = align x
    cdiv(mamba page, align x one token's attention page), then a multiple of every backend's kernel block,
    and never below --block-size (:1093)."""
    attn = [x for x in layers if x.kind != "mamba"]
    mamba = max((x.state_bytes for x in layers if x.kind == "mamba"), default=0)
    if not attn or not mamba:
        return block_size
    one = next((x for x in attn if x.kind in ("full", "mla")), attn[0]).bytes_per_token
    align = max(KERNEL_BLOCK, block_size)
    if any(x.kind == "mla" for x in attn):
        align = max(align, MLA_KERNEL_BLOCK)
    attn_block = align * ceil(mamba / (align * one))
    attn_block = KERNEL_BLOCK * ceil(attn_block / KERNEL_BLOCK)
    return max(block_size, attn_block)


def unify(layers: list[LayerKv], block_size: int) -> Unified:
    """Pages of equal size (vllm 0.32.0 v1/core/kv_cache_utils.py:1292-1354 unify_kv_cache_spec_page_size):
    a Mamba page is padded to the attention page (platforms/interface.py:1101-1121 mamba_page_size_padded), a
    smaller attention page is raised to the largest by multiplying its block size when that divides, else
    padded (non-MLA attention); MLA that does not divide is an error in vLLM."""
    block = hybrid_block_size(layers, block_size)
    pages = [x.bytes_per_token * block for x in layers if x.kind != "mamba"]
    state = max((x.state_bytes for x in layers if x.kind == "mamba"), default=0)
    top = max(pages + [state])
    out = []
    for x in layers:
        page = x.bytes_per_token * block
        scale = top // page if x.kind != "mamba" and page != top and top % page == 0 else 1
        if x.kind == "mla" and page * scale != top:
            raise InvalidRequest("model", "vLLM cannot unify this MLA page size with the other layers")
        out.append((x, scale))
    return Unified(block, top, tuple(out), state)


def _shapes(layers: list[LayerKv], scales: list[int] | None = None) -> tuple[GroupShape, ...]:
    """The KV cache groups get_kv_cache_groups forms from these layers (vllm 0.32.0 v1/core/kv_cache_utils.py
    _get_kv_cache_groups_uniform_page_size): layers bucketed by spec; group size the fewest layers of any
    spec, or the most when most < 1.5 x fewest; layers[i::n] to group i."""
    buckets: dict[tuple[LayerKv, int], int] = {}
    for layer, scale in zip(layers, scales or [1] * len(layers), strict=True):
        buckets[(layer, scale)] = buckets.get((layer, scale), 0) + 1

    def shape(spec: LayerKv, scale: int, n: int) -> GroupShape:
        blocks = ALIGN_STATE_BLOCKS + spec.checkpoint_blocks + spec.speculative_blocks if spec.kind == "mamba" else 0
        return GroupShape(spec.kind, spec.window, n, scale, blocks)

    if len(buckets) == 1:
        (((spec, scale), n),) = buckets.items()
        return (shape(spec, scale, n),)
    fewest, most = min(buckets.values()), max(buckets.values())
    size = most if most < 1.5 * fewest else fewest
    out = []
    for (spec, scale), n in buckets.items():
        count = ceil(n / size)
        out += [shape(spec, scale, len(range(i, n, count))) for i in range(count)]
    return tuple(out)


def group_shapes(lm: LanguageModel, windows: bool = True, block_size: int = 16, kv: KvType | None = None,
                 tp: int = 1, compute_bytes: int = 2) -> tuple[GroupShape, ...]:
    """The model's KV cache groups for this KV dtype and TP."""
    u = unify(layer_kv(lm, kv or KV_TYPES["bf16"], tp, windows, compute_bytes), block_size)
    return _shapes([x for x, _ in u.layers], [s for _, s in u.layers])


@per_spec  # a model's groups for these flags: the same every request (frozen models)
def runtime_groups(lm: LanguageModel, kv: KvType, tp: int, windows: bool, block_size: int,
                   compute_bytes: int, window_offset: int = 0,
                   speculative_tokens: int = 0) -> tuple[int, tuple[GroupShape, ...]]:
    """(the block size vLLM runs with, its KV cache groups) for the vLLM runtime: --block-size raised for
    Mamba/GDN hybrids ("Setting attention block size to %d tokens", platforms/interface.py:1093-1098)."""
    u = unify(layer_kv(lm, kv, tp, windows, compute_bytes, window_offset=window_offset,
                       speculative_tokens=speculative_tokens), block_size)
    return u.block_size, _shapes([x for x, _ in u.layers], [s for _, s in u.layers])


def in_flight_tokens(rel: PlanRelease, max_num_batched_tokens: int, async_scheduling: bool = True) -> int:
    """Tokens a sliding-window group reserves beyond its window (VllmConfig.max_in_flight_tokens)."""
    if rel.in_flight == "async" and async_scheduling:
        return 2 * max_num_batched_tokens  # max_concurrent_batches: pp + 1 (V2 runner) or 2 (V1 runner, pp 1)
    return max_num_batched_tokens


def blocks_per_request(g: GroupShape, block_size: int, max_model_len: int, in_flight: int) -> int:
    """Blocks one max_model_len request holds in group `g` (max_memory_usage_bytes / page,
    vllm 0.32.0 v1/kv_cache_interface.py): sliding cdiv(min(window - 1 + in-flight, L), block) + 1; chunked
    local cdiv(min(chunk + in-flight, L), block) (:813-837); Mamba a fixed count (:1076-1082); else cdiv(L, block)."""
    block = block_size * g.block_scale
    if g.kind == "mamba":
        return g.state_blocks
    if g.kind == "sliding":
        return ceil(min(g.window - 1 + in_flight, max_model_len) / block) + 1
    if g.kind == "chunked":
        return ceil(min(g.window + in_flight, max_model_len) / block)
    return ceil(max_model_len / block)


def capacity(rel: PlanRelease, shapes: tuple[GroupShape, ...], num_blocks: int, block_size: int,
             max_model_len: int, in_flight: int) -> tuple[int, float]:
    """(tokens, max concurrency) vLLM logs for `num_blocks` blocks ("GPU KV cache size", "Maximum concurrency").
    The tokens count no recurrent state: they are concurrency x max_model_len (0.21+) however many of the
    blocks are Mamba/GDN state pages."""
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
         async_scheduling: bool = True, windows: bool = True, compute_bytes: int = 2,
         ssm_bytes: int | None = None, window_offset: int = 0, speculative_tokens: int = 0) -> KvPlan:
    """vLLM's KV cache plan on one GPU for `kv_budget_bytes` of KV memory (pipeline parallel size 1)."""
    layers = layer_kv(lm, kv, tensor_parallel_size, windows, compute_bytes, ssm_bytes, window_offset,
                      speculative_tokens)
    return plan_layers(layers, vllm_version=vllm_version, max_model_len=max_model_len, block_size=block_size,
                       kv_budget_bytes=kv_budget_bytes, max_num_batched_tokens=max_num_batched_tokens,
                       async_scheduling=async_scheduling)


def plan_layers(layers: list[LayerKv], *, vllm_version: str, max_model_len: int, block_size: int,
                kv_budget_bytes: int, max_num_batched_tokens: int, async_scheduling: bool = True) -> KvPlan:
    """The plan for these per-layer specs: hybrid block alignment, page-size unification, groups, then
    num_blocks = budget // the largest group's pages (get_kv_cache_config_from_groups) and the release's
    capacity formula."""
    rel = release_for(vllm_version)
    in_flight = in_flight_tokens(rel, max_num_batched_tokens, async_scheduling)
    u = unify(layers, block_size)
    shapes = _shapes([x for x, _ in u.layers], [s for _, s in u.layers])
    groups = tuple(KvGroup(g.kind, g.layers, u.block_size * g.block_scale, u.page_bytes, g.window,
                           blocks_per_request(g, u.block_size, max_model_len, in_flight)) for g in shapes)
    bytes_per_block = max(g.layers * g.page_bytes for g in groups)
    num_blocks = max(0, kv_budget_bytes) // bytes_per_block
    tokens, concurrency = capacity(rel, shapes, num_blocks, u.block_size, max_model_len, in_flight)
    state_page = u.page_bytes if u.state_bytes else 0
    return KvPlan(rel.name, groups, bytes_per_block, num_blocks, tokens, concurrency, u.block_size, state_page,
                  u.state_bytes)


def plan_for(spec: ModelSpec, *, vllm_version: str, max_model_len: int, kv_budget_bytes: int, block_size: int = 16,
             kv_cache_dtype: str = "auto", tensor_parallel_size: int = 1, max_num_batched_tokens: int = 8192,
             dtype: str = "auto", mamba_ssm_cache_dtype: str = "auto", num_speculative_tokens: int = 0,
             mtp_draft: bool = False) -> KvPlan:
    """`plan` with vLLM's flag names: kv_cache_dtype auto stores the compute dtype (--dtype auto: the
    checkpoint's, float32 run as bfloat16), the fp8 variants one byte per element. `mtp_draft`: --speculative-config
    method mtp, the checkpoint's MTP layers planned after the target's (vllm_mtp.with_draft)."""
    from app.estimator.runtimes import vllm_mtp

    lm = spec.language_model
    if mtp_draft:
        if lm.mtp_draft is None:
            raise ValueError(f"{spec.slug} has no MTP draft")
        lm = vllm_mtp.with_draft(lm, lm.mtp_draft.layers)
    name = dtype if dtype != "auto" else spec.language_model.dtype
    compute = KV_TYPES[{"float32": "fp32", "float16": "fp16"}.get(name, "bf16") if dtype != "auto"
                       else ("bf16" if name in ("bfloat16", "float32") else "fp16")]
    kv = KV_TYPES["fp8"] if kv_cache_dtype.startswith("fp8") else compute
    return plan(lm, kv, vllm_version=vllm_version, max_model_len=max_model_len,
                block_size=block_size, tensor_parallel_size=tensor_parallel_size, kv_budget_bytes=kv_budget_bytes,
                max_num_batched_tokens=max_num_batched_tokens, windows=spec.family not in FULL_ATTENTION_FAMILIES,
                compute_bytes=compute.bytes_for(1), window_offset=window_offset(spec),
                ssm_bytes=None if mamba_ssm_cache_dtype == "auto" else cache.DTYPE_BYTES[mamba_ssm_cache_dtype],
                speculative_tokens=num_speculative_tokens)
