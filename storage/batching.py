"""Many concurrent single-key reads turned into one query for many keys.

When a thousand vehicles reconnect at once (a hub restart, a failover), each vehicle's actor
restores its state. One query each would queue a thousand calls behind the pool's
connections; :class:`BatchLoader` lets the first caller run one query for every key asked
for meanwhile, and keeps doing so while more arrive, so a storm costs a handful of queries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import trio
import trio.lowlevel

from hub.shared_read import error_for_caller

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_BATCH = 500


class _Slot(Generic[V]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: V | None = None
        self.error: BaseException | None = None


class BatchLoader(Generic[K, V]):
    """``await loader.load(key)`` — the value ``load_many`` returns for ``key`` (or None).

    ``load_many`` takes up to ``max_batch`` distinct keys and returns a mapping for those it
    found. The caller that finds no batch running runs batches until no key is waiting; its
    own cancellation does not abandon the others (each query is bounded by the database's
    call timeout). A failure of ``load_many`` is raised in every caller of that batch.
    """

    def __init__(
        self,
        load_many: Callable[[list[K]], Awaitable[dict[K, V]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._load_many = load_many
        self._max_batch = max_batch
        self._waiting: dict[K, list[_Slot[V]]] = {}
        self._running = False
        self.batches = 0

    async def load(self, key: K) -> V | None:
        """The value for ``key``; blocks while its batch runs. Raises what ``load_many`` raised."""
        slot: _Slot[V] = _Slot()
        self._waiting.setdefault(key, []).append(slot)
        if not self._running:
            self._running = True
            try:
                with trio.CancelScope(shield=True):
                    # Let the callers scheduled along with this one join its first batch.
                    await trio.lowlevel.checkpoint()
                    while self._waiting:
                        await self._run_batch()
            finally:
                self._running = False
        await slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.value

    async def _run_batch(self) -> None:
        keys = list(self._waiting)[: self._max_batch]
        slots = {key: self._waiting.pop(key) for key in keys}
        self.batches += 1
        try:
            found = await self._load_many(keys)
        except Exception as exc:
            for waiting in slots.values():
                for slot in waiting:
                    slot.error = error_for_caller(exc)
                    slot.done.set()
            return
        for key, waiting in slots.items():
            for slot in waiting:
                slot.value = found.get(key)
                slot.done.set()
