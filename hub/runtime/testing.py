"""Helpers for testing actors: run a supervisor around a test body, wait for virtual time.

Like ``trio.testing``, these are public so that actor tests (VehicleActor, SessionActor…) do
not each reinvent them::

    async def test_status_round_trip(autojump_clock: trio.testing.MockClock) -> None:
        with trio.fail_after(10):
            async with open_supervisor() as supervisor:
                vehicle = await supervisor.start_child("vehicle", "v1", make_vehicle)
                assert await vehicle.ask(GetStatus) == ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from hub.runtime.policy import RestartPolicy
from hub.runtime.registry import Registry
from hub.runtime.supervisor import Supervisor


@asynccontextmanager
async def open_supervisor(policy: RestartPolicy | None = None) -> AsyncIterator[Supervisor]:
    """Run a :class:`Supervisor` for the body of the ``async with``, then stop all its children.

    An escalation cancels the body and comes out of the ``async with`` inside an
    ``ExceptionGroup`` (the nursery's); to assert on :class:`EscalationError` itself, await
    ``Supervisor.run()`` directly instead.
    """
    supervisor = Supervisor(policy, name="test supervisor")
    async with trio.open_nursery() as supervisor_nursery:
        await supervisor_nursery.start(supervisor.run)
        yield supervisor
        supervisor_nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_registry(policy: RestartPolicy | None = None) -> AsyncIterator[Registry]:
    """Like :func:`open_supervisor`, yielding a :class:`Registry` over the new supervisor."""
    async with open_supervisor(policy) as supervisor:
        yield Registry(supervisor)
