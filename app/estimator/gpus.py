"""GPUs as data (model_specs/gpus.json) and the fit verdict for an estimate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.estimator.memo import per_list
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


# A runtime's own verdict on every GPU of a fit list (FitRows: the GPUs in order, count of each): the rows, in order
Decide = Callable[["FitRows"], list[GpuFit]]


def fits(total_for: int, fraction: float, gpus: Sequence[Gpu], count: int, first: str | None,
         decide: Decide | None = None) -> list[GpuFit]:
    """Fit verdict on every GPU in `count`s, the requested one first, then smallest memory first.

    `decide`: the runtime's own decision (vLLM: does it start) on `count` GPUs of each, from the total CUDA
    reports, as the rows (headroom of all `count` GPUs). Without it: `total_for` against `fraction` of the usable
    memory."""
    rows = _rows(tuple(gpus), first, count, decide is not None)
    if decide is not None:
        return decide(rows)
    # int(memory x count x usable_fraction x fraction) - total, per GPU
    return [GpuFit(slug, name, count, memory, (headroom := cap - total_for), headroom >= 0)
            for slug, name, memory, cap in rows.caps(fraction)]


class FitRows:
    """A fit list's fixed part, built once per GPU list: the GPUs in order and (slug, name, memory x count) of each,
    with the usable bytes x a runtime's fraction kept per fraction."""

    __slots__ = ("gpus", "count", "fixed", "_usable", "_caps")

    def __init__(self, gpus: tuple[Gpu, ...], count: int) -> None:
        self.gpus = gpus  # one tuple: what a runtime's `decide` derives from it is kept per list
        self.count = count
        self.fixed = [(g.slug, g.name, g.memory_bytes * count) for g in gpus]
        self._usable = [g.memory_bytes * count * g.usable_fraction for g in gpus]
        self._caps: dict[float, list[tuple[str, str, int, int]]] = {}

    def caps(self, fraction: float) -> list[tuple[str, str, int, int]]:
        """(slug, name, memory x count, int(usable x fraction)) per GPU (a runtime's fractions are few: its constants
        and the request's)."""
        caps = self._caps.get(fraction)
        if caps is None:
            if len(self._caps) >= 64:
                self._caps.clear()
            caps = self._caps[fraction] = [(*fixed, int(u * fraction)) for fixed, u in zip(self.fixed, self._usable,
                                                                                            strict=True)]
        return caps


@per_list
def _rows(gpus: tuple[Gpu, ...], first: str | None, count: int, cuda: bool) -> FitRows:
    """The requested GPU first, then smallest memory first; built once per GPU list. `cuda`: a CUDA runtime's list,
    without Apple's GPUs other than the one asked for (vLLM runs on CUDA/ROCm GPUs, not on Metal)."""
    ordered = sorted(gpus, key=lambda g: g.memory_bytes)
    ordered.sort(key=lambda g: g.slug != first)
    return FitRows(tuple(g for g in ordered if not (cuda and g.kind == "apple" and g.slug != first)), count)
