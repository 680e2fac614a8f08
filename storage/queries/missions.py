"""Missions (created by dispatch commands) and reservations (TVM-DB-SCHEMA-002).

A reservation ``resv_<hex>`` is carried out by the mission ``mission_<hex>``: a dispatch using
that mission id belongs to the reservation. Reads show the link whether or not it was stored
in ``missions.reservation_id`` yet; :func:`link_reservation` stores it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.database import Database, Row

RESERVATION_PREFIX = "resv_"
MISSION_PREFIX = "mission_"

_MISSION_SELECT = f"""
SELECT m.mission_id, m.vehicle_id, COALESCE(m.reservation_id, r.reservation_id) AS reservation_id,
       m.status, m.priority, m.pickup, m.destination, m.scheduled_time, m.start_time, m.end_time,
       m.created_at, m.updated_at
FROM missions m
LEFT JOIN reservations r
  ON m.reservation_id IS NULL
 AND r.reservation_id = '{RESERVATION_PREFIX}' || substr(m.mission_id, {len(MISSION_PREFIX) + 1})
"""

_RESERVATION_COLUMNS = (
    "r.reservation_id, r.passenger_name, r.pickup, r.destination, r.scheduled_time, r.status,"
    " r.vehicle_id, r.created_by, r.created_at, r.updated_at,"
    " m.mission_id AS mission_id, m.status AS mission_status"
)
_MISSION_OF_RESERVATION = (
    f"LEFT JOIN missions m ON m.mission_id = '{MISSION_PREFIX}'"
    f" || substr(r.reservation_id, {len(RESERVATION_PREFIX) + 1})"
)


async def missions_page(
    database: Database,
    *,
    vehicle_id: str | None,
    status: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Row]:
    """Missions newest first (created_at, then id), keyset-paged on ``before``."""
    before_time, before_id = before if before is not None else (None, None)
    return await database.fetch(
        _MISSION_SELECT
        + " WHERE ($1::text IS NULL OR m.vehicle_id = $1) AND ($2::text IS NULL OR m.status = $2)"
        " AND ($3::timestamptz IS NULL OR (m.created_at, m.mission_id) < ($3, $4::text))"
        " ORDER BY m.created_at DESC, m.mission_id DESC LIMIT $5",
        vehicle_id,
        status,
        before_time,
        before_id,
        limit,
    )


async def mission(database: Database, mission_id: str) -> Row | None:
    """One mission."""
    return await database.fetchrow(_MISSION_SELECT + " WHERE m.mission_id = $1", mission_id)


async def link_reservation(database: Database, mission_id: str) -> str | None:
    """Store the reservation a mission carries out, if there is one; return its id."""
    value = await database.fetchval(
        "UPDATE missions m SET reservation_id = r.reservation_id, updated_at = now()"
        " FROM reservations r WHERE m.mission_id = $1 AND m.reservation_id IS NULL"
        f" AND r.reservation_id = '{RESERVATION_PREFIX}'"
        f" || substr($1, {len(MISSION_PREFIX) + 1}) RETURNING r.reservation_id",
        mission_id,
    )
    return None if value is None else str(value)


async def insert_reservation(
    database: Database,
    *,
    reservation_id: str,
    passenger_name: str,
    pickup: dict[str, Any],
    destination: dict[str, Any],
    scheduled_time: datetime,
    vehicle_id: str | None,
    created_by: str,
) -> Row:
    """Store a new pending reservation; raises UniqueViolationError if the id is taken."""
    row = await database.fetchrow(
        "WITH r AS (INSERT INTO reservations (reservation_id, passenger_name, pickup, destination,"
        " scheduled_time, vehicle_id, created_by) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7)"
        f" RETURNING *) SELECT {_RESERVATION_COLUMNS} FROM r {_MISSION_OF_RESERVATION}",
        reservation_id,
        passenger_name,
        json.dumps(pickup),
        json.dumps(destination),
        scheduled_time,
        vehicle_id,
        created_by,
    )
    assert row is not None
    return row


async def reservation(database: Database, reservation_id: str) -> Row | None:
    """One reservation with the mission carrying it out, if dispatched."""
    return await database.fetchrow(
        f"SELECT {_RESERVATION_COLUMNS} FROM reservations r {_MISSION_OF_RESERVATION}"
        " WHERE r.reservation_id = $1",
        reservation_id,
    )


async def reservations_page(
    database: Database,
    *,
    status: str | None,
    vehicle_id: str | None,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Row]:
    """Reservations by scheduled time (soonest first, then id), keyset-paged on ``after``."""
    after_time, after_id = after if after is not None else (None, None)
    return await database.fetch(
        f"SELECT {_RESERVATION_COLUMNS} FROM reservations r {_MISSION_OF_RESERVATION}"
        " WHERE ($1::text IS NULL OR r.status = $1) AND ($2::text IS NULL OR r.vehicle_id = $2)"
        " AND ($3::timestamptz IS NULL OR r.scheduled_time >= $3)"
        " AND ($4::timestamptz IS NULL OR r.scheduled_time <= $4)"
        " AND ($5::timestamptz IS NULL OR (r.scheduled_time, r.reservation_id) > ($5, $6::text))"
        " ORDER BY r.scheduled_time, r.reservation_id LIMIT $7",
        status,
        vehicle_id,
        start,
        end,
        after_time,
        after_id,
        limit,
    )


async def update_reservation(
    database: Database,
    reservation_id: str,
    *,
    expected_status: str,
    status: str,
    scheduled_time: datetime | None,
    set_vehicle: bool,
    vehicle_id: str | None,
) -> Row | None:
    """Change a reservation still in ``expected_status``; None if it is not (any more).

    ``scheduled_time`` None keeps the time; ``set_vehicle`` False keeps the vehicle.
    """
    return await database.fetchrow(
        "WITH r AS (UPDATE reservations SET status = $3,"
        " scheduled_time = COALESCE($4, scheduled_time),"
        " vehicle_id = CASE WHEN $5 THEN $6 ELSE vehicle_id END, updated_at = now()"
        " WHERE reservation_id = $1 AND status = $2 RETURNING *)"
        f" SELECT {_RESERVATION_COLUMNS} FROM r {_MISSION_OF_RESERVATION}",
        reservation_id,
        expected_status,
        status,
        scheduled_time,
        set_vehicle,
        vehicle_id,
    )
