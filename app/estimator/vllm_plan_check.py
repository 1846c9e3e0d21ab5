"""Our vLLM KV plan against vLLM's own planning functions: the committed tables model_specs/vllm/plan*.json.

Each table row is one (model, max_model_len, KV budget, KV dtype, TP) that `python -m app.measure vllm-plan` ran
through vLLM's get_kv_cache_configs + get_kv_cache_capacity on the model's real per-layer KV specs. We plan the
same row (vllm_kv.plan_for) and compare the KV tokens vLLM would log: equal, over (ours more: unsafe) or under.
Used by the accuracy page; tests/test_vllm_plan.py asserts every compared row equal on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.estimator.runtimes.vllm_kv import plan_for
from app.estimator.spec import ModelSpec

# vLLM spec kinds vllm_kv models
SUPPORTED_SPECS = frozenset({"FullAttentionSpec", "SlidingWindowSpec", "ChunkedLocalAttentionSpec",
                             "MLAAttentionSpec", "MambaSpec"})


def load_tables(root: Path) -> dict[str, dict[str, Any]]:
    """The committed tables by file name (plan.json: vLLM 0.32.0; plan-0.34.json: 0.34.0)."""
    return {p.name: json.loads(p.read_text()) for p in sorted(root.glob("plan*.json"))} if root.is_dir() else {}


def ssm_dtype(model: dict[str, Any]) -> str:
    """The SSM / GDN state dtype the table's MambaSpec holds ("auto" without one): the table's worker keeps the
    mamba_ssm_cache_dtype it read before the model's config hook ran, so rows are planned with that dtype."""
    for specs in model.get("layer_specs", {}).values():
        for k in specs:
            if k["spec"]["type"] == "MambaSpec" and len(k["spec"]["dtypes"]) > 1:
                return k["spec"]["dtypes"][-1]
    return "auto"


def _kinds(model: dict[str, Any]) -> set[str]:
    return {k["spec"]["type"] for specs in model.get("layer_specs", {}).values() for k in specs}


def why_not(model: dict[str, Any], slugs: set[str]) -> str | None:
    """Why a table model is not compared (None: it is)."""
    if not any("error" not in s for s in model["settings"]):
        return "vLLM gave no plan on CPU"
    if model["name"] not in slugs:
        return "not in the catalog"
    if _kinds(model) - SUPPORTED_SPECS:
        return "KV spec kinds not modelled: " + ", ".join(sorted(_kinds(model) - SUPPORTED_SPECS))
    return None


@dataclass
class PlanModel:
    name: str
    rows: int = 0
    equal: int = 0  # KV tokens equal to vLLM's, to the token
    over: int = 0  # ours more tokens than vLLM's (unsafe)
    under: int = 0


@dataclass
class PlanTable:
    file: str
    version: str
    block_size: int
    models: list[PlanModel] = field(default_factory=list)
    not_compared: dict[str, str] = field(default_factory=dict)  # model -> why

    def total(self, attr: str) -> int:
        return sum(getattr(m, attr) for m in self.models)


def compare_table(file: str, table: dict[str, Any], models: dict[str, ModelSpec]) -> PlanTable:
    inputs = table["inputs"]
    out = PlanTable(file, table["versions"]["vllm"], inputs["block_size"])
    for model in table["models"]:
        why = why_not(model, set(models))
        if why:
            out.not_compared[model["name"]] = why
            continue
        spec, m = models[model["name"]], PlanModel(model["name"])
        for row in model["settings"]:
            if "error" in row:
                continue
            ours = plan_for(spec, vllm_version=table["versions"]["vllm"], max_model_len=row["max_model_len"],
                            kv_budget_bytes=row["kv_bytes"], block_size=inputs["block_size"],
                            kv_cache_dtype=row["kv_cache_dtype"], tensor_parallel_size=row["tp"],
                            max_num_batched_tokens=inputs["max_num_batched_tokens"],
                            mamba_ssm_cache_dtype=ssm_dtype(model))
            m.rows += 1
            m.equal += ours.tokens == row["tokens"]
            m.over += ours.tokens > row["tokens"]
            m.under += ours.tokens < row["tokens"]
        out.models.append(m)
    return out


def compare_tables(root: Path, models: dict[str, ModelSpec]) -> list[PlanTable]:
    return [compare_table(name, t, models) for name, t in load_tables(root).items()]
