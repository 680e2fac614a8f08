"""Commands, their status history and the missions dispatches create."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.database import Database, Row

_COLUMNS = (
    "command_id, vehicle_id, type, payload, status, priority, sender, created_at, updated_at,"
    " sent_at, acked_at, attempts, ack, queue_position"
)


async def insert_command(
    database: Database,
    *,
    command_id: str,
    vehicle_id: str,
    command_type: str,
    payload: dict[str, Any],
    status: str,
    priority: str,
    sender: str | None,
    created_at: datetime,
    queue_position: int | None,
) -> None:
    """Record a new command; raises UniqueViolationError if the id was used before."""
    await database.execute(
        "INSERT INTO commands (command_id, vehicle_id, type, payload, status, priority, sender,"
        " created_at, updated_at, queue_position)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $8, $9)",
        command_id,
        vehicle_id,
        command_type,
        json.dumps(payload),
        status,
        priority,
        sender,
        created_at,
        queue_position,
    )


async def set_status(
    database: Database,
    command_ids: list[str],
    status: str,
    *,
    attempts: int | None = None,
    ack: dict[str, Any] | None = None,
    sent: bool = False,
    payload: dict[str, Any] | None = None,
    sent_at: datetime | None = None,
) -> None:
    """Move commands to ``status``; record the ack, the send count and times as given
    (``sent``: sent now; ``sent_at``: sent then). A command the vehicle has answered never
    goes back to ``queued`` or ``sent``: a hub that queued it while another hub delivered it
    may write its ``queued`` after the answer."""
    await database.execute(
        "UPDATE commands SET status = $2, updated_at = now(),"
        " attempts = COALESCE($3, attempts),"
        " ack = COALESCE($4::jsonb, ack),"
        " acked_at = CASE WHEN $4::jsonb IS NULL THEN acked_at ELSE now() END,"
        " sent_at = CASE WHEN $7::timestamptz IS NOT NULL THEN $7"
        " WHEN $5 THEN now() ELSE sent_at END,"
        " payload = COALESCE($6::jsonb, payload),"
        " queue_position = CASE WHEN $2 = 'queued' THEN queue_position ELSE NULL END"
        " WHERE command_id = ANY($1::text[])"
        " AND NOT ($2 IN ('queued', 'sent') AND status IN ("
        "'accepted', 'rejected', 'executed', 'applied', 'timeout', 'dropped', 'expired'))",
        command_ids,
        status,
        attempts,
        None if ack is None else json.dumps(ack),
        sent,
        None if payload is None else json.dumps(payload),
        sent_at,
    )


async def queued_commands(database: Database, vehicle_id: str) -> list[Row]:
    """A vehicle's queued commands in delivery order (after a hub restart)."""
    return await database.fetch(
        f"SELECT {_COLUMNS} FROM commands WHERE vehicle_id = $1 AND status IN ('queued', 'sent')"
        " ORDER BY queue_position NULLS FIRST, created_at",
        vehicle_id,
    )


async def vehicles_with_queued_commands(database: Database) -> list[str]:
    """Vehicles that have commands waiting (their actors are started at hub start)."""
    rows = await database.fetch(
        "SELECT DISTINCT vehicle_id FROM commands WHERE status IN ('queued', 'sent')"
    )
    return [row["vehicle_id"] for row in rows]


async def command(database: Database, command_id: str) -> Row | None:
    """One command with its status."""
    return await database.fetchrow(
        f"SELECT {_COLUMNS} FROM commands WHERE command_id = $1", command_id
    )


async def vehicle_commands(
    database: Database, vehicle_id: str, *, limit: int, before: datetime | None
) -> list[Row]:
    """A vehicle's commands, newest first, keyset-paged on creation time."""
    return await database.fetch(
        f"SELECT {_COLUMNS} FROM commands WHERE vehicle_id = $1"
        " AND ($2::timestamptz IS NULL OR created_at < $2)"
        " ORDER BY created_at DESC LIMIT $3",
        vehicle_id,
        before,
        limit,
    )


async def upsert_mission(
    database: Database,
    *,
    mission_id: str,
    vehicle_id: str,
    status: str,
    priority: str,
    pickup: dict[str, Any],
    destination: dict[str, Any],
    scheduled_time: datetime | None,
) -> None:
    """Create or update the mission a dispatch describes."""
    await database.execute(
        "INSERT INTO missions (mission_id, vehicle_id, status, priority, pickup, destination,"
        " scheduled_time) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)"
        " ON CONFLICT (mission_id) DO UPDATE SET vehicle_id = EXCLUDED.vehicle_id,"
        " status = EXCLUDED.status, priority = EXCLUDED.priority, pickup = EXCLUDED.pickup,"
        " destination = EXCLUDED.destination, scheduled_time = EXCLUDED.scheduled_time,"
        " updated_at = now()",
        mission_id,
        vehicle_id,
        status,
        priority,
        json.dumps(pickup),
        json.dumps(destination),
        scheduled_time,
    )


async def set_mission_status(database: Database, mission_id: str, status: str) -> None:
    """Follow a mission's life: dispatched, accepted, rejected, cancelled, completed…"""
    await database.execute(
        "UPDATE missions SET status = $2, updated_at = now(),"
        " start_time = CASE WHEN $2 = 'in_progress' AND start_time IS NULL THEN now()"
        " ELSE start_time END,"
        " end_time = CASE WHEN $2 IN ('completed', 'cancelled', 'rejected', 'failed')"
        " THEN now() ELSE end_time END WHERE mission_id = $1",
        mission_id,
        status,
    )


async def missions(database: Database, *, limit: int, vehicle_id: str | None) -> list[Row]:
    """Missions, newest first."""
    return await database.fetch(
        "SELECT mission_id, vehicle_id, reservation_id, status, priority, pickup, destination,"
        " scheduled_time, start_time, end_time, created_at, updated_at FROM missions"
        " WHERE ($1::text IS NULL OR vehicle_id = $1) ORDER BY created_at DESC LIMIT $2",
        vehicle_id,
        limit,
    )
