"""Typed errors of the estimator; the web layer maps them to HTTP answers in one place.

    EstimatorError
    ├── UnknownModel            -> 404
    └── InvalidRequest          -> 422 (names the field and what it allows)
        ├── UnknownChoice       (quantization, runtime, kv_cache, gpu: lists the valid slugs)
        └── OutOfRange          (images beyond what the model accepts, ...)
"""

from __future__ import annotations


class EstimatorError(Exception):
    """Base of every error the estimator raises on purpose."""


class UnknownModel(EstimatorError):
    def __init__(self, slug: str) -> None:
        super().__init__(f"unknown model {slug!r}; the catalog is at /api/models")
        self.slug = slug


class InvalidRequest(EstimatorError):
    """A request field holds a value the estimator cannot use."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class UnknownChoice(InvalidRequest):
    def __init__(self, field: str, value: str, allowed: list[str], why: str = "") -> None:
        reason = f" ({why})" if why else ""
        super().__init__(
            field, f"{field} {value!r} is not allowed{reason}; valid values: {', '.join(allowed)}"
        )
        self.value = value
        self.allowed = allowed


class OutOfRange(InvalidRequest):
    def __init__(self, field: str, value: int, low: int, high: int, why: str = "") -> None:
        reason = f" ({why})" if why else ""
        super().__init__(field, f"{field}={value} is out of range{reason}; allowed: {low} to {high}")
        self.value = value
        self.low = low
        self.high = high
