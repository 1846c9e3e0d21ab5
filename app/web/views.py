"""What the pages show beside the numbers: grouped format options, the VRAM table, the chart, the
sentences that say which parts are loaded. Every number comes from `estimate` or the solver; this
module only arranges them (and converts the GiB a visitor types into bytes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from app.catalog import Catalog
from app.estimator import FORMATS, GROUP_LABELS, RUNTIMES, InvalidRequest, VramEstimate, VramRequest, estimate
from app.estimator.gpus import Gpu
from app.estimator.memo import per_spec
from app.estimator.solve import ContextFit, fit_table, target_gpu
from app.estimator.spec import ModelSpec
from app.web.charts import Chart, context_slider, memory_chart, stacked_bar
from app.web.urls import CARD_FIELDS, api_url, calculator_url, card_url, flags

TABLE_CONTEXTS = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
TABLE_COLUMNS = [(c, f"{c // 1024}K") for c in TABLE_CONTEXTS]
CHART_FORMATS = ("bf16", "q8_0", "q4_k_m", "q2_k")
GIB = 2**30
GPU_MEMORY_GIB = TypeAdapter(Annotated[float, Field(gt=0, le=16384)])

# --- vision tower wording: the one place that says whether a runtime loads it ---
# llama.cpp loads the vision projector only when started with --mmproj; until the request carries an
# `mmproj` field, the estimator loads it exactly when the prompt has images.
VISION_WORDS = {True: "vision tower loaded", False: "text only: vision tower not loaded"}
LLAMACPP_WORDS = {True: "with --mmproj (vision tower loaded)", False: "text only (no --mmproj)"}
SHORT_WORDS = {"vision tower loaded": "loaded", "with --mmproj (vision tower loaded)": "with --mmproj"}


def vision_loaded(has_vision: bool, runtime: str, images: int, mmproj: bool | None = None) -> bool | None:
    """Whether `runtime` holds the vision tower in GPU memory (None: the model has none)."""
    if not has_vision:
        return None
    if runtime == "llama.cpp":
        return images > 0 if mmproj is None else mmproj
    return True


def vision_words(has_vision: bool, runtime: str, images: int, mmproj: bool | None = None) -> str:
    loaded = vision_loaded(has_vision, runtime, images, mmproj)
    if loaded is None:
        return "text model"
    return (LLAMACPP_WORDS if runtime == "llama.cpp" else VISION_WORDS)[loaded]


@dataclass(frozen=True)
class Option:
    slug: str
    label: str
    runtimes: str = ""  # space-separated runtimes that accept it (for disabling refused choices)
    why: str = ""  # why it is listed disabled ("" when it is a choice)


def inert(spec: ModelSpec, slug: str) -> bool:
    """A format that changes nothing for this model: one of MoE expert tensors, and the model has none."""
    return FORMATS[slug].experts_only and spec.language_model.moe is None


def format_groups(spec: ModelSpec, runtimes: bool = True) -> dict[str, list[Option]]:
    """The quantization dropdown: every listed format of the API under its group label, and `spec`'s own
    stored format where it is not listed (NVFP4, ModelOpt checkpoints); those that change nothing for `spec`
    say so. `runtimes=False` leaves out which runtimes load each (the card has no runtime control)."""
    groups: dict[str, list[Option]] = {label: [] for label in GROUP_LABELS.values()}
    for f in FORMATS.values():
        if f.listed or f.slug == spec.default_format:
            groups[GROUP_LABELS[f.group]].append(Option(f.slug, f.label, " ".join(f.runtimes) if runtimes else "",
                                                        "no MoE experts in this model" if inert(spec, f.slug) else ""))
    return groups


def kv_options(kv_types: Mapping) -> list[Option]:
    """KV-cache types, each with the runtimes that support it."""
    return [Option(k.slug, k.label, " ".join(r.slug for r in RUNTIMES.values() if k.slug in r.kv_types))
            for k in kv_types.values()]


@dataclass(frozen=True)
class WeightPart:
    label: str
    bytes: int
    sign: str  # "" or "-" (subtracted from the line above)


def weights_parts(est: VramEstimate) -> tuple[list[WeightPart], str]:
    """The weights row's parts (they add up to breakdown.weights) and what was left out, in words."""
    d, r = est.detail, est.request
    report = getattr(est, "llamacpp", None)
    if report is not None:  # llama.cpp: its own per-device buffers
        return _llamacpp_parts(report, d.parameters_vision > 0)
    parts = [WeightPart("language model", d.weights_language_bytes, "")]
    if d.weights_host_bytes:
        parts.append(WeightPart("token embedding kept in host RAM", d.weights_host_bytes, "-"))
    loaded = vision_loaded(d.parameters_vision > 0, r.runtime, r.images, r.mmproj)
    left_out = ""
    if loaded:
        parts.append(WeightPart("vision tower", d.weights_vision_bytes, ""))
    elif loaded is False:
        left_out = f"vision tower not loaded ({vision_words(True, r.runtime, r.images, False)})"
    if getattr(est, "vllm", None) is not None:  # vLLM pads the vocabulary rows and copies some tensors per GPU
        extra = est.breakdown.weights - sum(p.bytes for p in parts)
        if extra:
            parts.append(WeightPart("vLLM vocabulary padding and per-GPU copies", abs(extra), "-" if extra < 0 else ""))
    return parts, left_out


