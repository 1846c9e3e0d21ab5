"""Terminal tables for the `vram` command (rich). Only arranges numbers the estimator returned;
sizes for people are GiB (2^30 bytes), as on the pages; exact bytes stay beside them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from app.estimator import Gpu, VramEstimate
from app.estimator.solve import ContextFit
from app.units import gib

PARTS = (("weights", "Weights"), ("kv_cache", "KV cache"), ("activations", "Activations"), ("overhead", "Overhead"))


def _part_notes(e: VramEstimate) -> dict[str, str]:
    d, r = e.detail, e.request
    weights = f"language model {gib(d.weights_language_bytes)} GiB"
    if d.parameters_vision:
        weights += f", vision tower {gib(d.weights_vision_bytes)} GiB"
    if d.weights_host_bytes:
        weights += f"; {gib(d.weights_host_bytes)} GiB kept in host RAM"
    kv = f"{d.kv_bytes_per_token:,} B/token x {d.kv_cache_tokens:,} positions"
    if d.image_positions:
        kv += f" ({r.context:,} text + {d.image_positions:,} image)"
    if r.batch > 1:
        kv += f" x {r.batch}"
    if d.kv_capacity_tokens is not None:
        kv += f"; holds {d.kv_capacity_tokens:,} tokens, {d.max_concurrency} sequences"
    state = f"{d.state_bytes_per_sequence:,} B/sequence x {r.batch}, independent of context"
    return {"weights": f"{weights}; {d.bits_per_weight} bits/weight", "kv_cache": kv, "state": state}


def _parts(e: VramEstimate) -> list[tuple[str, str, int]]:
    """The breakdown's parts; a model with recurrent layers shows its KV cache and recurrent state apart."""
    out = []
    for key, label in PARTS:
        n = getattr(e.breakdown, key)
        if key == "kv_cache" and e.cache is not None and e.cache.state_bytes:
            out += [(key, label, e.cache.kv_bytes), ("state", "Recurrent state", e.cache.state_bytes)]
        else:
            out.append((key, label, n))
    return out


def _title(e: VramEstimate) -> str:
    r = e.request
    parts = [e.model_name, e.quantization_label, e.runtime_label, f"{r.context:,} tokens"]
    if r.images:
        parts.append(f"{r.images} image{'s' if r.images > 1 else ''}")
    if r.batch > 1:
        parts.append(f"batch {r.batch}")
    return " · ".join(parts)


def estimate(console: Console, e: VramEstimate) -> None:
    """The breakdown as the card shows it: parts in GiB and bytes, then warnings, assumptions, fits."""
    table = Table(title=_title(e), caption="GiB = 2^30 bytes", title_justify="left")
    table.add_column("part")
    table.add_column("GiB", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("detail", overflow="fold")
    notes = _part_notes(e)
    for key, label, n in _parts(e):
        table.add_row(label, gib(n), f"{n:,}", notes.get(key, ""))
    table.add_section()
    table.add_row("[bold]Total[/]", f"[bold]{gib(e.total_bytes)}[/]", f"{e.total_bytes:,}", "")
    console.print(table)
    console.print(f"Runtime: {e.runtime_label} · KV cache {e.request.kv_cache} · {e.detail.parameters:,} parameters")
    for w in e.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    for a in e.assumptions:
        console.print(f"[dim]assumes: {a}[/]", highlight=False)
    _llamacpp(console, e)
    runs, margin = e.runs(), e.margin_bytes() or 0  # the answer's one verdict (vLLM: whether it starts)
    if e.request.gpu:
        g = e.fits[0]
        count = f" x{g.count}" if g.count > 1 else ""
        fails = "does not start" if e.vllm is not None else "does not fit"
        verdict = (f"[green]fits[/], {gib(margin)} GiB to spare" if runs
                   else f"[red]{fails}[/]: {gib(-margin)} GiB short")
        console.print(f"{g.name}{count}: {verdict}.")
    if e.vllm is not None:  # whether vLLM starts depends on each GPU's free memory, decided per GPU
        return
    fitting = [f"{f.name}{f' x{f.count}' if f.count > 1 else ''}" for f in e.fits if f.fits]
    console.print(f"Fits on: {', '.join(fitting) or 'none of the catalog GPUs'}.")


def _llamacpp(console: Console, e: VramEstimate) -> None:
    """llama.cpp: the buffers in --fit-print's form (to diff with `llama-fit-params --fit-print on`), and --fit."""
    lc = e.llamacpp
    if lc is None:
        return
    console.print(f"--fit-print form (device, model, context, compute; MiB): {' | '.join(lc.fit_print)}",
                  highlight=False)
    if lc.fit is not None:
        f = lc.fit
        console.print(f"--fit with {f.free // (1 << 20):,} MiB free: {f.status}; n_ctx {f.n_ctx:,}, -ngl "
                      f"{f.n_gpu_layers}, experts of {len(f.n_cpu_moe_layers)} layers in host memory; "
                      f"projected {f.projected // (1 << 20):,} MiB ({' | '.join(f.fit_print)})", highlight=False)
        for dv in f.devices:  # several devices: each one's share of the layer split
            console.print(f"  {dv.name}: {dv.n_layer} layers ({dv.n_part} partial"
                          f"{f', overflowing to {dv.overflow_to}' if dv.overflow_to else ''}), "
                          f"{dv.projected // (1 << 20):,} MiB of {(dv.free - dv.target) // (1 << 20):,} MiB",
                          highlight=False)
        console.print(f"reproduce without --fit: {f.command}", highlight=False, soft_wrap=True)


def fit(console: Console, model_name: str, target: Gpu, count: int, context: int,
        rows: Sequence[ContextFit]) -> None:
    """Per format: whether the request fits and the largest context that does."""
    memory = f"{gib(target.memory_bytes * count)} GiB"
    where = f"{target.name} ({memory})" if target.slug != "target" else memory
    table = Table(title=f"{model_name} in {where}{f' (x{count})' if count > 1 else ''}", title_justify="left",
                  caption="GiB = 2^30 bytes. Largest context: tokens per sequence, other settings kept; "
                          "(max): the model's own maximum.")
    for name, justify in (("format", "left"), ("runtime", "left"), (f"fits at {context:,}", "left"),
                          ("headroom GiB", "right"), ("largest context", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        best = "-" if r.max_context is None else f"{r.max_context:,}{' (max)' if r.capped else ''}"
        table.add_row(r.quantization, r.runtime,
                      "[green]yes[/]" if r.fits else "[red]no[/]", gib(r.headroom_bytes), best)
    console.print(table)


def listing(console: Console, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
            right: Sequence[str] = ()) -> None:
    """A plain table of a registry (models, GPUs, formats): slugs never wrap, numbers align right."""
    rows = list(rows)
    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        number = c in right or (bool(rows) and type(rows[0][i]) is int)
        table.add_column(c, overflow="fold", no_wrap=i == 0, justify="right" if number else "left")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v) for v in row))
    console.print(table)
