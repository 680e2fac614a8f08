"""What the hub knows of one vehicle's live state: plain data owned by its telemetry lane.

The last accepted state (for transition checks, CONTRACT §3), the docking phase, the battery
band (for once-per-crossing alerts) and the mission the vehicle is on. Restored from the
``vehicle_latest`` row when the vehicle's actor starts (:func:`restored_state`). No I/O,
no locks: exactly one task — the vehicle's telemetry lane — reads and changes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actors.alerts.rules import battery_band

STATE_MEMORY = 300.0
"""Seconds: a state accepted longer ago than this is forgotten (any state is then accepted)."""


@dataclass(slots=True)
class VehicleState:
    """One vehicle's live state; ``*_at`` fields without a date are trio times."""

    vehicle_id: str
    state: str | None = None
    state_timestamp: datetime | None = None
    state_accepted_at: float = 0.0
    state_before_stop: str | None = None
    mission_id: str | None = None
    docking_phase: str | None = None
    docking_timestamp: datetime | None = None
    battery_band: int | None = None
    battery_timestamp: datetime | None = None

    def known_state(self, now: float) -> str | None:
        """The last accepted state, unless none was accepted in the last 5 minutes."""
        if self.state is None or now - self.state_accepted_at > STATE_MEMORY:
            return None
        return self.state


def accepted_at(timestamp: datetime, *, wall_now: datetime, now: float) -> float:
    """The trio time at which a record with this wall-clock ``timestamp`` was current."""
    age = (wall_now - timestamp) / timedelta(seconds=1)
    return now - max(0.0, age)


def restored_state(
    vehicle_id: str, row: Mapping[str, Any] | None, *, wall_now: datetime, now: float
) -> VehicleState:
    """The state a ``vehicle_latest`` row describes (a blank one for a vehicle never seen)."""
    state = VehicleState(vehicle_id)
    if row is None:
        return state
    if row["state"] is not None and row["state_at"] is not None:
        state.state = row["state"]
        state.state_timestamp = row["state_at"]
        state.state_accepted_at = accepted_at(row["state_at"], wall_now=wall_now, now=now)
    state.mission_id = row["mission_id"]
    state.docking_phase = row["docking_phase"]
    state.docking_timestamp = row["docking_at"]
    if row["battery"] is not None:
        battery = json.loads(row["battery"])
        state.battery_band = battery_band(float(battery["soc_percent"]))
        state.battery_timestamp = row["battery_at"]
    return state
