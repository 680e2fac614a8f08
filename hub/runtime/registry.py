"""Find actors by kind and key, start them on first use, and describe them for /debug/actors.

The registry is a view over one :class:`Supervisor`: the supervisor owns the children, the
registry adds get-or-start (each actor is created once however many tasks ask for it at the
same moment) and a JSON-friendly snapshot::

    vehicle = await registry.get_or_start("vehicle", vid, lambda: VehicleActor(vid, writer))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import trio

from hub.runtime.actor import Actor
from hub.runtime.refs import ActorRef
from hub.runtime.supervisor import DEFAULT_MAILBOX_SIZE, ChildStatus, Supervisor

M = TypeVar("M")


class Registry:
    """Actors by ``(kind, key)`` under one supervisor."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        # Keys being started by a get_or_start call; later callers wait on the event.
        self._starting: dict[tuple[str, str], trio.Event] = {}

    def __repr__(self) -> str:
        return f"<Registry over {self._supervisor!r}>"

    @property
    def supervisor(self) -> Supervisor:
        """The supervisor the actors run under (``stop_child`` lives there)."""
        return self._supervisor

    async def get_or_start(
        self,
        kind: str,
        key: str,
        factory: Callable[[], Actor[M]],
        *,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    ) -> ActorRef[M]:
        """The ref of actor ``kind``/``key``, starting it from ``factory`` if there is none.

        Concurrent callers for the same key get the same ref: the first starts the actor,
        the others wait until it has started. If that start fails, the first caller gets
        the exception and one of the others tries again with its own factory. Blocks while
        the actor starts; cancellation abandons the wait (and the start, for the first
        caller). The caller promises that ``kind`` always names actors taking messages ``M``.
        """
        while True:
            starting = self._starting.get((kind, key))
            if starting is not None:
                await starting.wait()
                continue
            existing = self._supervisor.lookup(kind, key)
            if existing is not None:
                return cast(ActorRef[M], existing)
            starting = self._starting[(kind, key)] = trio.Event()
            try:
                return await self._supervisor.start_child(
                    kind, key, factory, mailbox_size=mailbox_size
                )
            finally:
                del self._starting[(kind, key)]
                starting.set()

    def lookup(self, kind: str, key: str) -> ActorRef[Any] | None:
        """The ref of actor ``kind``/``key`` if it exists (maybe still starting), else None."""
        return self._supervisor.lookup(kind, key)

    def refs(self, kind: str | None = None) -> list[ActorRef[Any]]:
        """Refs of every actor, or of one kind, sorted by kind then key."""
        return sorted(self._supervisor.refs(kind), key=lambda ref: (ref.kind, ref.key))

    def snapshot(self) -> list[dict[str, Any]]:
        """One JSON-friendly row per actor, sorted by kind then key, for ``/debug/actors``.

        Each row has ``kind``, ``key``, ``mailbox_depth``, ``mailbox_capacity``,
        ``blocked_senders``, ``restarts``, ``last_restart_at`` (trio time or None),
        ``running`` and ``last_activity`` (trio time), plus what a running actor's optional
        ``describe()`` returns (the runtime's own fields win a name clash; an exception in
        ``describe()`` shows as ``describe_error`` instead of failing the whole snapshot).
        """
        statuses = sorted(self._supervisor.children(), key=lambda s: (s.kind, s.key))
        return [_row(status) for status in statuses]


def _row(status: ChildStatus) -> dict[str, Any]:
    row: dict[str, Any] = {}
    describe = getattr(status.actor, "describe", None)
    if status.running and callable(describe):
        try:
            row.update(describe())
        except Exception as error:  # a debug page must not fail because one actor's did
            row["describe_error"] = repr(error)
    row.update(
        kind=status.kind,
        key=status.key,
        mailbox_depth=status.mailbox_depth,
        mailbox_capacity=status.mailbox_capacity,
        blocked_senders=status.blocked_senders,
        restarts=status.restarts,
        last_restart_at=status.last_restart_at,
        running=status.running,
        last_activity=status.last_activity,
    )
    return row
