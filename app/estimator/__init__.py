"""Pure-Python GPU-memory estimator: a model spec and a request in, a breakdown in bytes out.

No web imports here (a test enforces it); the web layer, the bench and the measurement cross-check
all call `estimate`.
"""

from app.estimator.commands import command_for
from app.estimator.errors import EstimatorError, InvalidRequest, OutOfRange, UnknownChoice, UnknownModel
from app.estimator.estimate import estimate, weights_report
from app.estimator.gpus import Gpu
from app.estimator.kv_cache import KV_TYPES
from app.estimator.params import count_parameters
from app.estimator.quantization import FORMATS, GROUP_LABELS
from app.estimator.runtimes import RUNTIMES
from app.estimator.schema import Breakdown, GpuFit, VramEstimate, VramRequest, WeightsReport
from app.estimator.spec import ModelSpec

__all__ = [
    "FORMATS",
    "GROUP_LABELS",
    "KV_TYPES",
    "RUNTIMES",
    "Breakdown",
    "EstimatorError",
    "Gpu",
    "GpuFit",
    "InvalidRequest",
    "ModelSpec",
    "OutOfRange",
    "UnknownChoice",
    "UnknownModel",
    "VramEstimate",
    "VramRequest",
    "WeightsReport",
    "command_for",
    "count_parameters",
    "estimate",
    "vllm_kv_plan",
    "weights_report",
]


def __getattr__(name: str):
    if name == "vllm_kv_plan":  # vLLM's KV planner loads with the first vLLM answer, not with the estimator
        from app.estimator.runtimes.vllm_kv import plan_for

        return plan_for
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "vllm_kv_plan"})
