"""A simulated vehicle with no I/O: position, state, battery, mission progress and reports.

:meth:`VehicleModel.step` advances it by ``dt`` seconds and returns what it would send
(telemetry records and late command acks); :meth:`VehicleModel.on_command` answers a command
at once. Both are plain methods, so tests drive a vehicle without sockets or a clock. Time is
only ``dt``; the wall clock is read through the :class:`~hub.simulator.reports.Stamper`, and
only for what a timestamp says.

Behaviour between commands: an idle vehicle waits a while, then drives the next leg of its
route (``navigating``); under ``charge_below`` soc it drives home and docks on its charger
(``docking`` → ``charging``) until ``charged_at``. A dispatch takes it to the pickup and the
destination, docking at each where the action asks for it; a critical fault holds it in
``error`` for a while. Every state path follows the hub's transition table (CONTRACT §3).
"""

from __future__ import annotations

import random
from typing import Any, Literal

from hub.contract.commands import AnyCommand
from hub.contract.telemetry import TelemetryKind, VehicleState
from hub.simulator import command_policy, reports
from hub.simulator.battery import BatteryPack
from hub.simulator.docking import APPROACH_SPEED, Docking
from hub.simulator.faults import FaultSource
from hub.simulator.geo import Waypoint
from hub.simulator.mission import MissionRun
from hub.simulator.motion import Motion
from hub.simulator.params import VehicleParams
from hub.simulator.reporter import Reporter
from hub.simulator.reports import Ack, Emission, Stamper

Activity = Literal["idle", "travel", "dock", "wait", "charge", "fault", "stopped"]
Purpose = Literal["patrol", "charger", "pickup", "destination"]


