"""Retention SQL (TVM-DB-RET-*): move old telemetry into the archive tables, page and delete
old audit records.

A move is one statement per batch — ``DELETE … RETURNING`` feeding ``INSERT … SELECT … ON
CONFLICT DO NOTHING`` into the archive — so each batch is its own transaction, all or
nothing: a row leaves the live table only in the statement that puts it in the archive, and
a row the archive already holds (a resent record archived before) is simply dropped from the
live table. Batches walk one vehicle at a time along the ``(vehicle_id, "timestamp")`` primary
key, so a batch reads an index range instead of scanning the whole table.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from storage.database import Database, Row

BEGINNING = datetime(1, 1, 1, tzinfo=UTC)
"""Keyset start before any stored timestamp."""


class ArchivedTable(enum.Enum):
    """A live telemetry table that has an archive twin."""

    LOCATIONS = "vehicle_locations"
    STATUS = "vehicle_status"


_COLUMNS: dict[ArchivedTable, tuple[str, ...]] = {
    ArchivedTable.LOCATIONS: (
        "vehicle_id",
        "timestamp",
        "latitude",
        "longitude",
        "altitude",
        "heading",
        "speed",
        "accuracy",
        "received_at",
    ),
    ArchivedTable.STATUS: (
        "vehicle_id",
        "timestamp",
        "state",
        "mission_id",
        "current_waypoint",
        "passengers_onboard",
        "operational_hours",
        "progress_percent",
        "eta_seconds",
        "distance_remaining_meters",
        "error_code",
        "error_message",
        "received_at",
    ),
}

_MOVE_SQL = """
WITH batch AS (
    SELECT vehicle_id, "timestamp" FROM {table}
    WHERE vehicle_id = $1 AND "timestamp" < $2 AND "timestamp" > $3
    ORDER BY "timestamp" LIMIT $4
), moved AS (
    DELETE FROM {table} AS live USING batch
    WHERE live.vehicle_id = batch.vehicle_id AND live."timestamp" = batch."timestamp"
    RETURNING {returning}
), archived AS (
    INSERT INTO {table}_archive ({columns}) SELECT {columns} FROM moved
    ON CONFLICT (vehicle_id, "timestamp") DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved) AS moved,
       (SELECT count(*) FROM archived) AS archived,
       (SELECT max("timestamp") FROM moved) AS last_timestamp
"""


def _move_sql(table: ArchivedTable) -> str:
    columns = _COLUMNS[table]
    return _MOVE_SQL.format(
        table=table.value,
        columns=", ".join(f'"{name}"' for name in columns),
        returning=", ".join(f'live."{name}"' for name in columns),
    )


_MOVE_STATEMENTS = {table: _move_sql(table) for table in ArchivedTable}


@dataclass(frozen=True, slots=True)
class MovedBatch:
    """One committed batch: rows taken out of the live table, rows new to the archive, and
    the newest timestamp taken (the keyset for the next batch), or ``None`` if none moved.
    """

    moved: int
    archived: int
    last_timestamp: datetime | None


async def archived_vehicle_ids(database: Database) -> list[str]:
    """Every vehicle id, enabled or not: telemetry of disabled vehicles ages out too."""
    rows = await database.fetch("SELECT vehicle_id FROM vehicles ORDER BY vehicle_id")
    return [row["vehicle_id"] for row in rows]


async def move_batch(
    database: Database,
    table: ArchivedTable,
    *,
    vehicle_id: str,
    older_than: datetime,
    after: datetime,
    limit: int,
) -> MovedBatch:
    """Move up to ``limit`` of one vehicle's rows with ``after < timestamp < older_than``,
    oldest first, into the archive in one transaction.
    """
    row = await database.fetchrow(_MOVE_STATEMENTS[table], vehicle_id, older_than, after, limit)
    assert row is not None
    return MovedBatch(int(row["moved"]), int(row["archived"]), row["last_timestamp"])


async def audit_page(
    database: Database, *, older_than: datetime, after_id: int, limit: int
) -> list[Row]:
    """Up to ``limit`` audit records with ``at < older_than`` and ``audit_id > after_id``,
    in id order (``details`` is the JSON text).
    """
    return await database.fetch(
        "SELECT audit_id, at, actor, actor_role, action, vehicle_id, outcome, details,"
        " request_id, source_address FROM audit_logs"
        " WHERE at < $1 AND audit_id > $2 ORDER BY audit_id LIMIT $3",
        older_than,
        after_id,
        limit,
    )


async def delete_audit(database: Database, audit_ids: Sequence[int]) -> int:
    """Delete exactly these audit records (one transaction); return how many were deleted."""
    status = await database.execute(
        "DELETE FROM audit_logs WHERE audit_id = ANY($1::bigint[])", list(audit_ids)
    )
    return int(status.rsplit(" ", 1)[-1])


async def claim_scheduled_pass(database: Database, due: datetime, claimant: str) -> bool:
    """True if this caller is the first to claim the pass due at ``due`` (and so runs it);
    False if another hub on the same database already did."""
    claimed = await database.fetchval(
        "INSERT INTO retention_runs (due, claimed_by) VALUES ($1, $2)"
        " ON CONFLICT (due) DO NOTHING RETURNING true",
        due,
        claimant,
    )
    return claimed is True
