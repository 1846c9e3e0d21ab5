"""Memoization keyed on object identity: specs are immutable and live as long as the catalog."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import wraps
from typing import Any, TypeVar

R = TypeVar("R")

# id(derived spec) -> (derived, base): a per-request copy whose weights equal its base's (a vision tower sized
# for the request's image_size) is memoized as its base, so many image sizes cannot grow the caches below.
_BASES: dict[int, tuple[Any, Any]] = {}


def same_weights(derived: Any, base: Any) -> None:
    """Memoize `derived` as `base` (every per_spec function depends on the weights only)."""
    _BASES[id(derived)] = (derived, base)


def forget(derived: Any) -> None:
    hit = _BASES.get(id(derived))
    if hit is not None and hit[0] is derived:
        del _BASES[id(derived)]


def per_spec(fn: Callable[..., R] | None = None, *, bound: int | None = None) -> Any:
    """Cache `fn(spec, *keys)` per spec object; pydantic models holding lists are not hashable. `bound`: for keys
    taken from requests (not only registry names), the entries kept at most (the cache starts over past it)."""
    if fn is None:
        return lambda f: per_spec(f, bound=bound)
    store: dict[tuple[int, tuple[Hashable, ...]], tuple[Any, R]] = {}

    @wraps(fn)
    def wrapper(spec: Any, *keys: Hashable) -> R:
        alias = _BASES.get(id(spec))
        if alias is not None and alias[0] is spec:
            spec = alias[1]
        key = (id(spec), keys)
        hit = store.get(key)
        if hit is not None and hit[0] is spec:
            return hit[1]
        value = fn(spec, *keys)
        if bound is not None and len(store) >= bound:
            store.clear()
        store[key] = (spec, value)  # holding the spec keeps its id from being reused
        return value

    return wrapper


def per_list(fn: Callable[..., R]) -> Callable[..., R]:
    """Cache `fn(items, *keys)` per tuple of objects (by their ids) and keys: a GPU list lives as long as its catalog
    and its GPUs are frozen models, so what is derived from it is built once. Each entry holds its objects, so their
    ids cannot be reused while it lives; at most 256 entries (the cache starts over past it). The same tuple object
    again (a catalog's own tuple) is found by its id alone, without reading its items."""
    store: dict[tuple[tuple[int, ...], tuple[Hashable, ...]], tuple[tuple[Any, ...], R]] = {}
    by_tuple: dict[tuple[int, tuple[Hashable, ...]], tuple[tuple[Any, ...], R]] = {}

    @wraps(fn)
    def wrapper(items: tuple[Any, ...], *keys: Hashable) -> R:
        hit = by_tuple.get((id(items), keys))
        if hit is not None and hit[0] is items:
            return hit[1]
        key = (tuple(map(id, items)), keys)
        hit = store.get(key)
        if hit is not None:
            value = hit[1]
        else:
            value = fn(items, *keys)
            if len(store) >= 256:
                store.clear()
            store[key] = (items, value)
        if len(by_tuple) >= 256:
            by_tuple.clear()
        by_tuple[(id(items), keys)] = (items, value)  # holding the tuple keeps its id from being reused
        return value

    return wrapper


class ByIdentity:
    """A cache keyed by one object's identity and a few keys, for objects another cache keeps alive and never
    changes (vLLM's stages tuples): each entry holds its object, so its id cannot be reused while it lives; at most
    `bound` entries (the cache starts over past it)."""

    __slots__ = ("_store", "_bound")

    def __init__(self, bound: int = 4096) -> None:
        self._store: dict[tuple[int, tuple[Hashable, ...]], tuple[Any, Any]] = {}
        self._bound = bound

    def get(self, obj: Any, keys: tuple[Hashable, ...], build: Callable[[], R]) -> R:
        """The value kept for (obj, keys), else build()'s, kept."""
        key = (id(obj), keys)
        hit = self._store.get(key)
        if hit is None or hit[0] is not obj:
            if len(self._store) >= self._bound:
                self._store.clear()
            hit = self._store[key] = (obj, build())
        return hit[1]
