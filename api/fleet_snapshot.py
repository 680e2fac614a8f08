"""The snapshot a session's ``subscribed`` answer carries (CONTRACT §6.2): stored rows from
the fleet reads, ``connected`` from the Router, which hears every vehicle's connection events.

Snapshots of the whole fleet are shared (:class:`~hub.shared_read.SharedRead`): sessions that
subscribe to ``*`` at the same time get one snapshot, read after each of them subscribed.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors.router.sink import RouterSink
from api.bodies.reads import vehicle_summary
from hub.errors import UnknownVehicleError
from hub.shared_read import SharedRead
from storage.database import Row


class SnapshotReads(Protocol):
    """The part of ``FleetReads`` the ``subscribed`` snapshot needs."""

    async def fleet(self) -> list[Row]:
        """Every enabled vehicle with its latest state (one query)."""
        ...

    async def vehicle(self, vehicle_id: str) -> Row:
        """One vehicle's latest state; UnknownVehicleError if it is not registered."""
        ...


class FleetSnapshots:
    """A hub's :class:`~actors.session.actor.Snapshot`: the rows of the vehicles asked for."""

    def __init__(self, reads: SnapshotReads, router: RouterSink) -> None:
        self._reads = reads
        self._router = router
        self.whole_fleet = SharedRead(self._read_whole_fleet)

    async def __call__(self, vehicle_ids: list[str] | None) -> list[dict[str, Any]]:
        """The snapshot of ``vehicle_ids`` (``None``: every registered vehicle).

        Blocks for one query (two runs at most for the whole fleet, see ``SharedRead``); may
        raise ContractError (503 when the database is down). Unregistered vehicles are left
        out. The whole fleet's list is shared by the sessions that asked together: read-only.
        """
        if vehicle_ids is None:
            return await self.whole_fleet()
        if len(vehicle_ids) == 1:
            try:
                rows = [await self._reads.vehicle(vehicle_ids[0])]
            except UnknownVehicleError:
                rows = []
        else:
            wanted = set(vehicle_ids)
            rows = [row for row in await self._reads.fleet() if row["vehicle_id"] in wanted]
        return await self._summaries(rows)

    async def _read_whole_fleet(self) -> list[dict[str, Any]]:
        return await self._summaries(await self._reads.fleet())

    async def _summaries(self, rows: list[Row]) -> list[dict[str, Any]]:
        connected = await self._router.connected_vehicles([row["vehicle_id"] for row in rows])
        return [vehicle_summary(row, connected=row["vehicle_id"] in connected) for row in rows]
