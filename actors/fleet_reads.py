"""Read side for people: the fleet snapshot, history, commands and the audit log (CONTRACT §8).

Stateless request/response over storage: every method is one query and returns stored rows
(pages fetch as many as the caller asks, so the caller can ask one more than it shows to
learn whether a next page exists). Unknown vehicles raise UnknownVehicleError; an
unreachable database raises UnavailableError. History and the audit log are read through
:class:`ReadDatabases` (the read replica when one is configured); the fleet snapshot and
commands, which callers read right after writing, always come from the primary.
"""

from __future__ import annotations

from datetime import datetime

from actors.accounts import storage_guard
from actors.vehicle.registry import VehicleRegistry
from hub.contract.telemetry import TelemetryKind
from hub.errors import NotFoundError, UnknownVehicleError
from storage.database import Database, Row
from storage.queries import accounts as account_queries
from storage.queries import commands as command_queries
from storage.queries import history as history_queries
from storage.queries import vehicles as vehicle_queries
from storage.replica import ReadDatabases

HISTORY_PATHS: dict[str, TelemetryKind] = {
    "locations": "location",
    "status": "status",
    "battery": "battery",
    "errors": "error",
    "docking": "docking",
}
"""The path segment of each history endpoint and the kind of record it lists."""


class FleetReads:
    """Queries behind the read endpoints."""

    def __init__(
        self,
        *,
        database: Database,
        registry: VehicleRegistry,
        history_reads: ReadDatabases | None = None,
    ) -> None:
        self._database = database
        self._registry = registry
        self._history_reads = history_reads or ReadDatabases(database)

    async def fleet(self) -> list[Row]:
        """Every enabled vehicle with its latest state (one query)."""
        async with storage_guard():
            return await vehicle_queries.fleet_summary(self._database)

    async def vehicle(self, vehicle_id: str) -> Row:
        """One vehicle with its latest state."""
        self._registry.require(vehicle_id)
        async with storage_guard():
            row = await vehicle_queries.vehicle_summary(self._database, vehicle_id)
        if row is None:
            raise UnknownVehicleError(vehicle_id)
        return row

    async def history(
        self,
        vehicle_id: str,
        kind: TelemetryKind,
        *,
        start: datetime | None,
        end: datetime | None,
        before: datetime | None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` records newest first, older than ``before``, within start..end."""
        self._registry.require(vehicle_id)
        async with storage_guard():
            return await self._history_reads.read(
                lambda database: history_queries.history_page(
                    database,
                    kind=kind,
                    vehicle_id=vehicle_id,
                    start=start,
                    end=end,
                    before=before,
                    limit=limit,
                )
            )

    async def commands(self, vehicle_id: str, *, limit: int) -> list[Row]:
        """A vehicle's commands, newest first."""
        self._registry.require(vehicle_id)
        async with storage_guard():
            return await command_queries.vehicle_commands(
                self._database, vehicle_id, limit=limit, before=None
            )

    async def command(self, command_id: str) -> Row:
        """One command."""
        async with storage_guard():
            row = await command_queries.command(self._database, command_id)
        if row is None:
            raise NotFoundError(f"No command {command_id}")
        return row

    async def audit(self, *, limit: int, before_id: int | None) -> list[Row]:
        """Up to ``limit`` audit records, newest first, older than record ``before_id``."""
        async with storage_guard():
            return await self._history_reads.read(
                lambda database: account_queries.audit_page(
                    database, limit=limit, before_id=before_id
                )
            )
