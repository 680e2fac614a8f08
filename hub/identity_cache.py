"""A small bounded cache keyed by an object's identity: work done once per shared object.

The Router hands the same frame object to every session, so what is derived from it (its
JSON text, the WebSocket frame of that text) is worth computing once, not per session. Keys
are compared by identity, not equality, and each entry holds its key, so the identity cannot
be reused by another object while the entry lives. When full, the cache is emptied at once:
it only has to last as long as one burst of fan-out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityCache(Generic[K, V]):
    """``make(key)`` once per key object, for at most ``size`` keys at a time."""

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[int, tuple[K, V]] = {}

    def get(self, key: K, make: Callable[[K], V]) -> V:
        """The value for ``key``, made now if this object has none (never blocks)."""
        hit = self._entries.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        value = make(key)
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[id(key)] = (key, value)
        return value
