"""The ``battery_health`` row of each vehicle: charge-cycle and resting-voltage accumulators."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.database import Database, Row


async def load(database: Database, vehicle_id: str) -> Row | None:
    """A vehicle's stored accumulators (``resting_voltage_samples`` is JSON text), or None."""
    return await database.fetchrow(
        "SELECT vehicle_id, cycle_count, last_charging, last_soc, discharge_accumulated_percent,"
        " resting_voltage_samples, updated_at FROM battery_health WHERE vehicle_id = $1",
        vehicle_id,
    )


async def save(
    database: Database,
    *,
    vehicle_id: str,
    cycle_count: int,
    last_charging: bool | None,
    last_soc: float | None,
    discharge_accumulated_percent: float,
    resting_voltage_samples: list[dict[str, Any]],
    updated_at: datetime,
) -> bool:
    """Create or replace a vehicle's row; False (nothing written) if the stored row already
    counts a newer reading, so an older copy of the state never overwrites a newer one.
    """
    status = await database.execute(
        "INSERT INTO battery_health (vehicle_id, cycle_count, last_charging, last_soc,"
        " discharge_accumulated_percent, resting_voltage_samples, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
        " ON CONFLICT (vehicle_id) DO UPDATE SET cycle_count = EXCLUDED.cycle_count,"
        " last_charging = EXCLUDED.last_charging, last_soc = EXCLUDED.last_soc,"
        " discharge_accumulated_percent = EXCLUDED.discharge_accumulated_percent,"
        " resting_voltage_samples = EXCLUDED.resting_voltage_samples,"
        " updated_at = EXCLUDED.updated_at"
        " WHERE battery_health.updated_at <= EXCLUDED.updated_at",
        vehicle_id,
        cycle_count,
        last_charging,
        last_soc,
        discharge_accumulated_percent,
        json.dumps(resting_voltage_samples),
        updated_at,
    )
    return status.endswith(" 1")