class VehicleModel:
    """One vehicle's behaviour; every method returns at once and never blocks."""

    def __init__(
        self,
        vehicle_id: str,
        *,
        home: Waypoint,
        route: list[Waypoint],
        rng: random.Random,
        stamper: Stamper,
        params: VehicleParams | None = None,
        soc_percent: float | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.params = params or VehicleParams()
        self.home = home
        self.route = route
        self.stamper = stamper
        self.motion = Motion(home.point, rng)
        self.state: VehicleState = "idle"
        self.activity: Activity = "idle"
        self.mission: MissionRun | None = None
        self.passengers_onboard = False
        self.battery = BatteryPack(
            soc_percent=rng.uniform(40.0, 100.0) if soc_percent is None else soc_percent,
            health_percent=rng.uniform(85.0, 99.0),
            params=self.params.battery,
        )
        self.config: dict[str, Any] = {"max_speed": self.params.cruise_speed}
        self.marker_id = rng.randrange(1000)
        self._rng = rng
        self._timer = rng.uniform(*self.params.idle_seconds)
        self._purpose: Purpose = "patrol"
        self._docking: Docking | None = None
        self._stopped_from: tuple[VehicleState, Activity] | None = None
        self._waypoint = home.name
        self._route_index = 0
        self._faults = FaultSource(rng, self.params.error_rate_per_minute)
        self._elapsed = 0.0
        self._reporter = Reporter(self, stamper, self.params)

    # --- entry points -----------------------------------------------------------------------

    def step(self, dt: float) -> list[Emission]:
        """Advance ``dt`` seconds; return the records and acks produced, oldest first.

        ``step(0)`` first thing reports location, battery and status (all due at time 0).
        """
        self._elapsed += dt
        self._advance(dt)
        self.battery.advance(dt, speed=self.motion.speed, charging=self.activity == "charge")
        self._check_faults(dt)
        self._reporter.report_due(self._elapsed)
        return self.take_emissions()

    def on_command(self, command: AnyCommand) -> Ack:
        """The vehicle's answer to ``command``; the reports it causes wait in the outbox."""
        return command_policy.answer(self, command)

    def take_emissions(self) -> list[Emission]:
        """Everything produced since the last call (by :meth:`step` or :meth:`on_command`)."""
        return self._reporter.take()

    @property
    def max_speed(self) -> float:
        """Cruise speed: the configured ``max_speed``, never above the contract's bound."""
        return float(self.config.get("max_speed", self.params.cruise_speed))

    @property
    def current_waypoint(self) -> str:
        """Where the vehicle is heading, or the last waypoint it reached."""
        target = self.motion.target
        return target.name if self.activity == "travel" and target else self._waypoint

    # --- state changes asked for by commands ------------------------------------------------

    def begin_mission(self, run: MissionRun) -> None:
        """Drop whatever the vehicle was doing and head for the pickup."""
        self.mission = run
        self._docking = None
        if self.state == "charging":
            self._set_state("idle")  # charging → navigating is not a transition the hub allows
        self._travel(run.pickup, "pickup")

    def drop_mission(self) -> None:
        """Abandon the mission; go idle unless stopped or faulted (they end in idle anyway)."""
        self.mission = None
        self.passengers_onboard = False
        if self.state == "emergency_stop":
            self._stopped_from = ("idle", "idle")
        if self.state in ("emergency_stop", "error"):
            self._reporter.sync_status(self._elapsed)
        else:
            self._go_idle()

    def emergency_stop(self) -> None:
        """Stop where it stands; a repeated stop keeps the state to resume to."""
        if self.state != "emergency_stop":
            self._stopped_from = (self.state, self.activity)
        self.activity = "stopped"
        self.motion.speed = 0.0
        self._set_state("emergency_stop")

    def resume(self) -> bool:
        """Return to the state held before the stop; False if not stopped."""
        if self.state != "emergency_stop" or self._stopped_from is None:
            return False
        state, self.activity = self._stopped_from
        self._stopped_from = None
        if self.activity == "idle":
            self._timer = self._rng.uniform(*self.params.idle_seconds)
        self._set_state(state)
        return True

    def configure(self, updates: dict[str, Any]) -> None:
        """Apply settings; the location rate follows ``telemetry_frequency`` up to 1 Hz."""
        self.config.update(updates)
        frequency = self.config.get("telemetry_frequency")
        if isinstance(frequency, int | float) and frequency > 0:
            self._reporter.set_location_rate(frequency)

    # --- behaviour --------------------------------------------------------------------------

    def _advance(self, seconds: float) -> None:
        if self.activity == "travel":
            if self.motion.drive(seconds, self.max_speed):
                self._arrive()
        elif self.activity == "dock":
            self._dock(seconds)
        elif self.activity == "charge":
            if self.battery.soc_percent >= self.params.charged_at:
                self._go_idle()
        elif self.activity in ("wait", "fault", "idle"):
            self._timer -= seconds
            if self._timer <= 0:
                self._timer_expired()

    def _timer_expired(self) -> None:
        if self.activity == "wait":
            self._docked_or_waited()
        elif self.activity == "fault":
            self._set_state("idle")  # error → idle is the only way out of error
            if self.mission is not None:
                self._travel(self.mission.target, self.mission.leg)
            else:
                self._go_idle()
        elif self.battery.soc_percent < self.params.charge_below:
            self._travel(self.home, "charger")
        elif self.params.patrol and self.route:
            waypoint = self.route[self._route_index % len(self.route)]
            self._route_index += 1
            self._travel(waypoint, "patrol")
        else:
            self._timer = self._rng.uniform(*self.params.idle_seconds)

    def _travel(self, target: Waypoint, purpose: Purpose) -> None:
        self.motion.target, self._purpose, self.activity = target, purpose, "travel"
        self._set_state("navigating")

    def _go_idle(self) -> None:
        self.activity, self.motion.target, self._docking = "idle", None, None
        self._timer = self._rng.uniform(*self.params.idle_seconds)
        self.motion.speed = 0.0
        self._set_state("idle")

    def _arrive(self) -> None:
        assert self.motion.target is not None
        self._waypoint = self.motion.target.name
        mission = self.mission
        if self._purpose == "patrol":
            if self.battery.soc_percent < self.params.charge_below:
                self._travel(self.home, "charger")
            else:
                self._go_idle()
        elif self._purpose == "charger":
            self._start_docking()
        elif mission is not None and self._purpose == "pickup":
            if mission.pickup_action == "dock_wheelchair":
                self._start_docking()
            else:
                self.activity, self._timer = "wait", self.params.pickup_wait_seconds
        elif mission is not None and mission.destination_action == "undock_wheelchair":
            self._start_docking()
        else:
            self._finish_mission()

    def _start_docking(self) -> None:
        self.activity = "dock"
        self._docking = Docking(
            marker_id=self.marker_id,
            rng=self._rng,
            failure_probability=self.params.docking_failure_probability,
        )
        self.motion.speed = APPROACH_SPEED
        self._set_state("docking")
        self._report("docking", self._docking.report_fields())

    def _dock(self, seconds: float) -> None:
        docking = self._docking
        assert docking is not None
        entered = docking.advance(seconds)
        self.motion.speed = APPROACH_SPEED if docking.moving else 0.0
        for phase in entered:
            self._report("docking", docking.report_fields(phase))
        if docking.done:
            self._docked_or_waited()
        elif not entered and self._reporter.due("docking", self._elapsed):
            self._report("docking", docking.report_fields())

    def _docked_or_waited(self) -> None:
        self._docking = None
        self.motion.speed = 0.0
        mission = self.mission
        if self._purpose == "charger" or mission is None:
            self.activity = "charge"
            self._set_state("charging")
        elif self._purpose == "pickup":
            self.passengers_onboard = True
            mission.leg = "destination"
            self._travel(mission.destination, "destination")
        else:
            self._finish_mission()

    def _finish_mission(self) -> None:
        mission = self.mission
        assert mission is not None
        self.mission = None
        self.passengers_onboard = False
        message = f"{mission.mission_id} completed at {mission.destination.name}"
        self._reporter.send_ack(reports.ack(mission.command_id, "executed", message=message))
        if self.battery.soc_percent < self.params.charge_after_mission_below:
            self.activity, self.motion.target = "charge", None
            self._set_state("charging")
        else:
            self._go_idle()

    def _check_faults(self, seconds: float) -> None:
        found, critical = self._faults.check(
            seconds,
            state=self.state,
            soc_percent=self.battery.soc_percent,
            charging=self.activity == "charge",
            location=self.motion.short_location(),
        )
        for fields in found:
            self._report("error", fields)
        if critical:
            self.activity, self._docking, self.motion.speed = "fault", None, 0.0
            self._timer = self._rng.uniform(*self.params.fault_seconds)
            self._set_state("error")

    # --- reports ----------------------------------------------------------------------------

    def _set_state(self, state: VehicleState) -> None:
        self.state = state
        self._reporter.sync_status(self._elapsed)

    def _report(self, kind: TelemetryKind, fields: dict[str, Any]) -> None:
        self._reporter.report(kind, fields, self._elapsed)
