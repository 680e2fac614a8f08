"""The :class:`~actors.vehicle.ports.VehicleStore` of a running hub: PostgreSQL and the Writer.

Telemetry goes through the group-commit Writer; restores are batched across vehicles (a
reconnect storm costs a few queries, not one per vehicle); everything else is one statement
on the pool. Errors are the storage family's, untranslated: the actor decides what they mean.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from actors.alerts.rules import AlertDraft
from actors.vehicle.battery_health import BatteryHealthState, stored_samples
from actors.vehicle.ports import AuditEntry, NewCommand, Restored, StoredCommand
from storage.batching import BatchLoader
from storage.database import Database, Row
from storage.queries import accounts as account_queries
from storage.queries import alerts as alert_queries
from storage.queries import battery_health as health_queries
from storage.queries import commands as command_queries
from storage.queries import missions as mission_queries
from storage.queries import vehicles as vehicle_queries
from storage.writer import Writer, WriteRequest, WriteResult

RestoreRows = tuple[Row | None, Row | None, list[Row]]


class PostgresVehicleStore:
    """Vehicle storage over one database pool and its Writer (shared by every vehicle)."""

    def __init__(self, database: Database, writer: Writer) -> None:
        self._database = database
        self._writer = writer
        self._restores: BatchLoader[str, RestoreRows] = BatchLoader(self._restore_many)

    async def _restore_many(self, vehicle_ids: list[str]) -> dict[str, RestoreRows]:
        return await vehicle_queries.restore_rows(self._database, vehicle_ids)

    async def restore(self, vehicle_id: str) -> Restored:
        """One vehicle's stored state, read in a batch with every other vehicle starting now."""
        rows = await self._restores.load(vehicle_id)
        if rows is None:
            return Restored()
        latest, health, commands = rows
        return Restored(latest, health, tuple(_stored_command(row) for row in commands))

    async def commit(self, request: WriteRequest) -> WriteResult:
        """Through the group-commit Writer."""
        return await self._writer.write(request)

    async def alert_of_error_report(self, vehicle_id: str, timestamp: datetime) -> str | None:
        """The alert id stored with an error report."""
        return await vehicle_queries.alert_for_error(self._database, vehicle_id, timestamp)

    async def save_battery_health(self, state: BatteryHealthState) -> None:
        """Store the accumulators (an older copy never overwrites a newer row)."""
        if state.updated_at is None:
            return
        await health_queries.save(
            self._database,
            vehicle_id=state.vehicle_id,
            cycle_count=state.cycle_count,
            last_charging=state.last_charging,
            last_soc=state.last_soc,
            discharge_accumulated_percent=state.discharge_accumulated_percent,
            resting_voltage_samples=stored_samples(state),
            updated_at=state.updated_at,
        )

    async def insert_command(self, command: NewCommand) -> None:
        """The command row, and for a dispatch its mission (linked to its reservation)."""
        await command_queries.insert_command(
            self._database,
            command_id=command.command_id,
            vehicle_id=command.vehicle_id,
            command_type=command.type,
            payload=command.payload,
            status=command.status,
            priority=command.priority,
            sender=command.sender,
            created_at=command.created_at,
            queue_position=command.queue_position,
        )
        mission = command.mission
        if mission is None:
            return
        await command_queries.upsert_mission(
            self._database,
            mission_id=mission["mission_id"],
            vehicle_id=command.vehicle_id,
            status="dispatched",
            priority=command.priority,
            pickup=mission["pickup"],
            destination=mission["destination"],
            scheduled_time=mission.get("scheduled_time"),
        )
        await mission_queries.link_reservation(self._database, mission["mission_id"])

    async def set_command_status(
        self,
        command_ids: Sequence[str],
        status: str,
        *,
        sends: int | None = None,
        ack: Mapping[str, Any] | None = None,
        sent: bool = False,
        sent_at: datetime | None = None,
    ) -> None:
        """Move command rows to ``status``."""
        await command_queries.set_status(
            self._database,
            list(command_ids),
            status,
            attempts=sends,
            ack=None if ack is None else dict(ack),
            sent=sent,
            sent_at=sent_at,
        )

    async def set_mission_status(self, mission_id: str, status: str) -> None:
        """Move a mission along."""
        await command_queries.set_mission_status(self._database, mission_id, status)

    async def insert_alert(self, vehicle_id: str, alert_id: str, draft: AlertDraft) -> None:
        """Store an alert raised outside a telemetry commit."""
        await alert_queries.insert_alert(
            self._database,
            alert_id=alert_id,
            vehicle_id=vehicle_id,
            kind=draft.kind,
            severity=draft.severity,
            message=draft.message,
            error_code=draft.error_code,
        )

    async def audit(self, entry: AuditEntry) -> None:
        """One audit-log row."""
        await account_queries.write_audit(
            self._database,
            action=entry.action,
            actor=entry.actor,
            actor_role=entry.actor_role,
            vehicle_id=entry.vehicle_id,
            outcome=entry.outcome,
            details=entry.details,
            request_id=entry.request_id,
        )


def _stored_command(row: Row) -> StoredCommand:
    return StoredCommand(
        command_id=row["command_id"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        created_at=row["created_at"],
        sender=row["sender"],
        queue_position=row["queue_position"] or 0,
    )
