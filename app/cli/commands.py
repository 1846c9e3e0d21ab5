"""The `vram` command: the estimator from a terminal, no server needed.

    vram estimate MODEL [request options] [--json]   the breakdown (--json: exactly /api/vram's JSON)
    vram fit MODEL (--gpu SLUG | --memory SIZE)      per format: fits? largest context that fits
    vram models | gpus | formats                     the registries
    vram check LOGFILE [--model ...] [--json]        a llama.cpp/Ollama/vLLM startup log beside our estimate

Request options are generated from VramRequest (app.cli.options). Errors print the API's message:
exit code 2 where the API answers 422, 3 where it answers 404, 4 where 503 (app.problems).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError

from app.catalog import load_catalog
from app.cli.inputs import check_formats, estimate_for, fit_target, request_for, spec_for
from app.cli.options import WHERE, request_parameters
from app.estimator import FORMATS, GROUP_LABELS, EstimatorError, count_parameters
from app.problems import EXIT_CODES, Refused, problem
from app.units import gib

if TYPE_CHECKING:
    from rich.console import Console

EPILOG = ("Exit codes: 0 answered; 2 invalid input (the API's 422); 3 unknown model or missing file (its 404); "
          "4 the Hugging Face Hub unreachable (its 503).")
cli = typer.Typer(name="vram", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  epilog=EPILOG, help="GPU memory (VRAM) for open models: the breakdown, and what fits where.")


@cache
def _console(stderr: bool = False) -> Console:
    """stdout's (or stderr's) rich console, made when a table or message is first printed: `--json` answers never
    import rich (the command's cold start)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _note(tag: str, line: str) -> None:
    """One message on stderr, `tag` in rich markup ("[red]error:[/]"), the text escaped."""
    from rich.markup import escape

    _console(stderr=True).print(f"{tag} {escape(line)}")


def _show() -> ModuleType:
    """app.cli.show (rich tables), imported when a table is printed."""
    from app.cli import show

    return show

MODEL = inspect.Parameter("model", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, typer.Argument(
    metavar="MODEL", show_default=False,
    help="Catalog slug or Hugging Face repo id (see `vram models`; other repo ids are fetched from the Hub), "
         "or a path to a config.json (or its folder) or a .gguf file.")])
JSON = inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
    bool, typer.Option("--json", metavar="", help="Print JSON instead of a table; errors as the API's error body.")])


@contextmanager
def _answering(as_json: bool) -> Iterator[None]:
    """Errors as the API states them: the message (or the API's JSON error body) and a non-zero exit."""
    try:
        yield
    except (EstimatorError, ValidationError, Refused) as exc:
        p = problem(exc, WHERE)
        if as_json:
            print(json.dumps({"detail": p.detail}, default=str))
        else:
            for line in p.lines():
                _note("[red]error:[/]", line)
        raise typer.Exit(p.exit_code) from None


def _signature(*params: inspect.Parameter) -> inspect.Signature:
    names = [p.name for p in params]
    clashing = {n for n in names if names.count(n) > 1}
    if clashing:  # a VramRequest field named like one of the command's own options
        raise RuntimeError(f"option names used twice: {sorted(clashing)}")
    return inspect.Signature(list(params))


def estimate_command(model: str, as_json: bool = False, **fields: Any) -> None:
    """GPU memory for MODEL as requested: weights, KV cache, activations, overhead."""
    with _answering(as_json):
        catalog = load_catalog(lazy=True)  # validates the one spec it answers for
        est = estimate_for(catalog, model, request_for(model, fields))
    if as_json:
        print(est.model_dump_json())
    else:
        from app.cli import show  # rich tables: only when one is printed

        show.estimate(_console(), est)


estimate_command.__signature__ = _signature(MODEL, *request_parameters(), JSON)  # type: ignore[attr-defined]
cli.command("estimate", epilog=EPILOG)(estimate_command)

_GPU_HELP = "Catalog GPU to fit in (see `vram gpus`); --gpu-count multiplies it."
_MEMORY_HELP = "Memory to fit in instead of a GPU, e.g. 24GiB, 80GB, or 24 (GiB); 123B is bytes (all of it usable)."
_FORMATS_HELP = "Only this format (repeatable; see `vram formats`); default: all."
_FIT = (
    inspect.Parameter("gpu", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=Annotated[str | None, typer.Option(metavar="SLUG", help=_GPU_HELP)]),
    inspect.Parameter("memory", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=Annotated[str | None, typer.Option(metavar="SIZE", help=_MEMORY_HELP)]),
    inspect.Parameter("quantization", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=Annotated[list[str] | None, typer.Option(metavar="SLUG", help=_FORMATS_HELP)]),
)


def fit_command(model: str, gpu: str | None = None, memory: str | None = None, quantization: list[str] | None = None,
                as_json: bool = False, **fields: Any) -> None:
    """Per weight format: does MODEL fit, and the largest context (tokens per sequence) that does."""
    from app.estimator.solve import ContextFit, fit_table

    with _answering(as_json):
        catalog = load_catalog()
        req = request_for(model, fields)
        spec = spec_for(catalog, model, req)
        target = fit_target(catalog, gpu, memory)
        rows = fit_table(spec, req, target, check_formats(quantization or []) or None)
    if as_json:
        print(TypeAdapter(list[ContextFit]).dump_json(rows).decode())
    else:
        from app.cli import show

        show.fit(_console(), spec.name, target, req.gpu_count, req.context, rows)


