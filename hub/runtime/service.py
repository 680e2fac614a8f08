"""A long-lived task with no mailbox of its own (the Writer, the retention schedule) run as a
supervised actor, so a crash is logged, restarted with backoff and counted like any other.

Usage::

    await supervisor.start_child("writer", "main", lambda: ServiceActor(writer))

The service object outlives its incarnations: what it must not lose (the Writer's queue) is
kept on the object, and each restart calls its ``run`` again.
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from hub.runtime.actor import Inbox


class Service(Protocol):
    """A task that reports ``task_status.started()`` when ready and runs until cancelled."""

    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None:
        """Serve until cancelled; raising is a crash. What it reports as started is dropped."""
        ...


class ServiceActor:
    """Adapts a :class:`Service` to the actor protocol (its mailbox stays unused)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def run(self, inbox: Inbox[Any], *, task_status: trio.TaskStatus[None]) -> None:
        """Run the service; it reports started itself."""
        del inbox
        await self.service.run(task_status=task_status)

    def describe(self) -> dict[str, Any]:
        """What the service says of itself, if it can (``describe()``), for /debug/actors."""
        describe = getattr(self.service, "describe", None)
        return dict(describe()) if callable(describe) else {}
