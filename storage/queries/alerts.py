"""Alerts: raised outside a telemetry batch, listed, acknowledged and escalated (CONTRACT §7).

Alerts raised by telemetry reports are inserted by the Writer in the report's transaction;
everything else about the ``alerts`` table is here. Acknowledging and escalating are single
conditional ``UPDATE`` statements, so two hub processes sharing the database cannot both
escalate one alert, and an alert acknowledged on one hub is not escalated by another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.database import Database, Row

COLUMNS = (
    "alert_id, vehicle_id, kind, severity, error_code, message, details, backfilled,"
    " created_at, acknowledged_by, acknowledged_at, escalated_at"
)


async def insert_alert(
    database: Database,
    *,
    alert_id: str,
    vehicle_id: str,
    kind: str,
    severity: str,
    message: str,
    error_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Store one alert."""
    await database.execute(
        "INSERT INTO alerts (alert_id, vehicle_id, kind, severity, error_code, message, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT (alert_id) DO NOTHING",
        alert_id,
        vehicle_id,
        kind,
        severity,
        error_code,
        message,
        json.dumps(details or {}),
    )


async def alert_page(
    database: Database,
    *,
    open_only: bool | None,
    vehicle_id: str | None,
    severity: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Row]:
    """Up to ``limit`` alerts, newest first, keyset-paged on ``(created_at, alert_id)``.

    ``open_only``: True → unacknowledged only, False → acknowledged only, None → all.
    ``before`` is the key of the last alert of the previous page. The id breaks ties: every
    alert of one bulk upload has the same ``created_at`` (one transaction).
    """
    before_at, before_id = before if before is not None else (None, None)
    return await database.fetch(
        f"SELECT {COLUMNS} FROM alerts"
        " WHERE ($1::bool IS NULL OR (acknowledged_at IS NULL) = $1)"
        " AND ($2::text IS NULL OR vehicle_id = $2)"
        " AND ($3::text IS NULL OR severity = $3)"
        " AND ($4::timestamptz IS NULL OR (created_at, alert_id) < ($4, $5::text))"
        " ORDER BY created_at DESC, alert_id DESC LIMIT $6",
        open_only,
        vehicle_id,
        severity,
        before_at,
        before_id,
        limit,
    )


async def alert(database: Database, alert_id: str) -> Row | None:
    """One alert, or ``None``."""
    return await database.fetchrow(f"SELECT {COLUMNS} FROM alerts WHERE alert_id = $1", alert_id)


async def acknowledge(database: Database, alert_id: str, acknowledged_by: str) -> Row | None:
    """Record who acknowledged the alert and when; ``None`` if there is no such alert.

    An alert acknowledged before keeps its first acknowledgement: the row comes back as it
    was, so acknowledging twice is harmless.
    """
    return await database.fetchrow(
        f"WITH acked AS (UPDATE alerts SET acknowledged_by = $2, acknowledged_at = now()"
        f" WHERE alert_id = $1 AND acknowledged_at IS NULL RETURNING {COLUMNS})"
        f" SELECT {COLUMNS} FROM acked"
        f" UNION ALL SELECT {COLUMNS} FROM alerts"
        " WHERE alert_id = $1 AND NOT EXISTS (SELECT 1 FROM acked)",
        alert_id,
        acknowledged_by,
    )


async def mark_escalated(database: Database, alert_id: str) -> Row | None:
    """Set ``escalated_at`` if the alert is still open and not escalated yet.

    Returns the alert with a boolean ``marked`` column: true when this call escalated it,
    false when it was acknowledged or escalated already; ``None`` if there is no such alert.
    """
    return await database.fetchrow(
        f"WITH marked AS (UPDATE alerts SET escalated_at = now()"
        " WHERE alert_id = $1 AND acknowledged_at IS NULL AND escalated_at IS NULL"
        f" RETURNING {COLUMNS})"
        f" SELECT true AS marked, {COLUMNS} FROM marked"
        f" UNION ALL SELECT false AS marked, {COLUMNS} FROM alerts"
        " WHERE alert_id = $1 AND NOT EXISTS (SELECT 1 FROM marked)",
        alert_id,
    )


async def unescalated_critical(
    database: Database, *, severity: str = "critical", limit: int = 1000
) -> list[Row]:
    """Open critical alerts not escalated yet, oldest first, with their age in seconds.

    The age (``age_seconds``) is measured on the database's clock, so a hub whose wall clock
    is off still escalates on time. Uses the partial index on unacknowledged alerts.
    """
    return await database.fetch(
        "SELECT alert_id, EXTRACT(EPOCH FROM (now() - created_at))::float8 AS age_seconds"
        " FROM alerts WHERE acknowledged_at IS NULL AND escalated_at IS NULL"
        " AND severity = $1 ORDER BY created_at LIMIT $2",
        severity,
        limit,
    )


@dataclass(frozen=True, slots=True)
class OpenCritical:
    """A stored critical alert nobody has acknowledged and that was not escalated yet."""

    alert_id: str
    age_seconds: float


class DatabaseAlertStore:
    """The AlertService's store (``actors.alerts.service.AlertStore``) on PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def page(
        self,
        *,
        open_only: bool | None,
        vehicle_id: str | None,
        severity: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Row]:
        """See ``actors.alerts.service.AlertStore``."""
        return await alert_page(
            self._database,
            open_only=open_only,
            vehicle_id=vehicle_id,
            severity=severity,
            before=before,
            limit=limit,
        )

    async def acknowledge(self, alert_id: str, acknowledged_by: str) -> Row | None:
        """See ``actors.alerts.service.AlertStore``."""
        return await acknowledge(self._database, alert_id, acknowledged_by)

    async def mark_escalated(self, alert_id: str) -> Row | None:
        """See ``actors.alerts.service.AlertStore``."""
        return await mark_escalated(self._database, alert_id)

    async def unescalated_critical(self) -> list[OpenCritical]:
        """See ``actors.alerts.service.AlertStore``."""
        rows = await unescalated_critical(self._database)
        return [OpenCritical(row["alert_id"], float(row["age_seconds"])) for row in rows]
