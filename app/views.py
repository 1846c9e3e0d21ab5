"""What the pages show beside the breakdown: grouped format options, the VRAM table, the chart.

Every number comes from `estimate`; this module only arranges them.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.catalog import Catalog
from app.charts import Chart, memory_chart, stacked_bar
from app.estimator import FORMATS, GROUP_LABELS, VramEstimate, VramRequest, estimate
from app.estimator.memo import per_spec
from app.estimator.spec import ModelSpec
from app.urls import api_url, calculator_url, card_url

TABLE_CONTEXTS = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
TABLE_COLUMNS = [(c, f"{c // 1024}K") for c in TABLE_CONTEXTS]
CHART_FORMATS = ("bf16", "q8_0", "q4_k_m", "q2_k")
SLIDER = {"min": 1024, "max": 131072, "step": 1024}


@dataclass(frozen=True)
class Option:
    slug: str
    label: str


def format_groups() -> dict[str, list[Option]]:
    """The quantization dropdown: every format of the API under its group label."""
    groups: dict[str, list[Option]] = {label: [] for label in GROUP_LABELS.values()}
    for f in FORMATS.values():
        groups[GROUP_LABELS[f.group]].append(Option(f.slug, f.label))
    return groups


def breakdown_context(est: VramEstimate, oob: bool = False) -> dict:
    """The breakdown partial's whole context: the estimate plus presentation extras (the bar's
    geometry, the state's JSON and calculator URLs, and whether to update the slider label)."""
    return {"estimate": est, "bar": stacked_bar(est.breakdown), "api_url": api_url(est.request),
            "calculator_url": calculator_url(est.request), "oob": oob}


@dataclass(frozen=True)
class TableRow:
    slug: str
    label: str
    group: str
    totals: tuple[int, ...]


@per_spec
def vram_table(spec: ModelSpec, images: int) -> tuple[TableRow, ...]:
    """Total bytes per format and context (batch 1, each format's default runtime).

    Cached per spec and image count: the table does not depend on the rest of the page state, and the
    card re-requests it on every control change.
    """
    return tuple(
        TableRow(f.slug, f.label, GROUP_LABELS[f.group], tuple(
            estimate(spec, VramRequest(model=spec.slug, quantization=f.slug, context=c, images=images)).total_bytes
            for c in TABLE_CONTEXTS))
        for f in FORMATS.values())


def chart_for(table: tuple[TableRow, ...]) -> Chart:
    """The chart's lines are rows of the table, so both always show the same numbers."""
    return memory_chart({r.label: list(zip(TABLE_CONTEXTS, r.totals, strict=True))
                         for r in table if r.slug in CHART_FORMATS})


def card_context(spec: ModelSpec, catalog: Catalog, est: VramEstimate) -> dict:
    """Everything the card page renders around the breakdown."""
    return {
        "spec": spec,
        "family": [m for m in catalog.models.values() if m.family.startswith("GLM")],
        "groups": format_groups(),
        "slider": SLIDER,
        "contexts": TABLE_COLUMNS,
        "released": {d.field: d for d in spec.discrepancies},
        "table": (table := vram_table(spec, est.request.images)),
        "chart": chart_for(table),
        "card_url": card_url(est.request),
        **breakdown_context(est),
    }
