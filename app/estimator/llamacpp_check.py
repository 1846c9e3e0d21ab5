"""Our llama.cpp model against real llama.cpp: the committed grid (model_specs/llamacpp/grid.json).

Each grid row is one load of a header-exact sparse GGUF by llama.cpp's CPU backend (nothing
offloaded), with the buffer sizes llama.cpp printed. We estimate the same load (n_gpu_layers=0)
and compare: model, KV, recurrent-state (RS) and output buffers must be equal at the printed precision (0.01 MiB), the
compute buffer is reported as a relative error. Used by the tests and the accuracy page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.estimator.estimate import estimate
from app.estimator.runtimes.llamacpp_buffers import catalog_tensors
from app.estimator.schema import VramRequest
from app.estimator.spec import ModelSpec

MiB = 1 << 20


def mib(n: int) -> float:
    """Bytes as llama.cpp prints them: MiB with two decimals."""
    return round(n / MiB, 2)


@dataclass(frozen=True)
class GridCheck:
    row: dict[str, Any]
    printed: dict[str, float]  # model, kv, rs, output, compute (MiB, CPU backend)
    ours: dict[str, float]
    n_ctx: tuple[int, int]  # (ours, printed)

    @property
    def label(self) -> str:
        p = self.row["params"]
        extra = "".join(f", {k} {p[k]}" for k in ("n_parallel", "cache_type_k", "cache_type_v")
                        if p.get(k) not in (None, 1, "f16"))
        unified = ", unified KV" if p.get("kv_unified") else ""
        return (f"{self.row['model']} {self.row['file_type'].upper()}, n_ctx {p['n_ctx']}, FA {p['flash_attn']}, "
                f"n_ubatch {p['n_ubatch']}{extra}{unified}")

    def exact(self, kind: str) -> bool:
        return self.ours[kind] == self.printed[kind]

    @property
    def compute_error(self) -> float:
        return (self.ours["compute"] - self.printed["compute"]) / self.printed["compute"]


def request_for(row: dict[str, Any]) -> VramRequest:
    p = row["params"]
    return VramRequest(model=row["model"], quantization=row["file_type"], runtime="llama.cpp", n_ctx=p["n_ctx"],
                       n_batch=p.get("n_batch", 2048), n_ubatch=p["n_ubatch"], n_parallel=p.get("n_parallel", 1),
                       kv_unified=p.get("kv_unified", False), flash_attention=p["flash_attn"] == "on",
                       cache_type_k=p.get("cache_type_k"), cache_type_v=p.get("cache_type_v"), n_gpu_layers=0)


def check_row(spec: ModelSpec, row: dict[str, Any]) -> GridCheck:
    """Dry-run rows print no model/KV buffer: their model figure is llama_model_size (bytes, compared to the
    byte) and their KV figure the cache's own `size =` line; real loads print the CPU_Mapped range."""
    est = estimate(spec, request_for(row))
    assert est.host is not None and est.llamacpp is not None
    if row.get("mode") == "dry_run":
        printed = {"model": float(row["llama_model_size"]), "kv": row["kv_size_mib"], "rs": row.get("rs_size_mib", 0.0)}
        ours = {"model": float(_model_size(spec, row)), "kv": mib(est.host.kv_cache)}
    else:
        printed = {"model": sum(row["model_buffer"].values()), "kv": sum(row["kv_buffer"].values()),
                   "rs": sum(row.get("rs_buffer", {}).values())}
        ours = {"model": mib(est.host.weights), "kv": mib(est.host.kv_cache)}
    ours["rs"] = mib(est.host.state)  # rows measured before the RS buffer was parsed print none: 0 on both sides
    printed |= {"output": sum(row["output_buffer"].values()), "compute": sum(row["compute_buffer"].values())}
    ours |= {"output": mib(est.host.output), "compute": mib(est.host.compute)}
    return GridCheck(row, printed, ours, (est.llamacpp.n_ctx, int(row["cparams"].get("n_ctx", 0))))


def _model_size(spec: ModelSpec, row: dict[str, Any]) -> int:
    """Every tensor's bytes as the file type stores them (what llama_model_size sums)."""
    return sum(t.nbytes for t in catalog_tensors(spec, row["file_type"]))


def grid_specs(directory: Path, catalog: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
    """The catalog plus grid-only specs (`directory`/*.json) for models the catalog does not have."""
    out = dict(catalog)
    for path in sorted(directory.glob("*.json")):
        spec = ModelSpec.model_validate_json(path.read_bytes())
        out.setdefault(spec.slug, spec)
    return out


def load_grid(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"rows": []}


def check_grid(grid: dict[str, Any], specs: dict[str, ModelSpec]) -> list[GridCheck]:
    """Every successful row whose model is in the catalog, compared."""
    return [check_row(specs[r["model"]], r) for r in grid["rows"] if r.get("rc") == 0 and r["model"] in specs]
