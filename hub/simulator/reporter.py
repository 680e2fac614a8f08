"""The vehicle model's outgoing side: which reports are due, and the outbox they go to.

Periodic reports follow their :class:`~hub.simulator.cadence.Cadence` on the model's elapsed
time; a status is also reported the moment the state, mission or passengers change (and the
periodic one then waits a full interval again).
"""

from __future__ import annotations

from typing import Any, Protocol

from hub.contract.telemetry import TelemetryKind, VehicleState
from hub.simulator import reports
from hub.simulator.battery import BatteryPack
from hub.simulator.cadence import Cadence
from hub.simulator.command_policy import within_operational_hours
from hub.simulator.mission import MissionRun
from hub.simulator.motion import Motion
from hub.simulator.params import VehicleParams
from hub.simulator.reports import Ack, Emission, Stamper

StatusKey = tuple[VehicleState, str | None, bool]
"""What makes a status change worth reporting at once: state, mission id, passengers."""


class VehicleView(Protocol):
    """What the reporter reads from the vehicle model."""

    state: VehicleState
    mission: MissionRun | None
    passengers_onboard: bool
    config: dict[str, Any]
    motion: Motion
    battery: BatteryPack

    @property
    def current_waypoint(self) -> str: ...

    @property
    def max_speed(self) -> float: ...


class Reporter:
    """Collects a vehicle's emissions in order; never blocks."""

    def __init__(self, vehicle: VehicleView, stamper: Stamper, params: VehicleParams) -> None:
        self.stamper = stamper
        self._vehicle = vehicle
        self._pickup_wait = params.pickup_wait_seconds
        self._location_interval = params.location_interval
        self._cadences: dict[TelemetryKind, Cadence] = {
            "location": Cadence(params.location_interval),
            "battery": Cadence(params.battery_interval),
            "status": Cadence(params.status_interval),
            "docking": Cadence(params.docking_interval),
        }
        self._last_status: StatusKey | None = None
        self._outbox: list[Emission] = []

    def due(self, kind: TelemetryKind, elapsed: float) -> bool:
        """Whether the periodic report of ``kind`` is due (and, if so, schedule the next)."""
        return self._cadences[kind].due(elapsed)

    def report(self, kind: TelemetryKind, fields: dict[str, Any], elapsed: float) -> None:
        """Add a record of ``kind`` stamped now; a status or docking report restarts its cadence."""
        if kind == "status":
            self._last_status = _status_key(fields)
        if kind in ("status", "docking"):
            self._cadences[kind].restart(elapsed)
        self._outbox.append(reports.telemetry(kind, self.stamper.next(), fields))

    def report_due(self, elapsed: float) -> None:
        """Add the periodic reports due at ``elapsed``: location, battery, status."""
        vehicle = self._vehicle
        if self.due("location", elapsed):
            self.report("location", {"location": vehicle.motion.location_fields()}, elapsed)
        if self.due("battery", elapsed):
            self.report("battery", {"battery": vehicle.battery.reading().model_dump()}, elapsed)
        if self.due("status", elapsed):
            self.report("status", self.status_fields(), elapsed)

    def sync_status(self, elapsed: float) -> None:
        """Report the status at once if the state, mission or passengers changed."""
        fields = self.status_fields()
        if _status_key(fields) != self._last_status:
            self.report("status", fields, elapsed)

    def set_location_rate(self, frequency: float) -> None:
        """Follow a configured ``telemetry_frequency``, never above the contract's 1 Hz."""
        self._cadences["location"].interval = max(1.0 / frequency, self._location_interval)

    def send_ack(self, ack: Ack) -> None:
        """Queue a late ack (a dispatch that has now been executed)."""
        self._outbox.append(ack)

    def take(self) -> list[Emission]:
        """Everything queued since the last call, oldest first."""
        emissions, self._outbox = self._outbox, []
        return emissions

    def status_fields(self) -> dict[str, Any]:
        """A status report's fields (without ``timestamp``)."""
        vehicle = self._vehicle
        mission = vehicle.mission
        fields: dict[str, Any] = {
            "state": vehicle.state,
            "mission_id": None if mission is None else mission.mission_id,
            "current_waypoint": vehicle.current_waypoint,
            "passengers_onboard": vehicle.passengers_onboard,
            "operational_hours": within_operational_hours(vehicle.config, self.stamper.now()),
        }
        if mission is not None:
            fields["details"] = mission.progress(
                vehicle.motion.position, vehicle.max_speed, self._pickup_wait
            )
        return fields


def _status_key(fields: dict[str, Any]) -> StatusKey:
    return (fields["state"], fields.get("mission_id"), bool(fields["passengers_onboard"]))
