"""Which vehicles exist, and the live state the hub keeps for each one that reported.

Until the actor hub arrives, per-vehicle order comes from a lock per vehicle: every report
of one vehicle is checked and committed while holding it, so transition checks see the
previous accepted report. The state is restored from ``vehicle_latest`` on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import trio

from actors.alerts.rules import battery_band
from hub.clock import utc_now
from hub.errors import ContractError, not_found
from storage.database import Database
from storage.queries import vehicles as vehicle_queries

STATE_MEMORY = 300.0  # seconds: a state older than this is forgotten (CONTRACT §3)


@dataclass(slots=True)
class VehicleState:
    """What the hub knows of one vehicle right now; touched only while holding ``lock``."""

    vehicle_id: str
    lock: trio.Lock = field(default_factory=trio.Lock)
    loaded: bool = False
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


class VehicleRegistry:
    """Known vehicle ids (kept in memory, changed through this object) and their states."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._enabled: set[str] = set()
        self._states: dict[str, VehicleState] = {}

    async def load(self) -> None:
        """Read every enabled vehicle id (at start)."""
        self._enabled = await vehicle_queries.enabled_vehicle_ids(self._database)

    def is_enabled(self, vehicle_id: str) -> bool:
        """Whether the vehicle is registered and not disabled."""
        return vehicle_id in self._enabled

    def require(self, vehicle_id: str) -> None:
        """Raise 404 ``unknown_vehicle`` unless the vehicle may report."""
        if vehicle_id not in self._enabled:
            raise unknown_vehicle(vehicle_id)

    def added(self, vehicle_id: str) -> None:
        """Note a newly registered vehicle."""
        self._enabled.add(vehicle_id)

    def disabled(self, vehicle_id: str) -> None:
        """Note a disabled vehicle; its reports are refused from now on."""
        self._enabled.discard(vehicle_id)
        self._states.pop(vehicle_id, None)

    def enabled_ids(self) -> set[str]:
        """Every vehicle that may report (a copy)."""
        return set(self._enabled)

    def count(self) -> int:
        """How many vehicles may report."""
        return len(self._enabled)

    def peek(self, vehicle_id: str) -> VehicleState | None:
        """The state object if the hub holds one already (never touches the database)."""
        return self._states.get(vehicle_id)

    async def state_of(self, vehicle_id: str) -> VehicleState:
        """The vehicle's state object (restored from the database the first time).

        The caller must hold ``state.lock`` while reading or changing it.
        """
        state = self._states.get(vehicle_id)
        if state is None:
            state = self._states[vehicle_id] = VehicleState(vehicle_id)
        if not state.loaded:
            async with state.lock:
                if not state.loaded:
                    await self._restore(state)
        return state

    async def _restore(self, state: VehicleState) -> None:
        row = await vehicle_queries.latest_state(self._database, state.vehicle_id)
        state.loaded = True
        if row is None:
            return
        wall_now = utc_now()
        if row["state"] is not None and row["state_at"] is not None:
            age = (wall_now - row["state_at"]) / timedelta(seconds=1)
            state.state = row["state"]
            state.state_timestamp = row["state_at"]
            state.state_accepted_at = trio.current_time() - max(0.0, age)
        state.mission_id = row["mission_id"]
        state.docking_phase = row["docking_phase"]
        state.docking_timestamp = row["docking_at"]
        if row["battery"] is not None:
            battery = json.loads(row["battery"])
            state.battery_band = battery_band(float(battery["soc_percent"]))
            state.battery_timestamp = row["battery_at"]


def unknown_vehicle(vehicle_id: str) -> ContractError:
    """404 for a vehicle that is not registered or is disabled."""
    error = not_found("unknown_vehicle", f"Vehicle {vehicle_id} is not registered")
    error.field = "vehicle_id"
    error.received_value = vehicle_id
    return error
