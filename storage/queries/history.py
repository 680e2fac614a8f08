"""Telemetry history, newest first, with keyset pagination on the timestamp."""

from __future__ import annotations

from datetime import datetime

from hub.contract.telemetry import TelemetryKind
from storage.database import Database, Row
from storage.telemetry_tables import TABLES


async def history_page(
    database: Database,
    *,
    kind: TelemetryKind,
    vehicle_id: str,
    start: datetime | None,
    end: datetime | None,
    before: datetime | None,
    limit: int,
) -> list[Row]:
    """Up to ``limit`` records of one vehicle with ``start <= timestamp <= end``, older than
    ``before`` when given. Uses the (vehicle_id, timestamp) primary key index.
    """
    spec = TABLES[kind]
    columns = ", ".join(f'"{name}"' for name in spec.column_names)
    return await database.fetch(
        f'SELECT "timestamp", {columns} FROM {spec.table}'
        ' WHERE vehicle_id = $1 AND ($2::timestamptz IS NULL OR "timestamp" >= $2)'
        ' AND ($3::timestamptz IS NULL OR "timestamp" <= $3)'
        ' AND ($4::timestamptz IS NULL OR "timestamp" < $4)'
        ' ORDER BY "timestamp" DESC LIMIT $5',
        vehicle_id,
        start,
        end,
        before,
        limit,
    )
