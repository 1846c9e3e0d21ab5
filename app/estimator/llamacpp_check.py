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


@dataclass(frozen=True, repr=False)
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


# --- GPU backends (model_specs/llamacpp/grid-vulkan.json): every buffer per side, device and host ---
KINDS_GPU = ("model", "kv", "rs", "output", "compute")


@dataclass(frozen=True, repr=False)
class GpuGridCheck:
    """One row of a GPU backend's grid: llama.cpp's printed buffers and ours, per side ("gpu": the device's buffer,
    e.g. Vulkan0; "host": every host buffer, CPU_Mapped / Vulkan_Host / CPU), in MiB as printed. A dry-run row prints 0
    for the model and KV buffers: there the model figure is llama_model_size (bytes) and the KV / RS figures the
    caches' `size =` lines, both sides together ("all"); a real load splits them."""

    row: dict[str, Any]
    printed: dict[tuple[str, str], float]  # (kind, side) -> MiB; side "gpu", "host" or "all"
    ours: dict[tuple[str, str], float]

    @property
    def label(self) -> str:
        p = self.row["params"]
        offload = "all layers" if p["n_gpu_layers"] > self.row["n_layer"] else f"ngl {p['n_gpu_layers']}"
        extra = f", n_parallel {p['n_parallel']}" if p.get("n_parallel", 1) > 1 else ""
        return (f"{self.row['model']} {self.row['file_type'].upper()} {self.row['backend']} {offload} "
                f"({self.row['mode']}), n_ctx {p['n_ctx']}, FA {p['flash_attn']}, n_ubatch {p['n_ubatch']}{extra}")

    def exact(self, kind: str) -> bool:
        keys = [k for k in self.printed if k[0] == kind]
        return bool(keys) and all(self.ours[k] == self.printed[k] for k in keys)

    def under(self, side: str) -> float:
        """How much of llama.cpp's compute buffer on `side` we miss, as a share of it (0: not under)."""
        printed, ours = self.printed[("compute", side)], self.ours[("compute", side)]
        return max(printed - ours, 0) / printed if printed else 0.0


def request_for_gpu(row: dict[str, Any]) -> VramRequest:
    return request_for(row).model_copy(update={"backend": row["backend"],
                                               "n_gpu_layers": row["params"]["n_gpu_layers"]})


def _sides(printed: dict[str, float], device: str) -> tuple[float, float]:
    """(the device's buffer, every other buffer) of one kind, as llama.cpp printed them per buffer name."""
    gpu = sum(v for k, v in printed.items() if k == device)
    return round(gpu, 2), round(sum(printed.values()) - gpu, 2)


def check_gpu_row(spec: ModelSpec, row: dict[str, Any]) -> GpuGridCheck:
    est = estimate(spec, request_for_gpu(row))
    assert est.llamacpp is not None
    device = est.llamacpp.device
    ours_b = {(b.name, b.device): b.bytes for b in est.llamacpp.buffers}

    def both(kind: str) -> dict[tuple[str, str], float]:
        return {(kind, "gpu"): mib(ours_b.get((kind, "gpu"), 0)), (kind, "host"): mib(ours_b.get((kind, "host"), 0))}

    ours: dict[tuple[str, str], float] = {}
    printed: dict[tuple[str, str], float] = {}
    for kind in ("output", "compute"):
        ours |= both(kind)
        printed[(kind, "gpu")], printed[(kind, "host")] = _sides(row[f"{kind}_buffer"], device)
    if row["mode"] == "dry_run":
        printed[("model", "all")] = float(row["llama_model_size"])
        ours[("model", "all")] = float(_model_size(spec, row))
        printed[("kv", "all")], printed[("rs", "all")] = row["kv_size_mib"], row["rs_size_mib"]
        for kind in ("kv", "rs"):
            ours[(kind, "all")] = mib(ours_b.get((kind, "gpu"), 0) + ours_b.get((kind, "host"), 0))
    else:
        for kind in ("model", "kv", "rs"):
            ours |= both(kind)
            printed[(kind, "gpu")], printed[(kind, "host")] = _sides(row.get(f"{kind}_buffer", {}), device)
    return GpuGridCheck(row, printed, ours)


def check_gpu_grid(grid: dict[str, Any], specs: dict[str, ModelSpec]) -> list[GpuGridCheck]:
    """Every successful row of a GPU backend's grid whose model is in the catalog, compared."""
    return [check_gpu_row(specs[r["model"]], r) for r in grid["rows"]
            if r.get("rc") == 0 and r.get("backend") and r["model"] in specs]
