"""WebSocket frame models (CONTRACT §6.1, §6.2): the heartbeat, and every frame the hub sends.

The hub builds outbound frames with the plain functions of :mod:`hub.contract.ws_events` (no
pydantic on the hot path); the models here document those frames for the docs, and the tests
check that every builder's output validates against its model. :data:`FRAME_MODELS` maps each
outbound ``type`` to its model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from hub.contract.base import ResponseModel, WireModel
from hub.contract.command_acks import CommandStatus
from hub.contract.telemetry import (
    BATTERY_EXAMPLE,
    LOCATION_EXAMPLE,
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    Severity,
    StatusUpdate,
    TelemetryKind,
)
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp

PROTOCOL_VERSION = "1.0"


def _omit_none(value: Any) -> bool:
    return value is None


def _examples(*bodies: JsonDict) -> ConfigDict:
    """A model config carrying OpenAPI examples."""
    return ConfigDict(json_schema_extra={"examples": list(bodies)})


# --- both directions -------------------------------------------------------------------------


class _Heartbeat(WireModel):
    """Ping/pong: unknown fields ignored (any frame proves the peer alive), timestamp optional."""

    model_config = ConfigDict(extra="ignore")

    timestamp: WireTimestamp | None = Field(
        default=None, description="Sender's clock; the hub always sends it"
    )


class PingFrame(_Heartbeat):
    """``{"type": "ping"}``: either side may send it; the other answers ``pong``."""

    model_config = _examples({"type": "ping", "timestamp": EXAMPLE_TIMESTAMP})

    type: Literal["ping"]


class PongFrame(_Heartbeat):
    """``{"type": "pong"}``: the answer to a ``ping``."""

    model_config = _examples({"type": "pong", "timestamp": EXAMPLE_TIMESTAMP})

    type: Literal["pong"]


# --- hub → vehicle or frontend ---------------------------------------------------------------


class WelcomeFrame(ResponseModel):
    """First frame on an authenticated vehicle socket; queued commands follow it."""

    model_config = _examples(
        {
            "type": "welcome",
            "vehicle_id": "wheelchair_001",
            "server_time": EXAMPLE_TIMESTAMP,
            "protocol_version": PROTOCOL_VERSION,
            "ping_interval_seconds": 30,
        }
    )

    type: Literal["welcome"]
    vehicle_id: str
    server_time: WireTimestamp
    protocol_version: Literal["1.0"]
    ping_interval_seconds: float


class ErrorFrame(ResponseModel):
    """A refused frame or a failed login: ``code`` is the REST error code (or ``auth_failed``,
    ``invalid_message``); ``field``/``received_value``/``details`` as in the REST body."""

    model_config = _examples(
        {
            "type": "error",
            "code": "invalid_location",
            "message": "latitude must be between -90 and 90",
            "field": "location.latitude",
            "received_value": 95.123,
        },
        {"type": "error", "code": "auth_failed", "message": "Invalid or expired token"},
    )

    type: Literal["error"]
    code: str
    message: str
    field: str | None = Field(default=None, exclude_if=_omit_none)
    received_value: Any = Field(
        default=None, exclude_if=_omit_none, description="What was sent at `field`"
    )
    details: dict[str, Any] | None = Field(default=None, exclude_if=_omit_none)
    retry_after: int | None = Field(default=None, exclude_if=_omit_none)
    command_id: str | None = Field(
        default=None,
        exclude_if=_omit_none,
        description="On a frontend socket: the `command_id` of the refused command, if it had one",
    )


class TelemetryAckFrame(ResponseModel):
    """The answer to a telemetry frame once the record is stored (or was already)."""

    model_config = _examples(
        {
            "type": "telemetry_ack",
            "kind": "location",
            "timestamp": EXAMPLE_TIMESTAMP,
            "status": "ok",
        }
    )

    type: Literal["telemetry_ack"]
    kind: TelemetryKind
    timestamp: WireTimestamp = Field(description="The record's own timestamp")
    status: Literal["ok", "duplicate"]


class SubscribedFrame(ResponseModel):
    """The answer to ``subscribe``: the current state of each vehicle, then events follow."""

    model_config = _examples(
        {
            "type": "subscribed",
            "vehicle_ids": ["wheelchair_001"],
            "snapshot": [
                {
                    "vehicle_id": "wheelchair_001",
                    "connected": True,
                    "state": "navigating",
                    "seq": 1842,
                    "location": LOCATION_EXAMPLE,
                    "battery": BATTERY_EXAMPLE,
                }
            ],
            "replayed": {"wheelchair_001": True},
        }
    )

    type: Literal["subscribed"]
    vehicle_ids: list[str]
    snapshot: list[dict[str, Any]]
    replayed: dict[str, bool] | None = Field(
        default=None,
        exclude_if=_omit_none,
        description="Only when `since` was sent: false where the gap could not be filled",
    )


class CommandStatusFrame(ResponseModel):
    """A command changed status; sent to its sender and to the vehicle's subscribers."""

    model_config = _examples(
        {
            "type": "command_status",
            "command_id": "cmd_12345",
            "vehicle_id": "wheelchair_001",
            "status": "accepted",
            "ack": {
                "type": "command_ack",
                "command_id": "cmd_12345",
                "status": "accepted",
                "estimated_arrival": EXAMPLE_TIMESTAMP,
            },
        }
    )

    type: Literal["command_status"]
    command_id: str
    vehicle_id: str
    status: CommandStatus
    ack: dict[str, Any] | None


