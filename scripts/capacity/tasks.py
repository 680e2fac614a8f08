"""Small structured-concurrency helpers for the generator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import trio

Item = TypeVar("Item")


async def for_each_bounded(
    items: Sequence[Item], action: Callable[[Item], Awaitable[None]], limit: int
) -> None:
    """Run ``action(item)`` for every item, at most ``limit`` at once; blocks until all end.

    ``action`` should handle its own errors: one that escapes cancels the others.
    """
    limiter = trio.CapacityLimiter(max(1, limit))

    async def one(item: Item) -> None:
        async with limiter:
            await action(item)

    async with trio.open_nursery() as actions:
        for item in items:
            actions.start_soon(one, item)


class Outstanding:
    """How many messages await an answer; :meth:`wait_empty` wakes when none do."""

    def __init__(self) -> None:
        self._count = 0
        self._empty = trio.Event()
        self._empty.set()

    @property
    def count(self) -> int:
        """Messages still waiting."""
        return self._count

    def add(self) -> None:
        """One more message awaits an answer."""
        if self._count == 0:
            self._empty = trio.Event()
        self._count += 1

    def remove(self, amount: int = 1) -> None:
        """``amount`` messages were answered or given up."""
        self._count = max(0, self._count - amount)
        if self._count == 0:
            self._empty.set()

    async def wait_empty(self) -> None:
        """Block until no message awaits an answer (the caller bounds the wait)."""
        while self._count:
            await self._empty.wait()
