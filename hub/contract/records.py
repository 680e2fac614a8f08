"""Stored records as the read endpoints answer them (CONTRACT §8), for the OpenAPI document.

A history item is one stored row: its columns at the top level (not the nested body the
vehicle sent) and its wire ``timestamp``. Columns the vehicle may leave out are ``null``.
The audit log and the command list are rows too. The hub builds these answers from rows
(``actors.fleet_reads``); these models describe them and the tests check real answers
against them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from hub.contract.base import ResponseModel
from hub.contract.command_acks import CommandStatus
from hub.contract.command_parts import Priority
from hub.contract.commands import DISPATCH_EXAMPLE, CommandType
from hub.contract.telemetry import DockingPhase, Severity, Subsystem, VehicleState
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp

_CURSOR_EXAMPLE = "MjAyNS0xMi0xNlQxMDozMDo0NS4xMjNa"
_NEXT_CURSOR_DESCRIPTION = "Pass as `cursor` for the next (older) page; null on the last page"


def _page_examples(item: JsonDict) -> ConfigDict:
    return ConfigDict(
        json_schema_extra={"examples": [{"items": [item], "next_cursor": _CURSOR_EXAMPLE}]}
    )


# --- history rows ----------------------------------------------------------------------------

_LOCATION_ROW: JsonDict = {
    "timestamp": EXAMPLE_TIMESTAMP,
    "latitude": 35.681236,
    "longitude": 139.767125,
    "altitude": 45.5,
    "heading": 90.5,
    "speed": 0.8,
    "accuracy": 0.15,
}
_STATUS_ROW: JsonDict = {
    "timestamp": EXAMPLE_TIMESTAMP,
    "state": "navigating",
    "mission_id": "mission_12345",
    "current_waypoint": "room_201",
    "passengers_onboard": True,
    "operational_hours": True,
    "progress_percent": 65.5,
    "eta_seconds": 180,
    "distance_remaining_meters": 145.2,
    "error_code": None,
    "error_message": None,
}
_BATTERY_ROW: JsonDict = {
    "timestamp": EXAMPLE_TIMESTAMP,
    "soc_percent": 85.5,
    "voltage": 52.3,
    "current": -8.2,
    "temperature": 32.5,
    "charging": False,
    "estimated_runtime_minutes": 180,
    "health_percent": 95.0,
}
_ERROR_ROW: JsonDict = {
    "timestamp": EXAMPLE_TIMESTAMP,
    "error_code": "NAV_OBSTACLE_BLOCKED",
    "severity": "warning",
    "subsystem": "navigation",
    "latitude": 35.681236,
    "longitude": 139.767125,
    "description": "Path blocked, rerouting",
    "recovery_action": "rerouting",
    "user_action_required": False,
    "alert_id": None,
    "backfilled": False,
}
_DOCKING_ROW: JsonDict = {
    "timestamp": EXAMPLE_TIMESTAMP,
    "phase": "visual_servoing",
    "marker_id": 42,
    "distance_to_marker_meters": 0.85,
    "alignment_error_degrees": 2.3,
    "docking_success": False,
    "attempts": 1,
    "marker_visible": True,
    "confidence": 0.95,
    "mission_id": "mission_12345",
}


class LocationRecord(ResponseModel):
    """A stored location report."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LOCATION_ROW]})

    timestamp: WireTimestamp
    latitude: float
    longitude: float
    altitude: float | None
    heading: float
    speed: float
    accuracy: float


class StatusRecord(ResponseModel):
    """A stored status report (``details`` flattened into its columns)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_STATUS_ROW]})

    timestamp: WireTimestamp
    state: VehicleState
    mission_id: str | None
    current_waypoint: str | None
    passengers_onboard: bool
    operational_hours: bool
    progress_percent: float | None
    eta_seconds: int | None
    distance_remaining_meters: float | None
    error_code: str | None
    error_message: str | None


class BatteryRecord(ResponseModel):
    """A stored battery report."""

    model_config = ConfigDict(json_schema_extra={"examples": [_BATTERY_ROW]})

    timestamp: WireTimestamp
    soc_percent: float
    voltage: float
    current: float
    temperature: float
    charging: bool
    estimated_runtime_minutes: int | None
    health_percent: float | None


class ErrorRecord(ResponseModel):
    """A stored error report, with the alert it raised (if any)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ERROR_ROW]})

    timestamp: WireTimestamp
    error_code: str
    severity: Severity
    subsystem: Subsystem
    latitude: float | None
    longitude: float | None
    description: str | None
    recovery_action: str | None
    user_action_required: bool | None
    alert_id: str | None
    backfilled: bool = Field(description="true when it came in a bulk upload of offline history")


class DockingRecord(ResponseModel):
    """A stored docking report (``details`` flattened), with the mission it belonged to."""

    model_config = ConfigDict(json_schema_extra={"examples": [_DOCKING_ROW]})

    timestamp: WireTimestamp
    phase: DockingPhase
    marker_id: int | None
    distance_to_marker_meters: float | None
    alignment_error_degrees: float | None
    docking_success: bool
    attempts: int | None
    marker_visible: bool | None
    confidence: float | None
    mission_id: str | None


