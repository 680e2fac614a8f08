"""The simulated vehicle without I/O: command answers, missions, docking, battery, wire bodies."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import pytest

from actors.vehicle.transitions import check_phase_transition, check_state_transition
from hub.clock import parse_timestamp
from hub.contract.command_acks import CommandAck
from hub.contract.telemetry import TELEMETRY_MODELS
from hub.contract.validation import validate_model
from hub.simulator import command_policy
from hub.simulator.docking import PHASE_ORDER
from hub.simulator.faults import BATTERY_CRITICAL, ERROR_KINDS
from hub.simulator.params import VehicleParams
from hub.simulator.reports import Ack, Emission, Telemetry
from hub.simulator.testing import QUIET, WallClock, command, dispatch_frame, make_model
from hub.simulator.vehicle_model import VehicleModel

CONTRACT_ERROR_CODES = {kind.code for kind in ERROR_KINDS} | {BATTERY_CRITICAL.code}


class Recorder:
    """Steps a model one second at a time (wall clock in step) and keeps what it emits."""

    def __init__(self, model: VehicleModel, clock: WallClock) -> None:
        self.model = model
        self.clock = clock
        self.emissions: list[Emission] = list(model.step(0.0))

    def collect(self) -> list[Emission]:
        """Take what on_command left in the outbox."""
        taken = self.model.take_emissions()
        self.emissions.extend(taken)
        return taken

    def run(self, seconds: int, until: Callable[[], bool] | None = None) -> int:
        """Step ``seconds`` times (or until ``until()``); the number of steps made."""
        for done in range(1, seconds + 1):
            self.clock.advance(1.0)
            self.emissions.extend(self.model.step(1.0))
            if until is not None and until():
                return done
        return seconds

    def records(self, kind: str | None = None) -> list[Telemetry]:
        return [
            item
            for item in self.emissions
            if isinstance(item, Telemetry) and (kind is None or item.kind == kind)
        ]

    def acks(self) -> list[dict[str, Any]]:
        return [item.frame for item in self.emissions if isinstance(item, Ack)]

    def states(self) -> list[str]:
        return [record.body["state"] for record in self.records("status")]


def recorder(**kwargs: Any) -> Recorder:
    clock = WallClock()
    return Recorder(make_model(clock=clock, **kwargs), clock)


def executed(rec: Recorder, command_id: str) -> Callable[[], bool]:
    return lambda: any(
        ack["command_id"] == command_id and ack["status"] == "executed" for ack in rec.acks()
    )


def check_state_sequence(states: Iterable[str]) -> None:
    """Every status change is one the hub accepts (CONTRACT §3)."""
    current: str | None = None
    before_stop: str | None = None
    for state in states:
        check_state_transition(current, state, before_stop=before_stop)
        if state == "emergency_stop" and current != "emergency_stop":
            before_stop = current
        current = state


def check_phase_sequence(phases: Iterable[str]) -> None:
    current: str | None = None
    for phase in phases:
        check_phase_transition(current, phase)
        current = phase


def dedupe(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if not out or out[-1] != item:
            out.append(item)
    return out


# --- command answers -------------------------------------------------------------------------


def test_dispatch_is_accepted_with_an_estimated_arrival_and_starts_navigating() -> None:
    rec = recorder()
    ack = rec.model.on_command(command(dispatch_frame()))
    assert ack.frame["status"] == "accepted"
    arrival = parse_timestamp(ack.frame["estimated_arrival"])
    assert arrival > rec.clock.now
    reports = rec.collect()
    assert [r.body["state"] for r in reports if isinstance(r, Telemetry)] == ["navigating"]
    assert rec.model.state == "navigating"
    assert rec.records("status")[-1].body["mission_id"] == "mission_1"


def test_dispatch_with_low_battery_is_rejected() -> None:
    model = make_model(soc_percent=19.5)
    ack = model.on_command(command(dispatch_frame()))
    assert ack.frame == {
        "type": "command_ack",
        "command_id": "cmd_1",
        "status": "rejected",
        "reason": "battery_too_low",
        "message": "battery at 20 %",
    }
    assert model.state == "idle" and model.mission is None
    assert model.take_emissions() == []


def test_dispatch_while_on_a_mission_is_rejected() -> None:
    model = make_model()
    model.on_command(command(dispatch_frame("cmd_1", "mission_1")))
    ack = model.on_command(command(dispatch_frame("cmd_2", "mission_2")))
    assert ack.frame["status"] == "rejected"
    assert ack.frame["reason"] == "already_on_mission"
    assert model.mission is not None and model.mission.mission_id == "mission_1"


def test_dispatch_while_stopped_is_rejected_in_error_state() -> None:
    model = make_model()
    model.on_command(command({"type": "emergency_stop", "command_id": "cmd_ESTOP_1"}))
    ack = model.on_command(command(dispatch_frame()))
    assert ack.frame["reason"] == "in_error_state"


def test_dispatch_off_the_map_is_rejected_invalid_destination() -> None:
    model = make_model()
    ack = model.on_command(command(dispatch_frame(destination_metres=(9000.0, 0.0))))
    assert ack.frame["reason"] == "invalid_destination"


def test_emergency_stop_then_resume_returns_to_the_mission() -> None:
    rec = recorder()
    rec.model.on_command(command(dispatch_frame()))
    rec.collect()
    rec.run(5)
    moving_at = rec.model.motion.position
    ack = rec.model.on_command(command({"type": "emergency_stop", "command_id": "cmd_ESTOP_9"}))
    assert ack.frame["status"] == "executed"
    assert ack.frame["stopped_at"] == "2025-12-16T10:00:05.000Z"
    assert ack.frame["location"] == rec.model.motion.short_location()
    assert [r.body["state"] for r in rec.collect() if isinstance(r, Telemetry)] == [
        "emergency_stop"
    ]
    rec.run(20)
    assert rec.model.motion.position == moving_at
    assert {r.body["location"]["speed"] for r in rec.records("location")[-20:]} == {0.0}

    again = rec.model.on_command(command({"type": "emergency_stop", "command_id": "cmd_ESTOP_10"}))
    assert again.frame["status"] == "executed"
    resumed = rec.model.on_command(command({"type": "resume", "command_id": "cmd_2"}))
    assert resumed.frame["status"] == "executed"
    assert rec.model.state == "navigating"
    rec.collect()
    rec.run(600, until=executed(rec, "cmd_1"))
    assert executed(rec, "cmd_1")()
    check_state_sequence(rec.states())


def test_resume_when_not_stopped_is_rejected() -> None:
    model = make_model()
    ack = model.on_command(command({"type": "resume", "command_id": "cmd_3"}))
    assert ack.frame["status"] == "rejected"
    assert ack.frame["reason"] == command_policy.NOT_STOPPED
    assert model.state == "idle"


def test_cancel_is_accepted_and_the_vehicle_goes_idle() -> None:
    rec = recorder()
    rec.model.on_command(command(dispatch_frame()))
    rec.run(10)
    ack = rec.model.on_command(
        command({"type": "cancel", "command_id": "cmd_4", "mission_id": "mission_1"})
    )
    assert ack.frame == {"type": "command_ack", "command_id": "cmd_4", "status": "accepted"}
    rec.collect()
    assert rec.model.state == "idle" and rec.model.mission is None
    assert rec.records("status")[-1].body["state"] == "idle"
    rec.run(600)
    assert not executed(rec, "cmd_1")()
    assert rec.model.state == "idle"


def test_configure_is_applied_and_caps_the_speed() -> None:
    rec = recorder()
    ack = rec.model.on_command(
        command(
            {
                "type": "configure",
                "command_id": "cmd_5",
                "config_updates": {"max_speed": 0.4, "audio_volume": 75, "ehmi_language": "ja"},
            }
        )
    )
    assert ack.frame["status"] == "applied"
    assert ack.frame["updated_config"] == {
        "max_speed": 0.4,
        "audio_volume": 75,
        "ehmi_language": "ja",
    }
    rec.model.on_command(command(dispatch_frame()))
    rec.run(60)
    assert max(r.body["location"]["speed"] for r in rec.records("location")) <= 0.4


def test_an_unreadable_command_is_rejected_if_it_has_an_id() -> None:
    model = make_model()
    bad = {"type": "configure", "command_id": "cmd_6", "config_updates": {"max_speed": 9}}
    frame = command_policy.answer_frame(model, bad)
    assert frame is not None
    assert frame["status"] == "rejected" and frame["reason"] == "invalid_command"
    assert command_policy.answer_frame(model, {"type": "resume"}) is None
    assert command_policy.answer_frame(model, {"type": "resume", "command_id": 5}) is None


# --- missions and docking --------------------------------------------------------------------


@pytest.mark.parametrize(("soc", "final"), [(90.0, "idle"), (45.0, "charging")])
def test_a_mission_ends_with_executed_then_idle_or_charging(soc: float, final: str) -> None:
    rec = recorder(soc_percent=soc)
    rec.model.on_command(command(dispatch_frame()))
    rec.collect()
    steps = rec.run(900, until=executed(rec, "cmd_1"))
    assert executed(rec, "cmd_1")()
    assert rec.model.state == final
    assert rec.model.mission is None and not rec.model.passengers_onboard
    states = dedupe(rec.states())
    assert states == ["idle", "navigating", "docking", "navigating", "docking", final]
    check_state_sequence(rec.states())
    # 130 m at ≤ 1 m/s, plus two dockings of 12 s
    assert 130 + 24 <= steps <= 260
    onboard = [r.body["passengers_onboard"] for r in rec.records("status")]
    assert dedupe(str(flag) for flag in onboard) == ["False", "True", "False"]


def test_docking_goes_through_every_phase_in_order() -> None:
    rec = recorder()
    rec.model.on_command(command(dispatch_frame()))
    rec.run(900, until=executed(rec, "cmd_1"))
    phases = [r.body["phase"] for r in rec.records("docking")]
    assert dedupe(phases) == [*PHASE_ORDER, *PHASE_ORDER]
    check_phase_sequence(phases)
    for record in rec.records("docking"):
        assert record.body["docking_success"] == (record.body["phase"] == "success")
    distances = [r.body["distance_to_marker_meters"] for r in rec.records("docking")[:7]]
    assert distances == sorted(distances, reverse=True)


def test_failed_docking_attempts_start_over_from_approaching() -> None:
    rec = recorder(params=replace(QUIET, docking_failure_probability=1.0))
    rec.model.on_command(command(dispatch_frame()))
    rec.run(900, until=executed(rec, "cmd_1"))
    assert executed(rec, "cmd_1")()
    reports = rec.records("docking")
    phases = [r.body["phase"] for r in reports]
    check_phase_sequence(phases)
    first_docking = dedupe(phases)[: dedupe(phases).index("success") + 1]
    assert first_docking == [
        "approaching", "marker_detection", "failed",
        "approaching", "marker_detection", "failed",
        *PHASE_ORDER,
    ]  # fmt: skip
    assert max(r.body["attempts"] for r in reports) == 3


def test_wait_and_park_missions_need_no_docking() -> None:
    rec = recorder()
    frame = dispatch_frame(pickup_action="wait", destination_action="park")
    rec.model.on_command(command(frame))
    rec.run(900, until=executed(rec, "cmd_1"))
    assert executed(rec, "cmd_1")()
    assert rec.records("docking") == []
    assert dedupe(rec.states()) == ["idle", "navigating", "idle"]


# --- battery ---------------------------------------------------------------------------------


def test_battery_drains_faster_moving_than_idle_and_rises_while_charging() -> None:
    idle = recorder(soc_percent=80.0)
    idle.run(120)
    moving = recorder(soc_percent=80.0)
    moving.model.on_command(command(dispatch_frame()))
    moving.run(120)
    idle_drop = 80.0 - idle.model.battery.soc_percent
    moving_drop = 80.0 - moving.model.battery.soc_percent
    assert 0 < idle_drop < moving_drop

    charging = recorder(soc_percent=40.0)
    charging.model.on_command(command(dispatch_frame()))
    charging.run(900, until=executed(charging, "cmd_1"))
    assert charging.model.state == "charging"
    at_start = charging.model.battery.soc_percent
    charging.run(60)
    assert charging.model.battery.soc_percent > at_start
    last = charging.records("battery")[-1].body["battery"]
    assert last["charging"] is True and last["current"] > 0
    moving_reading = moving.records("battery")[-1].body["battery"]
    assert moving_reading["charging"] is False and moving_reading["current"] < 0


def test_a_low_idle_vehicle_drives_home_and_charges_until_full() -> None:
    params = replace(QUIET, idle_seconds=(5.0, 5.0), charged_at=35.0)
    rec = recorder(params=params, soc_percent=25.0)
    rec.run(600, until=lambda: rec.model.state == "charging")
    assert dedupe(rec.states()) == ["idle", "navigating", "docking", "charging"]
    rec.run(600, until=lambda: rec.model.state == "idle")
    assert rec.model.battery.soc_percent > 34.9  # charged to 35 %, then a second of idle drain
    check_state_sequence(rec.states())


# --- everything the model sends is contract-valid --------------------------------------------


def test_every_body_validates_and_timestamps_strictly_increase() -> None:
    params = VehicleParams(
        error_rate_per_minute=1.0,
        docking_failure_probability=0.3,
        idle_seconds=(2.0, 6.0),
        fault_seconds=(5.0, 10.0),
    )
    rec = recorder(params=params, soc_percent=35.0, seed=11)
    for number in range(12):
        rec.run(120)
        rec.model.on_command(command(dispatch_frame(f"cmd_{number}", f"mission_{number}x")))
        rec.collect()
    records = rec.records()
    assert {r.kind for r in records} == {"location", "status", "battery", "error", "docking"}
    for record in records:
        validate_model(TELEMETRY_MODELS[record.kind], record.body)
    for frame in rec.acks():
        validate_model(CommandAck, frame)
    stamps = [parse_timestamp(r.timestamp) for r in records]
    assert all(earlier < later for earlier, later in itertools.pairwise(stamps))
    errors = rec.records("error")
    assert {r.body["error_code"] for r in errors} <= CONTRACT_ERROR_CODES
    severities = [r.body["severity"] for r in errors]
    assert severities.count("warning") > len(severities) / 2
    check_state_sequence(rec.states())
