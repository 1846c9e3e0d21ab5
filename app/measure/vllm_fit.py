"""Fit the vLLM model's few free constants on the field cases V1-V4, and report every case's error,
fit cases and held-out cases apart. Prints the constants; a person moves them into
app/estimator/runtimes/vllm_profiles.py (tests/test_vllm_fit.py checks that they agree).

    python -m app.measure.vllm_fit            # constants + the table of printed vs predicted

Inputs: app/measure/vllm_cases.json (printed startup figures and the flags behind them) and, for the
architecture terms of the fit, `ARCH` below (values of each model's released config.json).
Only what the architecture cannot give is fitted:
  - the sampler's bytes per (sequence x vocab entry) beyond the lm_head output, per release range:
    activation = T x hidden x e + N x vocab x (e + extra)  ->  extra = max over the range's fit cases
    (the maximum, so no fit case is under-estimated);
  - the CUDA-graph pool a + b x layers through two cases (V1 8B, V2 70B TP2);
  - the non-torch growth with TP 2 and 4 beyond the single-GPU figure (max of V1 and V2).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from app.catalog import load_catalog
from app.estimator import EstimatorError, VramRequest, estimate
from app.estimator.schema import VllmDetail
from app.estimator.spec import ModelSpec

CASES = Path(__file__).with_name("vllm_cases.json")
GiB = 1 << 30

# Architecture terms of the fit cases (hidden_size, vocab_size, num_hidden_layers of config.json).
# tests/test_vllm_fit.py checks them against the catalog specs once those exist.
ARCH = {
    "llama-3.1-8b-instruct": (4096, 128256, 32),  # meta-llama/Llama-3.1-8B-Instruct config.json
    "llama-3.3-70b-instruct": (8192, 128256, 80),  # meta-llama/Llama-3.3-70B-Instruct config.json
    "qwen3-14b": (5120, 151936, 40),  # Qwen/Qwen3-14B config.json
    "qwen2.5-7b-instruct": (3584, 152064, 28),  # Qwen/Qwen2.5-7B-Instruct config.json
}
# Which fit cases set which constant
FITS = {
    "sampler_extra_v017": ("V1-bf16", "V1-fp16", "V1-fp32", "V1-quant-fp8", "V1-tp2", "V1-tp4", "V2-w4a16",
                           "V2-w8a8", "V2-70b-fp8-tp2", "V2-70b-fp8-tp4", "V3-0.17.0", "V3-0.18.0"),
    "sampler_extra_v015": ("V3-0.15.0", "V3-0.16.0"),
    "graph_pool": ("V1-bf16", "V2-70b-fp8-tp2"),
    "nccl_tp2_gib": ("V1-tp2", "V2-70b-fp8-tp2"),  # non-torch with TP minus V1's single-GPU 0.25 GiB
    "nccl_tp4_gib": ("V1-tp4", "V2-70b-fp8-tp4"),
}
NON_TORCH_TP1 = "V1-bf16"
PROFILED_TOKENS, PROFILED_SEQS = 8192, 1024  # the 0.19 serve defaults on an H100 (printed in the V1 log)
# Same architecture in Meta's config.json files (the instruct and 3.3 releases change weights only)
FALLBACK = {"llama-3.1-8b-instruct": "llama-3.1-8b", "llama-3.3-70b-instruct": "llama-3.1-70b"}


def load_cases() -> list[dict]:
    return json.loads(CASES.read_text())["cases"]


def _by_id(cases: list[dict]) -> dict[str, dict]:
    return {c["id"]: c for c in cases}


def sampler_extra(case: dict) -> float:
    """Bytes per logit beyond the lm_head output implied by a printed activation peak."""
    hidden, vocab, _ = ARCH[case["model"]]
    e = 4 if case["request"].get("dtype") == "float32" else 2
    act = case["printed"]["activation_gib"] * GiB
    return (act - PROFILED_TOKENS * hidden * e) / (PROFILED_SEQS * vocab) - e


def fit(cases: list[dict]) -> dict[str, float]:
    """The fitted constants, rounded as vllm_profiles.py holds them."""
    by_id = _by_id(cases)
    out = {name: round(max(sampler_extra(by_id[i]) for i in FITS[name]), 2)
           for name in ("sampler_extra_v017", "sampler_extra_v015")}
    (a_id, b_id) = FITS["graph_pool"]
    (la, ga), (lb, gb) = ((ARCH[by_id[i]["model"]][2], by_id[i]["printed"]["cuda_graph_gib"]) for i in (a_id, b_id))
    per_layer = (gb - ga) / (lb - la)
    out["graph_pool_per_layer_gib"] = round(per_layer, 6)
    out["graph_pool_base_gib"] = round(ga - per_layer * la, 4)
    base = by_id[NON_TORCH_TP1]["printed"]["non_torch_gib"]
    for name in ("nccl_tp2_gib", "nccl_tp4_gib"):
        out[name] = round(max(by_id[i]["printed"]["non_torch_gib"] for i in FITS[name]) - base, 2)
    return out


@dataclass(frozen=True)
class Row:
    case: dict
    printed: dict
    predicted: dict

    def error(self, key: str) -> float | None:
        """Relative error predicted/printed - 1 (None when either side is missing or zero)."""
        p, q = self.printed.get(key), self.predicted.get(key)
        if p in (None, 0) or q is None:
            return None
        return q / p - 1

    def under(self, key: str) -> bool | None:
        """Whether memory is under-estimated beyond the printed rounding (KV tokens: more tokens than
        printed means less memory per token was assumed)."""
        p, q = self.printed.get(key), self.predicted.get(key)
        if p is None or q is None:
            return None
        if key == "kv_tokens":
            return q > p
        half = 0.5 * 10 ** -len(repr(float(p)).split(".")[1])  # half the last printed digit
        return q < p - half


def spec_for(slug: str, catalog) -> ModelSpec | None:  # noqa: ANN001 - app.catalog.Catalog
    for s in (slug, FALLBACK.get(slug)):
        if s is not None and s in catalog.models:
            return catalog.model(s)
    return None


def _gib(b: int | None) -> float | None:
    return None if b is None else b / GiB


def predict(case: dict, spec: ModelSpec, gpus) -> VllmDetail:  # noqa: ANN001 - list[Gpu]
    e = estimate(spec, VramRequest(model=spec.slug, **case["request"]), gpus)
    assert e.vllm is not None
    return e.vllm


def figures(d: VllmDetail) -> dict:
    return {"weights_gib": _gib(d.weights_bytes), "activation_gib": _gib(d.activation_peak_bytes),
            "non_torch_gib": _gib(d.non_torch_bytes), "kv_gib": _gib(d.kv_budget_bytes), "kv_tokens": d.kv_tokens,
            "max_concurrency": d.max_concurrency, "cuda_graph_gib": _gib(d.cuda_graph_bytes),
            "cuda_context_gib": _gib(d.cuda_context_bytes), "starts": d.starts}


def _rows(case: dict, d: VllmDetail) -> list[Row]:
    rows = [Row(case, case["printed"], figures(d))]
    for p in case.get("printed_stages", []):
        s = d.stages[p["index"]]
        rows.append(Row({**case, "id": f"{case['id']} stage {s.index}"}, p, {
            "weights_gib": _gib(s.weights_bytes), "activation_gib": _gib(s.activation_peak_bytes),
            "non_torch_gib": _gib(s.non_torch_bytes), "kv_gib": _gib(s.kv_budget_bytes)}))
    return rows


def evaluate(cases: list[dict]) -> tuple[list[Row], list[dict]]:
    """(rows for cases whose model is in the catalog, cases skipped for want of a spec)."""
    catalog = load_catalog()
    rows, skipped = [], []
    for c in cases:
        spec = spec_for(c["model"], catalog)
        if spec is None:
            skipped.append(c)
            continue
        try:
            rows += _rows(c, predict(c, spec, catalog.gpus))
        except EstimatorError as exc:  # a case the estimator refuses is reported, not hidden
            rows.append(Row(c, c["printed"], {"error": str(exc)}))
    return rows, skipped


KEYS = ("weights_gib", "activation_gib", "non_torch_gib", "kv_tokens")


def under_share(rows: list[Row], key: str) -> tuple[int, int]:
    """(rows that under-estimate memory on `key`, rows compared)."""
    flags = [f for f in (r.under(key) for r in rows) if f is not None]
    return sum(flags), len(flags)


def _cell(r: Row, k: str) -> str:
    p, q, err = r.printed.get(k), r.predicted.get(k), r.error(k)
    shown = q if q is None else round(q, 2)
    return f"{p!s:>8} {shown!s:>8} {'' if err is None else f'{err:+.1%}':>6}{'<' if r.under(k) else ' '}"


def report(rows: list[Row], skipped: list[dict]) -> str:
    """Printed vs predicted per case ('<': under-estimates memory), fit and held-out apart."""
    lines = []
    for group in ("fit", "held-out"):
        rs = [r for r in rows if r.case["group"] == group]
        missing = sorted({c["model"] for c in skipped if c["group"] == group})
        lines.append(f"\n== {group}: {len(rs)} rows; no spec yet for: {', '.join(missing) or '-'}")
        lines.append(f"{'case':44} " + " ".join(f"{k:>25}" for k in KEYS))
        for r in rs:
            extra = f"  {r.predicted['error']}" if "error" in r.predicted else ""
            lines.append(f"{r.case['id'][:44]:44} " + " ".join(_cell(r, k) for k in KEYS) + extra)
        lines += [f"  {k}: under-estimates memory in {under_share(rs, k)[0]}/{under_share(rs, k)[1]}" for k in KEYS]
    return "\n".join(lines)


def main() -> int:
    cases = load_cases()
    print("fitted constants:", json.dumps(fit(cases), indent=1))
    print(report(*evaluate(cases)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
