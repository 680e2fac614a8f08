"""Commands queued for a vehicle by any hub reach the hub that holds its socket.

A hub that takes a command for a vehicle whose socket it does not hold queues it in the
database (the vehicle is offline as far as that hub knows: its socket is elsewhere, or the
bus between hubs is away). Migration 0005 notifies every hub of such a row; the one holding
the socket reads the vehicle's queued commands and delivers the new ones. This is how an
emergency stop crosses hubs while Redis is away, and why a stop is never stranded on the
wrong hub.
"""

from __future__ import annotations

import trio

from actors.vehicle.directory import VehicleDirectory
from storage.vehicle_changes import (
    COMMAND_CHANNEL,
    COMMANDS_APPLICATION_NAME,
    follow_notifications,
)


class QueuedCommandFollower:
    """A supervised service holding the ``tvm_commands`` listening session of one hub."""

    def __init__(self, vehicles: VehicleDirectory, dsn: str) -> None:
        self._vehicles = vehicles
        self._dsn = dsn
        self.heard = 0
        self.rereads = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Pass on notifications until cancelled; reports started once listening (or once the
        first attempt failed: the database may be away; attempts go on every second)."""
        await follow_notifications(
            self._dsn,
            COMMAND_CHANNEL,
            COMMANDS_APPLICATION_NAME,
            changed=self._queued,
            resync=self._reread,
            task_status=task_status,
        )

    def describe(self) -> dict[str, int]:
        """Counters for /debug/actors."""
        return {"heard": self.heard, "rereads": self.rereads}

    async def _queued(self, vehicle_id: str) -> None:
        self.heard += 1
        await self._vehicles.queued_elsewhere(vehicle_id)

    async def _reread(self) -> None:
        self.rereads += 1
        await self._vehicles.reread_queued()
