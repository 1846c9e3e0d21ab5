"""Memoization keyed on object identity: specs are immutable and live as long as the catalog."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import wraps
from typing import Any, TypeVar

R = TypeVar("R")


def per_spec(fn: Callable[..., R]) -> Callable[..., R]:
    """Cache `fn(spec, *keys)` per spec object; pydantic models holding lists are not hashable."""
    store: dict[tuple[int, tuple[Hashable, ...]], tuple[Any, R]] = {}

    @wraps(fn)
    def wrapper(spec: Any, *keys: Hashable) -> R:
        key = (id(spec), keys)
        hit = store.get(key)
        if hit is not None and hit[0] is spec:
            return hit[1]
        value = fn(spec, *keys)
        store[key] = (spec, value)  # holding the spec keeps its id from being reused
        return value

    return wrapper