class VehicleConnectionFrame(ResponseModel):
    """A vehicle socket opened or closed."""

    model_config = _examples(
        {
            "type": "vehicle_connection",
            "vehicle_id": "wheelchair_001",
            "connected": True,
            "timestamp": EXAMPLE_TIMESTAMP,
            "seq": 1843,
        }
    )

    type: Literal["vehicle_connection"]
    vehicle_id: str
    connected: bool
    timestamp: WireTimestamp
    seq: int = Field(ge=0)


class AlertFrame(ResponseModel):
    """An alert; to every admin and operator whatever their subscriptions."""

    model_config = _examples(
        {
            "type": "alert",
            "alert_id": "alert_3f9a1c2b4d5e6f70",
            "vehicle_id": "wheelchair_001",
            "severity": "critical",
            "kind": "emergency_stop",
            "error_code": None,
            "message": "Vehicle entered emergency stop",
            "timestamp": EXAMPLE_TIMESTAMP,
            "escalated": False,
            "backfilled": False,
        }
    )

    type: Literal["alert"]
    alert_id: str
    vehicle_id: str
    seq: int | None = Field(default=None, ge=0, exclude_if=_omit_none)
    severity: Severity
    kind: str = Field(
        description="What raised it, e.g. state_error, emergency_stop, error_report, battery_low, "
        "battery_critical, emergency_stop_unconfirmed"
    )
    error_code: str | None
    message: str
    timestamp: WireTimestamp = Field(description="When the alert was raised")
    escalated: bool = Field(description="Re-sent because nobody acknowledged it in 5 minutes")
    backfilled: bool = Field(description="Raised from a bulk upload of offline history")


# --- vehicle events: the telemetry body plus type, vehicle_id and seq ------------------------


class _EventHead(WireModel):
    """What every vehicle event adds to the telemetry body it carries."""

    type: str
    vehicle_id: str
    seq: int = Field(ge=0, description="Per-vehicle counter; only grows")


def _event_example(event_type: str, body: JsonDict) -> ConfigDict:
    head: JsonDict = {"type": event_type, "vehicle_id": "wheelchair_001", "seq": 1842}
    return _examples({**head, **body})


def _body_example(model: type[BaseModel]) -> JsonDict:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list) and isinstance(examples[0], dict)
    return examples[0]


class LocationUpdateEvent(LocationUpdate, _EventHead):
    """A stored location report."""

    model_config = _event_example("location_update", _body_example(LocationUpdate))

    type: Literal["location_update"]


class StatusUpdateEvent(StatusUpdate, _EventHead):
    """A stored status report (the status fields at the top level)."""

    model_config = _event_example("status_update", _body_example(StatusUpdate))

    type: Literal["status_update"]


class BatteryUpdateEvent(BatteryUpdate, _EventHead):
    """A stored battery report."""

    model_config = _event_example("battery_update", _body_example(BatteryUpdate))

    type: Literal["battery_update"]


class DockingUpdateEvent(DockingUpdate, _EventHead):
    """A stored docking report (the docking fields at the top level)."""

    model_config = _event_example("docking_update", _body_example(DockingUpdate))

    type: Literal["docking_update"]


class ErrorReportEvent(ErrorReport, _EventHead):
    """A stored error report (the error fields at the top level)."""

    model_config = _event_example("error_report", _body_example(ErrorReport))

    type: Literal["error_report"]


FRAME_MODELS: dict[str, type[BaseModel]] = {
    "welcome": WelcomeFrame,
    "ping": PingFrame,
    "pong": PongFrame,
    "error": ErrorFrame,
    "telemetry_ack": TelemetryAckFrame,
    "subscribed": SubscribedFrame,
    "command_status": CommandStatusFrame,
    "vehicle_connection": VehicleConnectionFrame,
    "location_update": LocationUpdateEvent,
    "status_update": StatusUpdateEvent,
    "battery_update": BatteryUpdateEvent,
    "docking_update": DockingUpdateEvent,
    "error_report": ErrorReportEvent,
    "alert": AlertFrame,
}
"""The model documenting each frame the hub sends, by ``type``."""

EVENT_TYPES: dict[TelemetryKind, str] = {
    "location": "location_update",
    "status": "status_update",
    "battery": "battery_update",
    "docking": "docking_update",
    "error": "error_report",
}
"""The fleet event ``type`` that carries each telemetry kind."""
