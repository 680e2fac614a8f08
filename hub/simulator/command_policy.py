"""How a simulated vehicle answers each command (CONTRACT §6.3): accept, refuse, or act at once.

The decisions live here; the state changes they lead to are :class:`VehicleModel` methods.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hub.clock import format_timestamp
from hub.contract.command_parts import COMMAND_ID_MAX_LENGTH, COMMAND_ID_PATTERN
from hub.contract.commands import (
    AnyCommand,
    CancelCommand,
    ConfigureCommand,
    DispatchCommand,
    EmergencyStopCommand,
    ResumeCommand,
    parse_command,
)
from hub.contract.errors import ContractError
from hub.simulator import reports
from hub.simulator.mission import MissionRun
from hub.simulator.reports import Ack

if TYPE_CHECKING:
    from hub.simulator.vehicle_model import VehicleModel

NOT_STOPPED = "not_in_emergency_stop"
"""Rejection reason for a ``resume`` when there is nothing to resume from (not in the
contract's list, which the hub accepts: reasons are free text)."""


INVALID_COMMAND = "invalid_command"
"""Rejection reason for a command the vehicle cannot read (the hub should never send one)."""

_COMMAND_ID = re.compile(COMMAND_ID_PATTERN)


def answer_frame(model: VehicleModel, frame: dict[str, Any]) -> dict[str, Any] | None:
    """The ack frame for a command frame off the socket; None if it has no usable id."""
    try:
        command = parse_command(frame)
    except ContractError as exc:
        command_id = frame.get("command_id")
        if not isinstance(command_id, str) or len(command_id) > COMMAND_ID_MAX_LENGTH:
            return None
        if not _COMMAND_ID.fullmatch(command_id):
            return None
        message = f"{exc.field or 'command'}: {exc.message}"[:500]
        return reports.ack(command_id, "rejected", reason=INVALID_COMMAND, message=message).frame
    if command.command_id is None:
        return None
    return answer(model, command).frame


def answer(model: VehicleModel, command: AnyCommand) -> Ack:
    """The ack for ``command``, after applying whatever it changes to ``model``."""
    if command.command_id is None:
        raise ValueError("a command reaching a vehicle always has a command_id")
    command_id = command.command_id
    match command:
        case DispatchCommand():
            return _dispatch(model, command, command_id)
        case CancelCommand():
            if model.mission is None or model.mission.mission_id != command.mission_id:
                return reports.ack(
                    command_id, "accepted", message=f"no active mission {command.mission_id}"
                )
            model.drop_mission()
            return reports.ack(command_id, "accepted")
        case EmergencyStopCommand():
            model.emergency_stop()
            return reports.ack(
                command_id,
                "executed",
                stopped_at=format_timestamp(model.stamper.now()),
                location=model.motion.short_location(),
            )
        case ResumeCommand():
            if not model.resume():
                return reports.ack(
                    command_id, "rejected", reason=NOT_STOPPED, message=f"vehicle is {model.state}"
                )
            return reports.ack(command_id, "executed")
        case ConfigureCommand():
            model.configure(command.config_updates.as_dict())
            return reports.ack(command_id, "applied", updated_config=dict(model.config))


def _dispatch(model: VehicleModel, command: DispatchCommand, command_id: str) -> Ack:
    """Refuse for the first reason that applies (the most serious first), else start."""
    if model.state in ("error", "emergency_stop"):
        return reports.ack(command_id, "rejected", reason="in_error_state")
    if model.mission is not None:
        return reports.ack(
            command_id,
            "rejected",
            reason="already_on_mission",
            message=f"busy with {model.mission.mission_id}",
        )
    soc = model.battery.soc_percent
    if soc < model.params.dispatch_min_soc:
        return reports.ack(
            command_id, "rejected", reason="battery_too_low", message=f"battery at {soc:.0f} %"
        )
    if not within_operational_hours(model.config, model.stamper.now()):
        return reports.ack(command_id, "rejected", reason="outside_operational_hours")
    run = MissionRun.from_command(command, command_id, model.motion.position)
    if run.total_metres > model.params.max_mission_metres:
        return reports.ack(
            command_id,
            "rejected",
            reason="invalid_destination",
            message=f"{run.total_metres:.0f} m away, beyond the site map",
        )
    model.begin_mission(run)
    seconds = run.total_metres / model.max_speed + run.handling_seconds(
        model.params.pickup_wait_seconds
    )
    return reports.ack(command_id, "accepted", estimated_arrival=model.stamper.after(seconds))


def within_operational_hours(config: dict[str, Any], now: datetime) -> bool:
    """Whether ``now`` (UTC) is inside the configured hours; always, if none are set."""
    start = config.get("operational_hours_start")
    end = config.get("operational_hours_end")
    if not isinstance(start, str) or not isinstance(end, str) or start == end:
        return True
    clock = now.strftime("%H:%M")
    return start <= clock < end if start < end else (clock >= start or clock < end)
