"""Memory probes. On CUDA: torch's allocator statistics plus NVML for what torch cannot see (CUDA
context, library workspaces). On CPU (tests): the same interface, fed by counting live tensor storage."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Protocol

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class Probe(Protocol):
    def reset(self) -> None: ...
    def allocated(self) -> int: ...
    def stop(self) -> dict[str, int]: ...
    def device(self) -> dict[str, Any]: ...


class CudaProbe:
    """torch.cuda statistics per case; `device_used_bytes` is the device memory in use at the case's peak
    (NVML, sampled every 2 ms) minus what was in use before this process touched CUDA."""

    def __init__(self, index: int = 0) -> None:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self._before_process = self._used()  # read before torch creates the CUDA context
        self.index = index
        torch.cuda.init()
        self._peak = 0
        self._sampling = threading.Event()
        self._thread: threading.Thread | None = None

    def _used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def _sample(self) -> None:
        while self._sampling.is_set():
            self._peak = max(self._peak, self._used())
            time.sleep(0.002)

    def reset(self) -> None:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        self._peak = self._used()
        self._sampling.set()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def allocated(self) -> int:
        torch.cuda.synchronize()
        return int(torch.cuda.memory_allocated())

    def stop(self) -> dict[str, int]:
        torch.cuda.synchronize()
        self._peak = max(self._peak, self._used())  # reserved memory stays until empty_cache()
        self._sampling.clear()
        if self._thread is not None:
            self._thread.join()
        return {"peak_allocated_bytes": int(torch.cuda.max_memory_allocated()),
                "peak_reserved_bytes": int(torch.cuda.max_memory_reserved()),
                "device_used_bytes": self._peak - self._before_process}

    def device(self) -> dict[str, Any]:
        n = self._nvml
        name = n.nvmlDeviceGetName(self._handle)
        return {"name": name.decode() if isinstance(name, bytes) else name,
                "total_memory_bytes": int(n.nvmlDeviceGetMemoryInfo(self._handle).total),
                "driver": _text(n.nvmlSystemGetDriverVersion()), "cuda": str(torch.version.cuda),
                "used_before_process_bytes": self._before_process}


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class _LiveStorage(TorchDispatchMode):
    """Counts bytes of tensor storage alive while active, like the CUDA allocator's statistics."""

    def __init__(self, probe: CpuProbe) -> None:
        super().__init__()
        self.probe = probe

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and not t.is_meta:
                self.probe._track(t)
        return out


class CpuProbe:
    """CPU-side accounting with the CUDA probe's interface: live storage bytes of tensors created while
    a case runs, plus the model's parameters. No NVML: device_used is the peak plus a fixed context."""

    CONTEXT_BYTES = 0  # a CPU process has no CUDA context

    def __init__(self, model_bytes: int = 0) -> None:
        self.base = model_bytes
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage pointer -> [bytes, live tensors]
        self._mode: _LiveStorage | None = None

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        ptr, size = storage.data_ptr(), storage.nbytes()
        entry = self._refs.get(ptr)
        if entry is None:
            entry = self._refs[ptr] = [size, 0]
            self.live += size
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(t, self._release, ptr)

    def _release(self, ptr: int) -> None:
        entry = self._refs.get(ptr)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._refs[ptr]

    def reset(self) -> None:
        self.peak = self.live
        if self._mode is None:
            self._mode = _LiveStorage(self)
            self._mode.__enter__()

    def allocated(self) -> int:
        return self.base + self.live

    def stop(self) -> dict[str, int]:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None
        peak = self.base + self.peak
        return {"peak_allocated_bytes": peak, "peak_reserved_bytes": peak,
                "device_used_bytes": peak + self.CONTEXT_BYTES}

    def device(self) -> dict[str, Any]:
        return {"name": "cpu (CPU-side accounting)", "total_memory_bytes": 0, "driver": "none", "cuda": "none"}
