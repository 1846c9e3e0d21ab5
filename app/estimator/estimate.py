"""The estimator's entry points: every caller (API, pages, bench, cross-check) goes through these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from app.estimator import cache
from app.estimator.cache_io import CacheLayer, CacheReport
from app.estimator.commands import command_for
from app.estimator.errors import InvalidRequest, OutOfRange, UnknownChoice
from app.estimator.gpus import Gpu, fits
from app.estimator.images import describe as describe_images
from app.estimator.images import for_request as sized_for_images
from app.estimator.kv_cache import KV_TYPES, KvType, image_positions, kv_bytes
from app.estimator.memo import per_list, per_spec
from app.estimator.params import ParameterCount, count_active_parameters, count_parameters
from app.estimator.quantization import FORMATS, Format, StoredWeights, applied_skip, skip_summary, stored_weights
from app.estimator.runtimes import RUNTIMES, Runtime, RuntimeInput
from app.estimator.schema import (
    Breakdown,
    Detail,
    ResolvedRequest,
    VramEstimate,
    VramRequest,
    WeightsReport,
)
from app.estimator.spec import ModelSpec


@dataclass(frozen=True, slots=True, repr=False)
class GgufWeights:
    """A GGUF file's weights (llama.cpp): stored sizes, tensor table, architecture."""

    weights: StoredWeights
    tensors: tuple[Any, ...]
    arch: str


class Choices(NamedTuple):  # one per estimate: a tuple is built in C, a frozen dataclass's __init__ is not
    fmt: Format
    runtime: Runtime
    kv: KvType
    gpu: Gpu | None


def _pick(field: str, value: str, allowed: Sequence[str], why: str = "") -> str:
    if value not in allowed:
        raise UnknownChoice(field, value, list(allowed), why)
    return value


def _checkpoint_only(spec: ModelSpec, fmt: Format) -> None:
    if fmt.checkpoint_only and fmt.slug != spec.default_format:
        raise InvalidRequest("quantization", f"{fmt.label} is a layout read from a checkpoint's own "
                                             f"quantization_config; {spec.name} is not stored in it")


class Asked(NamedTuple):
    """The request fields the model, format, runtime and KV choices depend on (and only those: `_choose` reads
    nothing else of the request, so the choices are kept per spec and these values)."""

    quantization: str | None
    runtime: str | None
    kv_cache: str | None
    kv_cache_dtype: str
    vllm_version: str | None
    dtype: str


def resolve(spec: ModelSpec, req: VramRequest, gpus: Sequence[Gpu] = ()) -> Choices:
    """Fill defaults and check every choice against the model, the format and the runtime."""
    fmt, runtime, kv = _choose(spec, Asked(req.quantization, req.runtime, req.kv_cache, req.kv_cache_dtype,
                                           req.vllm_version, req.dtype))
    if req.images > spec.max_images:
        why = "text-only model" if spec.vision is None else f"{spec.name} takes at most {spec.max_images} per prompt"
        raise OutOfRange("images", req.images, 0, spec.max_images, why)
    gpu = None
    if req.gpu is not None:
        by_slug = _by_slug(tuple(gpus))
        gpu = by_slug.get(req.gpu) or by_slug[_pick("gpu", req.gpu, list(by_slug))]
    return Choices(fmt, runtime, kv, gpu)