def _llamacpp_parts(report, has_vision: bool) -> tuple[list[WeightPart], str]:
    on_gpu = {b.name: b.bytes for b in report.buffers if b.device == "gpu"}
    on_host = {b.name: b.bytes for b in report.buffers if b.device == "host"}
    parts = [WeightPart("language model on the GPU", on_gpu.get("model", 0), "")]
    notes = []
    if on_host.get("model"):
        notes.append(f"{on_host['model'] / GIB:,.2f} GiB of weights kept in host RAM")
    if report.mmproj:
        parts.append(WeightPart("vision projector (--mmproj)", on_gpu.get("mmproj", 0), ""))
    elif has_vision:
        notes.append(f"vision tower not loaded ({LLAMACPP_WORDS[False]})")
    return parts, "; ".join(notes)


@dataclass(frozen=True)
class VllmNote:
    gpus: int
    claimed_per_gpu: int  # what vLLM takes on each GPU: weights, activations, overhead, then KV blocks
    capacity_tokens: int  # KV positions the claim holds
    sequence_tokens: int  # positions one sequence occupies (whole KV blocks)
    whole_sequences: int  # sequences of this length that fit at once


def vllm_note(est: VramEstimate) -> VllmNote | None:
    """vLLM with a GPU: it claims a share of each GPU and fills it with KV blocks; say so per GPU."""
    d, n, report = est.detail, est.request.gpu_count, getattr(est, "vllm", None)
    if report is not None and report.kv_tokens is not None and est.request.gpu:  # the vLLM runtime's report
        return VllmNote(n, est.total_bytes // n, report.kv_tokens, d.sequence_length,
                        int(report.max_concurrency or 0))
    if d.kv_capacity_tokens is None or not est.request.gpu:
        return None
    return VllmNote(n, est.total_bytes // n, d.kv_capacity_tokens, d.kv_cache_tokens,
                    d.kv_capacity_tokens // d.kv_cache_tokens)


@dataclass(frozen=True)
class Verdict:
    """The one verdict every element of the breakdown shows, read from the answer (`runs()`)."""

    ok: bool
    gpu: str  # "NVIDIA GeForce RTX 4090 x2"
    margin_bytes: int  # to spare (>= 0) or missing (< 0)
    vllm: bool  # vLLM's startup decision (else: the total against the GPU's memory)


def verdict(est: VramEstimate) -> Verdict | None:
    runs, margin = est.runs(), est.margin_bytes()
    if runs is None or margin is None:
        return None
    g = est.fits[0]
    return Verdict(runs, g.name + (f" x{g.count}" if g.count > 1 else ""), margin, est.vllm is not None)


def breakdown_context(est: VramEstimate, oob: bool = False, gpu_memory: float | None = None,
                      params: VramRequest | None = None, mini: bool = True) -> dict:
    """The breakdown partial's whole context: the estimate plus presentation extras (the bar's
    geometry, the weights row's parts, the vLLM note, the state's URLs, whether to echo the label).
    `params`, the request as given, puts its runtime flags into the URLs (the whole state)."""
    parts, left_out = weights_parts(est)
    given = flags(params)
    return {"estimate": est, "bar": stacked_bar(est.breakdown), "api_url": api_url(est.request, given),
            "calculator_url": calculator_url(est.request, given, gpu_memory),
            "card_url": card_url(est.request, gpu_memory),
            "weight_parts": parts, "weights_left_out": left_out, "vllm": vllm_note(est), "oob": oob,
            "verdict": verdict(est), "mini": mini}  # mini: the phone's total bar (the calculator's long form)


@dataclass(frozen=True)
class TableRow:
    slug: str
    label: str
    group: str
    runtime: str
    vision: str
    totals: tuple[int, ...]

    @property
    def vision_short(self) -> str:
        return SHORT_WORDS.get(self.vision, self.vision)


@per_spec
def vram_table(spec: ModelSpec, images: int) -> tuple[TableRow, ...]:
    """Total bytes per format and context (batch 1, each format's default runtime).

    Cached per spec and image count: the table does not depend on the rest of the page state.
    """
    rows = []
    for f in FORMATS.values():
        if inert(spec, f.slug):
            continue  # MXFP4, MXFP4_MOE: formats of expert tensors
        if all(spec.family in RUNTIMES[r].unsupported for r in f.runtimes):
            continue  # no runtime of this format runs the family (DeepSeek-V4: no GGUF architecture)
        if not f.listed and f.slug != spec.default_format:
            continue  # a checkpoint format (NVFP4, ModelOpt): a row on the models stored in it
        ests = [estimate(spec, VramRequest(model=spec.slug, quantization=f.slug, context=c, images=images))
                for c in TABLE_CONTEXTS]
        runtime = ests[0].request.runtime
        rows.append(TableRow(f.slug, f.label, GROUP_LABELS[f.group], RUNTIMES[runtime].label.split(" (")[0],
                             vision_words(spec.vision is not None, runtime, images),
                             tuple(e.total_bytes for e in ests)))
    return tuple(rows)


@per_spec
def gpu_fits(spec: ModelSpec, images: int, gpu: Gpu) -> dict[str, ContextFit]:
    """Per format, the largest context that fits on `gpu` (the solver's binary search), cached."""
    return {f.quantization: f for f in fit_table(spec, VramRequest(model=spec.slug, images=images), gpu)}


def chart_for(table: tuple[TableRow, ...]) -> Chart:
    """The chart's lines are rows of the table, so both always show the same numbers."""
    return memory_chart({r.label: list(zip(TABLE_CONTEXTS, r.totals, strict=True))
                         for r in table if r.slug in CHART_FORMATS})


# Card fields the card leaves blank ("-") but the released config answers: label -> (attribute, names).
KNOWN_FIELDS = {
    "Activation Function": ("ffn_kind", {"swiglu": "SwiGLU (SiLU-gated MLP)", "gelu": "GELU"}),
    "Normalization": ("norm", {"rmsnorm": "RMSNorm", "layernorm": "LayerNorm"}),
}


def released_values(spec: ModelSpec) -> dict[str, tuple[str, str]]:
    """Card label -> (released value, its source) for disputed fields and blanks the config fills."""
    out = {d.field: (d.released, d.source) for d in spec.discrepancies}
    lm = spec.language_model
    for f in spec.card.fields:
        if f.label in KNOWN_FIELDS and f.label not in out and f.value.strip() in ("-", ""):
            attr, names = KNOWN_FIELDS[f.label]
            out[f.label] = (names[getattr(lm, attr)], lm.source_of(attr))
    return out


def related_models(spec: ModelSpec, catalog: Catalog) -> tuple[str, list[ModelSpec]]:
    """The heading (the card's own when it has one) and the models of the same vendor (when the catalog
    names one) or family."""
    vendor = getattr(spec, "vendor", None)
    if vendor:
        heading, models = f"More models from {vendor}", [m for m in catalog.models.values()
                                                         if getattr(m, "vendor", None) == vendor]
    else:
        heading, models = f"The {spec.family} family", [m for m in catalog.models.values() if m.family == spec.family]
    return spec.card.family_heading or heading, models


@dataclass(frozen=True)
class CardState:
    estimate: VramEstimate
    gpu: Gpu | None  # the GPU the fit column is for (a catalog GPU or a typed memory size)
    gpu_memory: float | None  # GiB as typed


def card_state(spec: ModelSpec, catalog: Catalog, query: Mapping[str, str]) -> CardState:
    """The card's state from its query string.

    Raises:
        ValidationError: a field outside VramRequest's bounds (its `loc` names the field).
        InvalidRequest: a choice the model or runtime refuses, or a bad `gpu_memory`.
    """
    data = {k: v for k, v in query.items() if k in CARD_FIELDS}
    req = VramRequest.model_validate({**data, "model": spec.slug})
    raw = (query.get("gpu_memory") or "").strip()
    gpus, memory, gpu = catalog.gpus, None, None  # the catalog's own tuple: its fit rows are kept per that object
    if raw:
        try:
            memory = GPU_MEMORY_GIB.validate_python(raw)
        except ValidationError:
            raise InvalidRequest("gpu_memory", "GPU memory is a number of GiB above 0, up to 16,384") from None
        gpu = target_gpu(int(memory * GIB))
        gpus = (*gpus, gpu)
        req = req.model_copy(update={"gpu": gpu.slug})
    est = estimate(spec, req, gpus)
    if gpu is None and req.gpu:
        gpu = next(g for g in gpus if g.slug == req.gpu)
    return CardState(est, gpu, memory)


def card_context(spec: ModelSpec, catalog: Catalog, state: CardState) -> dict:
    """Everything the card page renders around the breakdown (also its HTMX update's context)."""
    est = state.estimate
    table = vram_table(spec, est.request.images)
    family_heading, family = related_models(spec, catalog)
    return {
        "spec": spec, "gpus": catalog.gpus, "gpu": state.gpu, "gpu_memory": state.gpu_memory,
        "family_heading": family_heading, "family": family,
        "groups": format_groups(spec, runtimes=False),
        "slider": context_slider(spec.language_model.max_context, est.request.context),
        "contexts": TABLE_COLUMNS,
        "released": released_values(spec),
        "table": table,
        "fit": gpu_fits(spec, est.request.images, state.gpu) if state.gpu else None,
        "vision_caption": _vision_caption(spec, est.request.images),
        "table_key": f"{est.request.images}/{state.gpu.slug if state.gpu else ''}/"
                     f"{state.gpu.memory_bytes if state.gpu else ''}",
        "chart": chart_for(table),
        **breakdown_context(est, gpu_memory=state.gpu_memory, mini=False),
    }


def _vision_caption(spec: ModelSpec, images: int) -> str:
    if spec.vision is None:
        return ""
    runtimes = sorted({f.runtimes[0] for f in FORMATS.values()})
    return "; ".join(f"{RUNTIMES[r].label.split(' (')[0]} rows: {vision_words(True, r, images)}" for r in runtimes)