class LocationHistory(ResponseModel):
    """``GET …/locations``: newest first."""

    model_config = _page_examples(_LOCATION_ROW)

    items: list[LocationRecord]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DESCRIPTION)


class StatusHistory(ResponseModel):
    """``GET …/status``: newest first."""

    model_config = _page_examples(_STATUS_ROW)

    items: list[StatusRecord]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DESCRIPTION)


class BatteryHistory(ResponseModel):
    """``GET …/battery``: newest first."""

    model_config = _page_examples(_BATTERY_ROW)

    items: list[BatteryRecord]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DESCRIPTION)


class ErrorHistory(ResponseModel):
    """``GET …/errors``: newest first."""

    model_config = _page_examples(_ERROR_ROW)

    items: list[ErrorRecord]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DESCRIPTION)


class DockingHistory(ResponseModel):
    """``GET …/docking``: newest first."""

    model_config = _page_examples(_DOCKING_ROW)

    items: list[DockingRecord]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DESCRIPTION)


HISTORY_PAGES: dict[str, type[ResponseModel]] = {
    "locations": LocationHistory,
    "status": StatusHistory,
    "battery": BatteryHistory,
    "errors": ErrorHistory,
    "docking": DockingHistory,
}
"""The page model of each history path segment (``GET /api/v1/vehicle/{id}/<segment>``)."""


# --- commands --------------------------------------------------------------------------------

_COMMAND_ROW: JsonDict = {
    "command_id": "cmd_12345",
    "vehicle_id": "wheelchair_001",
    "type": "dispatch",
    "status": "accepted",
    "priority": "normal",
    "sender": "op.tanaka",
    "payload": DISPATCH_EXAMPLE,
    "ack": {"type": "command_ack", "command_id": "cmd_12345", "status": "accepted"},
    "attempts": 1,
    "created_at": EXAMPLE_TIMESTAMP,
    "sent_at": EXAMPLE_TIMESTAMP,
    "acked_at": EXAMPLE_TIMESTAMP,
    "updated_at": EXAMPLE_TIMESTAMP,
}


class CommandRecord(ResponseModel):
    """A command as recorded: what was sent, to whom, by whom, and how it ended."""

    model_config = ConfigDict(json_schema_extra={"examples": [_COMMAND_ROW]})

    command_id: str
    vehicle_id: str
    type: CommandType
    status: CommandStatus
    priority: Priority
    sender: str | None = Field(description="Username of the operator who sent it")
    payload: dict[str, Any] = Field(description="The command as sent to the vehicle")
    ack: dict[str, Any] | None = Field(description="The vehicle's latest `command_ack`")
    attempts: int = Field(ge=0, description="How many times it was sent")
    created_at: WireTimestamp | None
    sent_at: WireTimestamp | None
    acked_at: WireTimestamp | None
    updated_at: WireTimestamp | None


class CommandList(ResponseModel):
    """``GET /api/v1/vehicle/{id}/commands``: the newest ``limit`` commands, newest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_COMMAND_ROW]}]})

    items: list[CommandRecord]


# --- audit log -------------------------------------------------------------------------------

_AUDIT_ROW: JsonDict = {
    "audit_id": 1842,
    "at": EXAMPLE_TIMESTAMP,
    "actor": "op.tanaka",
    "actor_role": "operator",
    "action": "emergency_stop",
    "vehicle_id": "wheelchair_001",
    "outcome": "executed",
    "details": {"command_id": "cmd_ESTOP_34567"},
    "request_id": "3f1c2a9e8d7b4c6a9e210b5d4f7a8c31",
    "repeat_count": 1,
    "last_at": None,
}


class AuditRecord(ResponseModel):
    """One audit record: who did what, when, to which vehicle, and how it went."""

    model_config = ConfigDict(json_schema_extra={"examples": [_AUDIT_ROW]})

    audit_id: int
    at: WireTimestamp
    actor: str | None
    actor_role: str | None
    action: str = Field(examples=["emergency_stop", "login_failed", "vehicle_register"])
    vehicle_id: str | None
    outcome: str | None
    details: dict[str, Any] | None
    request_id: str | None
    repeat_count: int = Field(
        ge=1,
        description="How many times this happened: the same refusal of the same actor again "
        "within a minute of this record is counted here, not written again",
    )
    last_at: WireTimestamp | None = Field(
        description="When the last repeat happened; null for a record that happened once"
    )


class AuditPage(ResponseModel):
    """``GET /api/v1/admin/audit``: newest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_AUDIT_ROW], "next_cursor": "1841"}]}
    )

    items: list[AuditRecord]
    next_cursor: str | None = Field(description=_NEXT_CURSOR_DESCRIPTION)