@per_spec(bound=4096)  # vllm_version is any x.y.z
def _choose(spec: ModelSpec, req: Asked) -> tuple[Format, Runtime, KvType]:
    default_fmt = spec.default_format
    if req.runtime == "vllm":  # vLLM's --dtype (its flags load with the runtime that reads them)
        from app.estimator.runtimes import vllm_flags

        default_fmt = vllm_flags.default_format(spec, req)
    stored = FORMATS.get(default_fmt)
    if req.quantization is None and stored and stored.gguf_form and req.runtime not in (None, *stored.runtimes):
        default_fmt = stored.gguf_form  # llama.cpp asked for an MXFP4 checkpoint: the GGUF it converts to
    fmt = FORMATS[_pick("quantization", req.quantization or default_fmt, list(FORMATS))]
    if fmt.moe_only and spec.language_model.moe is None:
        raise InvalidRequest("quantization", f"{fmt.label} stores MoE expert tensors; {spec.name} has none "
                                             "(use f16, q8_0 or another GGUF type)")
    _checkpoint_only(spec, fmt)
    runs = [r for r in fmt.runtimes if spec.family not in RUNTIMES[r].unsupported]  # the format's default first
    runtime_slug = _pick("runtime", req.runtime or (runs or fmt.runtimes)[0], list(RUNTIMES))
    refused = dict(fmt.refused).get(runtime_slug)
    if refused:
        raise InvalidRequest("runtime", f"{RUNTIMES[runtime_slug].label} cannot run {fmt.label}: {refused}")
    _pick("runtime", runtime_slug, fmt.runtimes, f"{fmt.label} runs on these runtimes")
    runtime = RUNTIMES[runtime_slug]
    why = runtime.unsupported.get(spec.family)
    if why is not None:
        allowed = ", ".join(runs) or "none for this format"
        field = "runtime" if req.runtime else "quantization"  # the runtime a format's default named
        raise InvalidRequest(field, f"runtime {runtime_slug} cannot answer for {spec.name}: {why} "
                                    f"(allowed for {fmt.label}: {allowed})")
    kv_asked = req.kv_cache
    if runtime_slug == "vllm":  # --kv-cache-dtype, or the checkpoint's own KV scheme
        from app.estimator.runtimes import vllm_flags

        kv_asked = vllm_flags.kv_override(req, runtime_slug, spec) or req.kv_cache
    kv = _pick("kv_cache", kv_asked or runtime.default_kv(spec, fmt), runtime.kv_types,
               f"{runtime.label} supports these KV-cache types")
    return fmt, runtime, KV_TYPES[kv]


@per_list
def _by_slug(gpus: tuple[Gpu, ...]) -> dict[str, Gpu]:
    """The GPU list by slug, once per list."""
    return {g.slug: g for g in gpus}


def _warnings(spec: ModelSpec, req: VramRequest, sequence: int) -> list[str]:
    lm = spec.language_model
    exceeded = sequence > lm.max_context
    out = []
    if exceeded:
        out.append(f"{sequence:,} positions exceed the released model's trained context of "
                   f"{lm.max_context:,} tokens")
    out += _spec_warnings(spec, exceeded, req.images > 0)
    return out


@per_spec
def _spec_warnings(spec: ModelSpec, exceeded: bool, images: bool) -> tuple[str, ...]:
    """The card's discrepancies that apply (context beyond the trained one, images asked) and the generic note."""
    active = {"always": True, "context_exceeds": exceeded, "images": images, "never": False}
    out = [f"Card says {d.field} {d.card}; released: {d.released}. {d.matters}".strip()
           for d in spec.discrepancies if active[d.warn_when]]
    if spec.language_model.generic:
        out.append("generic: this architecture is not checked (no adapter for it; read with transformers' "
                   "standard keys, see the assumptions)")
    return tuple(out)


@dataclass(frozen=True, slots=True, repr=False)
class Fixed:
    """What an answer takes from the model, format and KV type alone: built once per combination (specs are
    immutable), so a request pays only for what its own numbers change."""

    parameters: ParameterCount
    parameters_active: int
    kv_per_token: int  # KV bytes of one position, all layers, one sequence
    lines: tuple[str, ...]  # the assumptions before the runtime's: format, skip list, KV
    format_warnings: tuple[str, ...]


@per_spec
def fixed(spec: ModelSpec, fmt: str, kv: str) -> Fixed:
    """Fixed parts for the registry's format `fmt` and KV type `kv` (no skip list)."""
    return _fixed(spec, FORMATS[fmt], KV_TYPES[kv], None)


