"""GPUs as data (model_specs/gpus.json) and the fit verdict for an estimate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.estimator.schema import GpuFit


class Gpu(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    kind: Literal["consumer", "workstation", "datacenter", "apple"]
    memory_bytes: int = Field(gt=0, description="Total memory as the driver reports it (nvidia-smi; Apple: RAM), "
                              "else the spec sheet's size, as `source` says.")
    usable_fraction: float = Field(1.0, gt=0, le=1, description="Share the GPU may use (Apple: Metal working set).")
    bandwidth_gb_s: float = Field(gt=0, description="Peak memory bandwidth, GB/s.")
    source: str = Field(min_length=3)
    cuda_bytes: int | None = Field(None, gt=0, description="Total as CUDA reports it to a process (cudaMemGetInfo: "
                                   "torch.cuda.mem_get_info, vLLM's 'Free memory on device (x/y GiB)'), when a "
                                   "public log prints it.")
    cuda_source: str | None = Field(None, min_length=3, description="The log line cuda_bytes comes from.")

    @property
    def cuda_total(self) -> int:
        """What CUDA reports (vLLM's budget base): cuda_bytes, else memory_bytes."""
        return self.cuda_bytes or self.memory_bytes


_FITS = TypeAdapter(list[GpuFit])


def fits(total_for: int, fraction: float, gpus: Sequence[Gpu], count: int, first: str | None,
         decide: Callable[[int, str], tuple[bool, int]] | None = None) -> list[GpuFit]:
    """Fit verdict on every GPU in `count`s, the requested one first, then smallest memory first.

    `decide`: the runtime's own decision (vLLM: does it start) on `count` GPUs of the total CUDA reports;
    its headroom is per GPU. Without it: `total_for` against `fraction` of the usable memory."""
    ordered = _ordered(tuple(gpus), first)
    rows = []
    for g in ordered:
        if decide is not None and g.kind == "apple" and g.slug != first:
            continue  # vLLM runs on CUDA/ROCm GPUs, not on Apple's Metal
        if decide is not None:
            ok, headroom = decide(g.cuda_total * count, g.slug)
            headroom *= count
        else:
            usable = int(g.memory_bytes * count * g.usable_fraction * fraction)
            ok, headroom = total_for <= usable, usable - total_for
        rows.append({"gpu": g.slug, "name": g.name, "count": count, "memory_bytes": g.memory_bytes * count,
                     "headroom_bytes": headroom, "fits": ok})
    return _FITS.validate_python(rows)  # one validation call for the whole list keeps estimate() fast


_ORDERS: dict[tuple[tuple[int, ...], str | None], tuple[tuple[Gpu, ...], list[Gpu]]] = {}


def _ordered(gpus: tuple[Gpu, ...], first: str | None) -> list[Gpu]:
    """The requested GPU first, then smallest memory first; sorted once per GPU list (the catalog's lives as long
    as the process; GPUs are frozen models)."""
    key = (tuple(map(id, gpus)), first)
    hit = _ORDERS.get(key)
    if hit is not None:  # the entry holds those GPUs, so their ids cannot have been reused
        return hit[1]
    ordered = sorted(gpus, key=lambda g: g.memory_bytes)
    ordered.sort(key=lambda g: g.slug != first)
    if len(_ORDERS) > 256:
        _ORDERS.clear()
    _ORDERS[key] = (gpus, ordered)  # holding the GPUs keeps their ids from being reused
    return ordered
