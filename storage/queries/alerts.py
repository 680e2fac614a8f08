"""Alerts raised outside a telemetry batch (command time-outs, escalations)."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database


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
