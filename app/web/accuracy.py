"""The accuracy page's data: every committed measurement beside our estimate and a card-trusting one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.catalog import SPECS_DIR, Catalog
from app.estimator.llamacpp_check import check_grid, grid_specs, load_grid
from app.estimator.measurements import Comparison, MeasurementFile, card_naive_total, compare, summary
from app.estimator.runtimes.transformers import eager_reason  # traced peaks
from app.estimator.traces import TraceComparison, TraceFile, compare_trace, load_traces
from app.estimator.vllm_plan_check import PlanModel, PlanTable, compare_tables
from app.logs import LogReport, check_log

MEASUREMENTS_DIR = SPECS_DIR / "measurements"
# The GLM-4V card's own numbers (model_specs/models/glm-4v-9b.json, card): 9B parameters, 40 layers,
# 32 KV heads ("Multi-Head Attention"), head dim 4096 / 32.
CARD_NAIVE = {"glm-4v-9b": {"params": 9_000_000_000, "layers": 40, "kv_heads": 32, "head_dim": 128}}


@dataclass(frozen=True)
class Row:
    comparison: Comparison
    card_naive: int | None

    @property
    def card_error(self) -> float | None:
        if self.card_naive is None:
            return None
        return (self.card_naive - self.comparison.case.device_used_bytes) / self.comparison.case.device_used_bytes


@dataclass
class RunReport:
    path: str
    run: MeasurementFile
    rows: list[Row] = field(default_factory=list)

    @property
    def total_error(self) -> tuple[float, float]:
        return summary([r.comparison.total_error for r in self.rows])


def load_measurements(root: Path = MEASUREMENTS_DIR) -> list[tuple[Path, MeasurementFile]]:
    return [(p, MeasurementFile.model_validate_json(p.read_bytes())) for p in sorted(root.glob("*.json"))]


def accuracy_report(catalog: Catalog) -> list[RunReport]:
    reports = []
    for path, run in load_measurements(catalog.root / "measurements"):
        report = RunReport(path.name, run)
        for case in run.cases:
            if case.model not in catalog.models:
                continue
            naive = CARD_NAIVE.get(case.model)
            report.rows.append(Row(compare(catalog.models[case.model], case),
                                   card_naive_total(case, **naive) if naive else None))
        reports.append(report)
    return reports


# --- traced transformers peaks: model_specs/traces/*.json beside the transformers estimate ---
@dataclass
class TracedModel:
    slug: str
    name: str
    file: TraceFile
    rows: list[TraceComparison]
    eager_reason: str | None

    @property
    def error(self) -> tuple[float, float]:
        return summary([r.error for r in self.rows])


@dataclass
class TraceReport:
    models: list[TracedModel]
    not_traced: dict[str, list[str]]  # reason -> what it applies to (models, or model ctx x batch rows)

    @property
    def rows(self) -> list[TraceComparison]:
        return [r for m in self.models for r in m.rows]

    @property
    def under_estimated(self) -> int:
        return sum(r.error < 0 for r in self.rows)

    @property
    def worst(self) -> float:
        return min((r.error for r in self.rows), default=0.0)


def trace_report(catalog: Catalog) -> TraceReport:
    models, skipped = [], {}
    for f in load_traces(catalog.root / "traces"):
        spec = catalog.models.get(f.model)
        if spec is None:
            continue
        for n in f.not_traced:
            what = spec.name if n.context is None else f"{spec.name} {n.context:,} tokens x{n.batch}"
            skipped.setdefault(n.reason, []).append(what)
        if f.rows:
            models.append(TracedModel(f.model, spec.name, f, [compare_trace(spec, r) for r in f.rows],
                                      eager_reason(spec)))
    return TraceReport(models, skipped)
# --- llama.cpp grid: real llama.cpp loads of header-exact GGUF files (model_specs/llamacpp) ---
@dataclass(frozen=True)
class LlamaCppAccuracy:
    """The committed llama.cpp grid beside our estimate of each load."""

    checks: list[Any]
    versions: dict[str, str]
    measured_at: str
    machine: dict[str, Any]

    @property
    def exact_share(self) -> float:
        kinds = ("model", "kv", "output")
        return sum(all(c.exact(k) for k in kinds) for c in self.checks) / max(len(self.checks), 1)

    @property
    def compute_error(self) -> tuple[float, float]:
        return summary([c.compute_error for c in self.checks]) if self.checks else (0.0, 0.0)

    @property
    def compute_under_share(self) -> float:
        return sum(c.compute_error < 0 for c in self.checks) / max(len(self.checks), 1)


_LLAMACPP: dict[tuple[int, float], LlamaCppAccuracy] = {}


def llamacpp_accuracy(catalog: Catalog) -> LlamaCppAccuracy:
    """The grid compared once per catalog and grid file (a few hundred estimates)."""
    path = catalog.root / "llamacpp" / "grid.json"
    key = (id(catalog), path.stat().st_mtime if path.exists() else 0.0)
    if key not in _LLAMACPP:
        _LLAMACPP[key] = _llamacpp_accuracy(catalog)
    return _LLAMACPP[key]


def _llamacpp_accuracy(catalog: Catalog) -> LlamaCppAccuracy:
    root = catalog.root / "llamacpp"
    grid = load_grid(root / "grid.json")
    models = grid_specs(root / "specs", catalog.models)
    return LlamaCppAccuracy(check_grid(grid, models), grid.get("versions", {}), grid.get("measured_at", ""),
                            grid.get("machine", {}))


# --- vLLM's KV-cache plan: model_specs/vllm/plan*.json (vLLM's own planning functions) beside ours ---
@dataclass(frozen=True)
class PlanAccuracy:
    tables: list[PlanTable]  # oldest release first
    rows: list[tuple[str, list[PlanModel | None]]]  # model -> its summary per table (None: not compared there)
    not_compared: dict[str, str]  # model -> why, over all tables (a model compared in one table is not listed)


_PLANS: dict[tuple[int, tuple[float, ...]], PlanAccuracy] = {}


def vllm_plan_accuracy(catalog: Catalog) -> PlanAccuracy:
    """The committed tables compared once per catalog and table files (about a thousand plans, a fraction of a
    second)."""
    root = catalog.root / "vllm"
    key = (id(catalog), tuple(p.stat().st_mtime for p in sorted(root.glob("plan*.json"))))
    if key not in _PLANS:
        tables = sorted(compare_tables(root, catalog.models),
                        key=lambda t: tuple(int(x) for x in t.version.split(".")))
        names = sorted({m.name for t in tables for m in t.models})
        rows = [(n, [next((m for m in t.models if m.name == n), None) for t in tables]) for n in names]
        why = {n: w for t in tables for n, w in t.not_compared.items() if n not in names}
        _PLANS[key] = PlanAccuracy(tables, rows, dict(sorted(why.items())))
    return _PLANS[key]


# --- field logs ---
# Public startup logs committed as test fixtures (each with a .source.json naming its URL), parsed and
# compared with our estimate for the same settings every time the page is built.
LOG_CASES_DIR = SPECS_DIR.parent / "tests" / "fixtures" / "logs"


@dataclass(frozen=True)
class LogCase:
    name: str
    source: str
    case: str | None  # field-case id (L1..L4, V1..V4, G12, G13) when the log is one
    report: LogReport

    @property
    def backend(self) -> str | None:
        """The llama.cpp backend the log ran on (from its device names), or None."""
        return (self.report.request or {}).get("backend")


def log_cases(catalog: Catalog, root: Path = LOG_CASES_DIR) -> list[LogCase]:
    """Every committed log with its term-by-term comparison (empty where the fixtures are not deployed)."""
    cases = []
    for path in sorted(root.glob("*.log")) if root.is_dir() else []:
        side = json.loads(path.with_suffix(".source.json").read_text())
        # the sidecar may name what the excerpt does not print (the model its source is about)
        report = check_log(path.read_text(), catalog, side.get("overrides"))
        cases.append(LogCase(path.stem, side["source"], side.get("case"), report))
    return cases


# Field cases of shared/reference/field-cases-2026.md are numbered G01, G02, ...
FIELD_CASES_2026 = "G"


def cases_under(cases: list[LogCase]) -> tuple[int, int]:
    """(cases with at least one term on the unsafe side, cases with at least one term compared)."""
    compared = [c for c in cases if any(t.unsafe is not None for t in c.report.terms)]
    return sum(any(t.unsafe for t in c.report.terms) for c in compared), len(compared)


def field_2026(cases: list[LogCase]) -> list[LogCase]:
    return [c for c in cases if (c.case or "").startswith(FIELD_CASES_2026)]


def under_share_by_backend(cases: list[LogCase]) -> dict[str, tuple[int, int]]:
    """under_share per llama.cpp backend (cases whose devices name one)."""
    names = sorted({c.backend for c in cases if c.backend})
    return {b: under_share([c for c in cases if c.backend == b]) for b in names}


def under_share(cases: list[LogCase]) -> tuple[int, int]:
    """(terms where we err on the unsafe side, terms compared) over all committed logs: memory used
    under-estimated, or capacity (KV budget, tokens, concurrency) over-estimated."""
    compared = [t for c in cases for t in c.report.terms if t.unsafe is not None]
    return sum(t.unsafe for t in compared), len(compared)