def _fixed(spec: ModelSpec, fmt: Format, kv: KvType, skip: tuple[str, ...] | None) -> Fixed:
    lm = spec.language_model
    per_token = kv_bytes(lm, kv, 1)
    lines = (f"weights: {fmt.label} ({fmt.source})", *([skip_summary(spec, fmt, skip)] if skip is not None else []),
             _kv_line(lm, kv, per_token))
    return Fixed(count_parameters(spec), count_active_parameters(spec), per_token, lines,
                 tuple(_format_warnings(spec, fmt)))


def estimate(spec: ModelSpec, req: VramRequest, gpus: Sequence[Gpu] = (), *,
             gguf: GgufWeights | None = None) -> VramEstimate:
    """GPU memory for running `spec` as `req` asks.

    Args:
        spec: the released model (catalog entry).
        req: the request; unset fields resolve to defaults.
        gpus: the GPU catalog, for the fit verdicts.
        gguf: a GGUF file's own tensors (llama.cpp), instead of the format's rules.

    Returns:
        The resolved request, a breakdown in bytes, the detail, assumptions, warnings and fits.

    Raises:
        InvalidRequest: a choice the model, format or runtime does not allow.
    """
    spec = sized_for_images(spec, req.image_size)  # dynamic-resolution towers: tokens from the image size
    c = resolve(spec, req, gpus)
    skip = applied_skip(c.fmt, req.llm_int8_skip_modules)
    if skip is None and FORMATS.get(c.fmt.slug) is c.fmt:
        fx = fixed(spec, c.fmt.slug, c.kv.slug)
    else:
        fx = _fixed(spec, c.fmt, c.kv, skip)
    weights = gguf.weights if gguf else stored_weights(spec, c.fmt.slug, skip)
    positions = image_positions(spec, req.images)
    sequence = req.context + positions
    gpu_memory = (c.gpu.cuda_total if c.runtime.cuda_total else c.gpu.memory_bytes) * req.gpu_count if c.gpu else None
    mem = c.runtime.memory(RuntimeInput(spec, c.fmt, weights, c.kv, sequence, req.batch, req.images,
                                        req.gpu_count, req.flash_attention, gpu_memory, request=req,
                                        gpu_slug=c.gpu.slug if c.gpu else None,
                                        gguf_tensors=gguf.tensors if gguf else None,
                                        gguf_arch=gguf.arch if gguf else None))
    breakdown = Breakdown(weights=mem.weights, kv_cache=mem.kv_cache + mem.state, activations=mem.activations,
                          overhead=mem.overhead)
    total = mem.weights + mem.kv_cache + mem.state + mem.activations + mem.overhead
    params = fx.parameters
    lm = spec.language_model
    detail = Detail(
        parameters=params.total, parameters_language=params.language, parameters_vision=params.vision,
        parameters_active=fx.parameters_active,  # MoE: what one token uses
        weights_language_bytes=weights.language_bytes, weights_vision_bytes=weights.vision_bytes,
        weights_host_bytes=mem.weights_host,
        bits_per_weight=round(weights.bits_per_weight, 4),
        kv_bytes_per_token=fx.kv_per_token, image_positions=positions, sequence_length=sequence,
        state_bytes_per_sequence=mem.state_per_sequence, cache_layers=cache.describe(lm),
        kv_cache_tokens=mem.kv_cache_tokens, kv_capacity_tokens=mem.kv_capacity_tokens,
        max_concurrency=mem.max_concurrency,
    )
    assumptions = [*fx.lines, *mem.assumptions]
    v = spec.vision
    if v is not None and v.image is not None:
        assumptions.append(describe_images(v, req.image_size))
    if lm.generic:
        assumptions.append(lm.generic)
    resolved = ResolvedRequest(model=spec.slug, quantization=c.fmt.slug, context=req.context, batch=req.batch,
                               images=req.images, kv_cache=c.kv.slug, runtime=c.runtime.slug,
                               flash_attention=req.flash_attention, gpu=req.gpu, gpu_count=req.gpu_count,
                               mmproj=_mmproj(spec, req, c.runtime.slug),
                               llm_int8_skip_modules=list(skip) if skip is not None else None)
    return VramEstimate(
        request=resolved, model_name=spec.name, quantization_label=c.fmt.label, runtime_label=c.runtime.label,
        breakdown=breakdown, total_bytes=total, detail=detail, assumptions=assumptions,
        warnings=[*_warnings(spec, req, sequence), *fx.format_warnings, *mem.warnings],
        fits=fits(mem.required or total, mem.usable_fraction, gpus, req.gpu_count, req.gpu, mem.fit_on),
        host=mem.host, llamacpp=mem.llamacpp, vllm=mem.vllm,  # each runtime's own figures, or None
        command=command_for(resolved, spec, mem), runtime_versions=c.runtime.versions,
        cache=cache_report(lm, c.kv, mem, fx.kv_per_token),
    )


