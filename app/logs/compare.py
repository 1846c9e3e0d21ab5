"""A pasted log beside our estimate for the same settings: `check_log(text, catalog) -> LogReport`.

Pure Python (no web imports): the API, the /logs page and the `vram check` command all call it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError, computed_field

from app.estimator import EstimatorError, VramEstimate, VramRequest, estimate
from app.estimator.commands import command_for
from app.logs import llamacpp, vllm
from app.logs.mapping import find_model, llamacpp_request, quantization, vllm_request
from app.logs.model import MAX_LOG_BYTES, Figure, ParsedLog
from app.logs.versions import version_warning

_HOST = ("CPU", "Host", "host", "Mapped")  # llama.cpp host buffer names: CPU, CPU_Mapped, CUDA_Host


class TermRow(BaseModel):
    """One term measured by the runtime beside our estimate of it."""

    term: str
    unit: str = Field(description="bytes, tokens or x (sequences).")
    measured: float = Field(description="What the log printed, in `unit` (bytes: printed x MiB/GiB).")
    printed: str = Field(description="As printed, with its unit and line(s).")
    tolerance: float = Field(description="Rounding of the printed figures, in `unit`.")
    estimated: float | None = Field(None, description="Our estimate in `unit` (None: we do not model it).")
    error: float | None = Field(None, description="(estimated - measured) / measured.")
    under_estimate: bool | None = Field(None, description="Our estimate is below the measured value "
                                        "beyond the printed rounding (the worst error).")
    capacity: bool = Field(False, description="A capacity (KV budget, tokens, concurrency) rather than memory used: "
                           "over-estimating it is the unsafe side.")
    unsafe: bool | None = Field(None, description="Our figure errs on the side that admits a setting that fails: "
                                "below the measured use, or above the measured capacity, beyond the rounding.")
    runtime_estimate: str | None = Field(None, description="The runtime's own estimate of this term when the "
                                         "log prints one (Ollama's memory.*, vLLM's estimated graph pool).")


class LogReport(BaseModel):
    """What the log says, what we estimate for the same settings, and the difference term by term."""

    log: ParsedLog
    runtime_versions: str | None = Field(None, description="Runtime versions our model describes.")
    model: str | None = Field(None, description="Model the comparison used (slug).")
    model_source: str = ""
    request: dict[str, Any] | None = Field(None, description="The estimate request the settings became.")
    estimate: VramEstimate | None = None
    terms: list[TermRow] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    command: str | None = Field(None, description="The command our estimate describes.")

    @computed_field(description="Terms where our figure errs on the unsafe side: memory used below the "
                    "measured, capacity above it.")  # type: ignore[prop-decorator]
    @property
    def unsafe_terms(self) -> list[str]:
        return [t.term for t in self.terms if t.unsafe]


def parse_log(text: str) -> ParsedLog:
    """Parse with whichever parser recognises more lines; an unknown log gives runtime None."""
    if len(text.encode("utf-8", "replace")) > MAX_LOG_BYTES:
        raise ValueError(f"log longer than {MAX_LOG_BYTES // (1 << 20)} MiB")
    (a, hits_a), (b, hits_b) = llamacpp.parse(text), vllm.parse(text)
    if max(hits_a, hits_b) == 0:
        return ParsedLog(runtime=None, lines=a.lines, missing=["no llama.cpp or vLLM line was recognised"])
    return a if hits_a >= hits_b else b


def _sum(figs: list[Figure]) -> tuple[int, int, str]:
    total = sum(f.bytes or 0 for f in figs)
    tol = sum(f.rounding_bytes or 0 for f in figs)
    printed = " + ".join(f"{f.device + ' ' if f.device else ''}{f.printed} {f.unit} (line {f.line})" for f in figs)
    return total, tol, printed


def _row(term: str, figs: list[Figure], estimated: int | float | None, unit: str = "bytes",
         theirs: Figure | None = None, capacity: bool = False) -> TermRow | None:
    if not figs:
        return None
    if unit == "bytes":
        measured, tol, printed = _sum(figs)
    else:
        f = figs[0]
        measured, printed = float(f.value), f"{f.printed} {f.unit} (line {f.line})"
        tol = 0.5 * 10 ** -(len(f.printed.split(".")[1]) if "." in f.printed else 0)
    row = TermRow(term=term, unit=unit, measured=measured, printed=printed, tolerance=tol, estimated=estimated,
                  runtime_estimate=f"{theirs.printed} {theirs.unit} (line {theirs.line})" if theirs else None,
                  capacity=capacity)
    if estimated is not None and measured:
        row.error = round((estimated - measured) / abs(measured), 4)
        row.under_estimate = estimated < measured - tol
        row.unsafe = estimated > measured + tol if capacity else row.under_estimate
    return row


def _is_host(device: str | None) -> bool:
    return device is not None and any(h in device for h in _HOST)


def _llamacpp_terms(log: ParsedLog, est: VramEstimate) -> list[TermRow | None]:
    buffers: dict[tuple[str, str], int] = {}
    for b in est.llamacpp.buffers if est.llamacpp else []:
        buffers[(b.name, b.device)] = buffers.get((b.name, b.device), 0) + b.bytes
    b, d = est.breakdown, est.detail

    def pick(kind: str, host: bool) -> list[Figure]:
        """The buffers of `kind` on the host or the GPUs; the exit breakdown table when none printed."""
        alts = {"model_buffer": ("mb_model", "fit_model"), "compute_buffer": ("mb_compute", "fit_compute")}
        figs = log.all(kind) or next((log.all(a) for a in alts.get(kind, ()) if log.all(a)), [])
        return [f for f in figs if _is_host(f.device) == host]

    def ours(name: str, device: str, fallback: int | None) -> int | None:
        return buffers.get((name, device), fallback if not buffers else None)

    # one context's caches: every KV size line before its first compute buffer (iSWA models print two)
    first_compute = min((f.line for f in log.all("compute_buffer")), default=None)
    kv = [f for f in log.all("kv_total") if first_compute is None or f.line < first_compute][:2] \
        or log.all("kv_buffer")
    if sum(f.bytes or 0 for f in log.all("kv_buffer")) > _sum(kv)[0] + _sum(kv)[1]:
        kv = log.all("kv_buffer")  # an iSWA cache printed both buffers but only one size line
    kv = kv or log.all("mb_context") or log.all("fit_context")  # the breakdown table, --fit-print
    if log.setting("meta.no_alloc") == 1:  # a dry run (llama-fit-params, no_alloc): buffers print as 0.00
        def both(name: str) -> int | None:
            return (buffers.get((name, "gpu"), 0) + buffers.get((name, "host"), 0)) or None
        return [_row("KV cache", kv, both("kv")),
                _row("compute buffer", log.all("compute_buffer"), both("compute")),
                _row("output buffer", log.all("output_buffer"), ours("output", "host", None))]
    return [
        _row("weights on GPU", pick("model_buffer", False), ours("model", "gpu", b.weights)),
        _row("weights in host RAM", pick("model_buffer", True), ours("model", "host", d.weights_host_bytes)),
        _row("KV cache", kv, (buffers.get(("kv", "gpu"), 0) + buffers.get(("kv", "host"), 0)) or b.kv_cache,
             theirs=log.first("ollama.required.kv")),
        _row("compute buffer on GPU", pick("compute_buffer", False), ours("compute", "gpu", b.activations),
             theirs=log.first("ollama.graph.full")),
        _row("compute buffer in host RAM", pick("compute_buffer", True), ours("compute", "host", None)),
        _row("output buffer", log.all("output_buffer"), ours("output", "host", None)),
        _row("LoRA adapter", log.all("lora_buffer"), None),
        _row("device memory --fit projects", log.all("fit_projected")[:1], _device_total(buffers)),
    ]


def _kv_size(log: ParsedLog) -> list[Figure]:
    """The KV bytes vLLM settled on: 0.34's extended cache, else the ledger's, else the profiled budget."""
    return log.all("kv_extended") or log.all("kv_in_use") or log.all("kv_available")


def _device_total(buffers: dict[tuple[str, str], int]) -> int | None:
    """model + context + compute on the device: what --fit projects (common_params_fit_impl)."""
    return sum(buffers.get((name, "gpu"), 0) for name in ("model", "kv", "compute")) or None


def _vllm_terms(log: ParsedLog, est: VramEstimate) -> list[TermRow | None]:
    v, n = est.vllm, est.request.gpu_count
    return [
        _row("weights per GPU", (log.all("weights") or log.all("weights_profiled"))[:1],
             v.weights_bytes if v else est.breakdown.weights // n),
        _row("activation peak", log.all("activation_peak")[:1],
             v.activation_peak_bytes if v else est.breakdown.activations),
        _row("non-torch memory", log.all("non_torch")[:1], v.non_torch_bytes if v else None),
        _row("available KV cache memory", _kv_size(log)[:1], v.kv_budget_bytes if v else None, capacity=True),
        _row("CUDA-graph estimate in the budget", log.all("cuda_graph_estimate")[:1],
             v.cuda_graph_estimate_bytes if v and v.cuda_graph_estimate_bytes else None),
        _row("equivalent gpu_memory_utilization", log.all("equivalent_utilization")[:1],
             v.equivalent_gpu_memory_utilization if v else None, "x"),
        _row("budget (gpu_memory_utilization x total)", log.all("budget")[:1], v.requested_bytes if v else None),
        _row("GPU KV cache size", log.all("kv_tokens"), v.kv_tokens if v else est.detail.kv_capacity_tokens, "tokens",
             capacity=True),
        _row("maximum concurrency", log.all("max_concurrency"), v.max_concurrency if v else est.detail.max_concurrency,
             "x", capacity=True),
        _row("CUDA graph pool", log.all("cuda_graph_pool")[:1] or log.all("cuda_graph")[:1],
             v.cuda_graph_bytes if v else None, theirs=log.first("cuda_graph_estimated")),
    ]


_TERMS: dict[str, Callable[[ParsedLog, VramEstimate], list[TermRow | None]]] = {
    "llama.cpp": _llamacpp_terms, "vllm": _vllm_terms}
_REQUESTS = {"llama.cpp": llamacpp_request, "vllm": vllm_request}


def _gpu_for(log: ParsedLog, gpus: list[Any]) -> str | None:
    """The catalog GPU whose total is within 1.5% of the total vLLM printed (torch sees a little less)."""
    total = log.first("gpu_total")
    if total is None or not total.bytes:
        return None
    near = [g for g in gpus if abs(g.cuda_total - total.bytes) <= 0.015 * g.cuda_total]
    return min(near, key=lambda g: abs(g.cuda_total - total.bytes)).slug if near else None


def _shape(spec) -> tuple:
    """What the log's metadata can tell apart: the language model's layer count and widths."""
    lm = spec.language_model
    return (lm.layers, lm.hidden, lm.kv_heads, lm.vocab)


def check_log(text: str, catalog: Any, overrides: dict[str, Any] | None = None) -> LogReport:
    """Parse `text`, estimate the same settings with `catalog`'s model, and compare term by term.

    Args:
        text: a llama.cpp/Ollama or vLLM startup log (at most MAX_LOG_BYTES).
        catalog: the model catalog (`.models`, `.gpus`).
        overrides: request fields the user adds (model, quantization, ...) when the log lacks them.

    Raises:
        ValueError: the text is longer than MAX_LOG_BYTES.
    """
    log = parse_log(text)
    report = LogReport(log=log)
    if log.runtime is None:
        return report
    report.runtime_versions, warning = version_warning(log)
    if warning and not (overrides or {}).get("vllm_version"):
        report.warnings.append(warning)
    try:  # a log's numbers are user input: "n_ctx = abc" or a 0 head count is a warning, never a crash
        spec, report.model_source = find_model(log, catalog.models)
        req = {**_REQUESTS[log.runtime](log), "quantization": quantization(log), **(overrides or {})}
    except (ValueError, TypeError, ArithmeticError) as exc:  # pydantic's ValidationError is a ValueError
        report.warnings.append(f"no estimate: a setting the log prints is not readable ({str(exc)[:200]})")
        return report
    if warning and log.version and "vllm_version" in req and not (overrides or {}).get("vllm_version"):
        del req["vllm_version"]  # a release we do not model: compare with our default one (warned above)
    if "model" in req and req["model"] in catalog.models:
        found, why = spec, report.model_source
        spec, report.model_source = catalog.models[req["model"]], "named by the user"
        if found is not None and found.slug != spec.slug and _shape(found) != _shape(spec):
            report.warnings.append(f"the model you named ({spec.name}) disagrees with the log's own metadata, "
                                   f"which matches {found.name} ({why}): the estimate is for {spec.name}, so the "
                                   "comparison may not describe this log")
    if log.runtime == "vllm" and req["quantization"] is None and spec is not None and not log.setting("quantization"):
        req["quantization"] = spec.dtype_slug  # --dtype auto, no quantization: the checkpoint's dtype
    if log.runtime == "vllm" and "gpu" not in req:
        req["gpu"] = _gpu_for(log, catalog.gpus)
    if spec is None or req["quantization"] is None:
        report.warnings.append("no estimate: " + ("the model is not identified" if spec is None
                                                  else "the weight format is not identified") +
                               "; name it (model, quantization) to compare")
        return report
    req["model"] = report.model = spec.slug
    report.request = {k: v for k, v in req.items() if v is not None}
    try:
        est = estimate(spec, VramRequest.model_validate(report.request), catalog.gpus)
    except (ValidationError, EstimatorError) as exc:
        report.warnings.append(f"no estimate for these settings: {exc}")
        return report
    repo = str(log.setting("model")) if log.runtime == "vllm" and "/" in str(log.setting("model", "")) else None
    report.estimate, report.command = est, command_for(est.request, spec, est, repo)
    report.terms = [r for r in _TERMS[log.runtime](log, est) if r is not None]
    return report
