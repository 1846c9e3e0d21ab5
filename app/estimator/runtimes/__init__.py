"""Runtime registry: slug -> memory model. Adding a runtime means adding a module and an entry."""

from app.estimator.runtimes import llamacpp, transformers, vllm
from app.estimator.runtimes.base import Runtime, RuntimeInput, RuntimeMemory

RUNTIMES: dict[str, Runtime] = {r.slug: r for r in (transformers.RUNTIME, llamacpp.RUNTIME, vllm.RUNTIME)}

__all__ = ["RUNTIMES", "Runtime", "RuntimeInput", "RuntimeMemory"]