def _format_warnings(spec: ModelSpec, fmt: Format) -> list[str]:
    """A format that changes nothing for this model says so: the answer is the compute dtype's under its name."""
    if fmt.experts_only and spec.language_model.moe is None:
        return [f"{fmt.label} quantizes MoE expert tensors only and {spec.name} has none: every weight stays in "
                "the compute dtype, so these are the 16-bit figures"]
    return []


def cache_report(lm, kv: KvType, mem, kv_per_token: int | None = None) -> CacheReport:
    """KV and recurrent state apart, per layer, in the runtime's state rule (`kv_per_token`: kv_bytes(lm, kv, 1),
    when the caller has it)."""
    rule = mem.state_rule
    per_token = kv_bytes(lm, kv, 1) if kv_per_token is None else kv_per_token
    return CacheReport(kv_bytes=mem.kv_cache, state_bytes=mem.state, kv_bytes_per_token=per_token,
                       state_bytes_per_sequence=mem.state_per_sequence,
                       state_rule=rule.source if rule is not None else "", layers=list(_cache_layers(lm, kv, rule)))


@per_spec
def _cache_layers(lm, kv: KvType, rule) -> tuple[CacheLayer, ...]:
    """The per-layer rows of the cache report, built once per model, KV type and state rule (frozen models)."""
    return tuple(CacheLayer(index=x.index, layer_type=x.layer_type, kind=x.kind,
                            kv_bytes_per_token=x.kv_bytes_per_token(kv), span=x.span if x.rows else None,
                            source=x.source, state_bytes_per_sequence=x.state_bytes(rule) if rule is not None else 0)
                 for x in cache.layer_caches(lm))


def _kv_line(lm, kv: KvType, per_token: int) -> str:
    """The KV assumption: uniform models as layers x heads x dim; per-layer models by layer kind."""
    kinds = cache.kinds(lm)[0]
    uniform = kinds == {"attention"} and not lm.kv_geometry and lm.v_head_dim is None
    if uniform or lm.mla is not None and kinds == {"mla"}:
        return (f"KV cache {kv.label}: {per_token:,} bytes per position "
                f"({lm.layers} layers x {lm.kv_heads} KV heads x {lm.head_dim} head dim x K and V)")
    return (f"KV cache {kv.label}: {per_token:,} bytes per position over the layers that keep KV; layers: "
            f"{cache.describe(lm)} (recurrent layers keep a fixed-size state per sequence, not KV)")


def weights_report(spec: ModelSpec, quantization: str | None = None) -> WeightsReport:
    """The checkpoint as format `quantization` stores it, grouped by tensor name pattern."""
    slug = _pick("quantization", quantization or spec.default_format, list(FORMATS))
    _checkpoint_only(spec, FORMATS[slug])
    w = stored_weights(spec, slug)
    return WeightsReport(
        model=spec.slug, quantization=slug, total_bytes=w.total_bytes, parameters=count_parameters(spec).total,
        stored_elements=w.file_elements, bits_per_weight=round(w.bits_per_weight, 4),
        groups=list(w.groups),
    )


def _mmproj(spec: ModelSpec, req: VramRequest, runtime: str) -> bool | None:
    """llama.cpp loads a vision model's projector only with --mmproj (default here: when images > 0)."""
    if runtime != "llama.cpp" or spec.vision is None:
        return None
    return req.images > 0 if req.mmproj is None else req.mmproj