fit_command.__signature__ = _signature(  # type: ignore[attr-defined]
    MODEL, *_FIT, *request_parameters(exclude=("gpu", "quantization")), JSON)
cli.command("fit", epilog=EPILOG)(fit_command)


_LIST_JSON = Annotated[bool, typer.Option("--json", help="Print JSON (a list of objects) instead of a table.")]


def _listing(as_json: bool, title: str, columns: tuple[str, ...], rows: list[tuple], items: list[dict],
             right: tuple[str, ...] = ()) -> None:
    """A catalog listing: a table, or with --json the `items` as JSON."""
    if as_json:
        print(json.dumps(items))
        return
    _show().listing(_console(), title, columns, rows, right=right)


@cli.command("models")
def models(as_json: _LIST_JSON = False) -> None:
    """The model catalog (slugs for MODEL)."""
    specs = list(load_catalog().models.values())
    rows = [(s.slug, f"{count_parameters(s).total / 1e9:,.2f}B", f"{s.language_model.max_context:,}", s.modality)
            for s in specs]  # fits an 80-column terminal; names: /api/models
    items = [{"slug": s.slug, "name": s.name, "parameters": count_parameters(s).total,
              "max_context": s.language_model.max_context, "modality": s.modality} for s in specs]
    _listing(as_json, "Models", ("slug", "parameters", "max context", "modality"), rows, items,
             right=("parameters", "max context"))


@cli.command("gpus")
def gpus(as_json: _LIST_JSON = False) -> None:
    """The GPU catalog (slugs for --gpu); memory as the driver reports it."""
    catalog = load_catalog()
    rows = [(g.slug, g.name, gib(g.memory_bytes), g.memory_bytes, g.kind) for g in catalog.gpus]
    items = [{"slug": g.slug, "name": g.name, "memory_bytes": g.memory_bytes, "kind": g.kind} for g in catalog.gpus]
    _listing(as_json, "GPUs", ("slug", "name", "GiB", "bytes", "kind"), rows, items, right=("GiB",))


@cli.command("formats")
def formats(as_json: _LIST_JSON = False) -> None:
    """Weight formats (slugs for --quantization) and the runtimes that load them."""
    rows = [(f.slug, f.label, GROUP_LABELS[f.group], ", ".join(f.runtimes)) for f in FORMATS.values()]
    items = [{"slug": f.slug, "label": f.label, "group": GROUP_LABELS[f.group], "runtimes": list(f.runtimes)}
             for f in FORMATS.values()]
    _listing(as_json, "Weight formats", ("slug", "label", "group", "runtimes"), rows, items)


@cli.command("check", epilog=EPILOG)
def check(
    logfile: Annotated[typer.FileText, typer.Argument(metavar="LOGFILE", help="A startup log ('-' reads stdin).")],
    model: Annotated[str | None, typer.Option(help="Catalog slug or repo id, when the log does not name it.")] = None,
    quantization: Annotated[str | None, typer.Option(help="Format slug, when the log does not say it.")] = None,
    vllm_version: Annotated[str | None, typer.Option(help="vLLM release, when the log does not say it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly /api/logs's JSON.")] = False,
) -> None:
    """A llama.cpp, Ollama or vLLM startup log: what it printed beside our estimate, term by term (as /logs)."""
    overrides = {k: v for k, v in {"model": model, "quantization": quantization,
                                   "vllm_version": vllm_version}.items() if v}
    from app.logs import check_log  # the log parsers: only for this command

    try:
        report = check_log(logfile.read(), load_catalog(), overrides)
    except ValueError as exc:  # longer than the cap
        _note("[red]error:[/]", f"log: {exc}")
        raise typer.Exit(EXIT_CODES[422]) from None
    if as_json:
        print(report.model_dump_json())
        return
    rows = [(t.term, _amount(t.measured, t.unit), _amount(t.estimated, t.unit),
             "-" if t.error is None else f"{t.error:+.2%}", "UNSAFE" if t.unsafe else "") for t in report.terms]
    title = f"{report.log.runtime or 'unrecognised log'}: model {report.model or '?'} ({report.model_source or '-'})"
    out = _console()
    _show().listing(out, title, ("term", "log", "our estimate", "error", ""), rows, right=("log", "our estimate"))
    out.print("[dim]log: the printed figure (MiB or GiB as the runtime prints it) in GiB; --json has every line[/]")
    missing = [f"not in the log: {', '.join(report.log.missing)}"] if report.log.missing else []
    for line in missing + report.warnings:
        _note("[yellow]note:[/]", line)


def _amount(value: float | None, unit: str) -> str:
    """A log figure or our estimate in the same words on both sides: bytes as GiB (2^30), else the unit."""
    if value is None:
        return "-"
    if unit == "bytes":
        return f"{gib(int(value))} GiB"
    return f"{value:,.0f} {unit}" if value == int(value) else f"{value:,.2f} {unit}"


def main() -> None:
    """Console-script entry point (`vram`)."""
    cli(prog_name="vram")
