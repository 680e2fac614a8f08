"""WebSocket frames in (CONTRACT §6.1, §6.2): vehicle and frontend frames, parsed and checked.

:func:`parse_vehicle_frame` and :func:`parse_frontend_frame` turn one text or binary message
into a model or raise :class:`~hub.errors.ContractError`, whose ``error`` is the ``code`` of the
error frame to answer with (:func:`~hub.contract.ws_events.contract_error_frame`):

- not JSON → ``invalid_json``; JSON but not an object, or a missing or unknown ``type`` (for
  that socket) → ``invalid_message`` (the hub's code for CONTRACT §6.1's "invalid message");
- telemetry frames → the same codes, fields and messages as the REST endpoint;
- commands → the command codes (:mod:`hub.contract.commands`).

Parsing is pure: the live-timestamp window, rate limits and transition rules are the
caller's, exactly as on the REST path. Outbound frames are built by :mod:`hub.contract.ws_events`
and documented by :mod:`hub.contract.ws_frames`; both are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NoReturn

from pydantic import ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from hub.contract.base import INTEGRAL, VEHICLE_ID_PATTERN, WireModel
from hub.contract.command_acks import CommandAck
from hub.contract.commands import COMMAND_MODELS, AnyCommand, parse_command
from hub.contract.errors import InvalidInputError
from hub.contract.telemetry import TELEMETRY_MODELS, TelemetryKind, TelemetryRecord
from hub.contract.validation import decode_json, validate_model
from hub.contract.ws_events import (
    alert,
    battery_update,
    command_status,
    contract_error_frame,
    docking_update,
    error_frame,
    error_report,
    location_update,
    ping,
    pong,
    status_update,
    subscribed,
    telemetry_ack,
    telemetry_event,
    vehicle_connection,
    welcome,
)
from hub.contract.ws_frames import FRAME_MODELS, PROTOCOL_VERSION, PingFrame, PongFrame

__all__ = [
    "ALL_VEHICLES",
    "FRAME_MODELS",
    "FRONTEND_FRAME_TYPES",
    "INVALID_MESSAGE",
    "MAX_SUBSCRIPTION_IDS",
    "PROTOCOL_VERSION",
    "VEHICLE_FRAME_TYPES",
    "FrontendFrame",
    "PingFrame",
    "PongFrame",
    "SubscribeFrame",
    "TelemetryFrame",
    "UnsubscribeFrame",
    "VehicleFrame",
    "alert",
    "battery_update",
    "command_status",
    "contract_error_frame",
    "docking_update",
    "error_frame",
    "error_report",
    "location_update",
    "parse_frontend_frame",
    "parse_vehicle_frame",
    "ping",
    "pong",
    "status_update",
    "subscribed",
    "telemetry_ack",
    "telemetry_event",
    "vehicle_connection",
    "welcome",
]

INVALID_MESSAGE = "invalid_message"
"""Error frame code for a frame that is JSON but not a message of this socket."""

ALL_VEHICLES = "*"
MAX_SUBSCRIPTION_IDS = 1000
SEQ_MAX = 2**63 - 1
_SUBSCRIPTION_ID_PATTERN = r"^(\*|[A-Za-z0-9_-]{1,64})$"
_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)

SubscriptionId = Annotated[str, Field(pattern=_SUBSCRIPTION_ID_PATTERN)]
Seq = Annotated[int, Field(ge=0, le=SEQ_MAX), INTEGRAL]


# --- frames from vehicles --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelemetryFrame:
    """A telemetry frame: its kind, the REST model of its body, and the body as sent.

    ``body`` is the frame without ``type`` — the REST body, ready for the fleet event builders
    without another dump.
    """

    kind: TelemetryKind
    record: TelemetryRecord
    body: dict[str, Any]


VehicleFrame = PingFrame | PongFrame | CommandAck | TelemetryFrame
"""Any one frame a vehicle may send."""

_VEHICLE_MODELS: dict[str, type[PingFrame | PongFrame | CommandAck]] = {
    "ping": PingFrame,
    "pong": PongFrame,
    "command_ack": CommandAck,
}
VEHICLE_FRAME_TYPES: tuple[str, ...] = (*_VEHICLE_MODELS, *TELEMETRY_MODELS)
"""Every ``type`` the vehicle socket accepts."""

_TELEMETRY_BY_TYPE: dict[str, TelemetryKind] = {kind: kind for kind in TELEMETRY_MODELS}


def parse_vehicle_frame(raw: str | bytes) -> VehicleFrame:
    """One vehicle message → its frame, or ``ContractError`` (its ``error`` is the code)."""
    data = _decode_frame(raw)
    frame_type = _frame_type(data, VEHICLE_FRAME_TYPES)
    kind = _TELEMETRY_BY_TYPE.get(frame_type)
    if kind is None:
        return validate_model(_VEHICLE_MODELS[frame_type], data)
    body = {key: value for key, value in data.items() if key != "type"}
    record = validate_model(TELEMETRY_MODELS[kind], body)
    return TelemetryFrame(kind=kind, record=record, body=body)


# --- frames from frontends -------------------------------------------------------------------


class SubscribeFrame(WireModel):
    """Watch vehicles (``["*"]`` for all); ``since`` asks for a replay after those ``seq``s.

    Repeated ids are dropped (first kept). ``"*"`` may stand beside ids; it subsumes them.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "subscribe", "vehicle_ids": ["wheelchair_001", "wheelchair_002"]},
                {"type": "subscribe", "vehicle_ids": ["*"], "since": {"wheelchair_001": 1842}},
            ]
        }
    )

    type: Literal["subscribe"]
    vehicle_ids: list[SubscriptionId] = Field(min_length=1, max_length=MAX_SUBSCRIPTION_IDS)
    since: dict[str, Seq] | None = Field(
        default=None,
        max_length=MAX_SUBSCRIPTION_IDS,
        description="vehicle_id → last seq the client holds",
    )

    @field_validator("vehicle_ids")
    @classmethod
    def _drop_repeats(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("since")
    @classmethod
    def _keys_are_vehicle_ids(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for key in value or ():
            if not _VEHICLE_ID.fullmatch(key):
                raise PydanticCustomError(
                    "validation_error", "key {key} is not a vehicle id", {"key": repr(key)}
                )
        return value

    @property
    def all_vehicles(self) -> bool:
        """True when the client asked for every vehicle."""
        return ALL_VEHICLES in self.vehicle_ids


class UnsubscribeFrame(WireModel):
    """Stop watching vehicles (``["*"]``: the all-vehicles subscription)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "unsubscribe", "vehicle_ids": ["wheelchair_002"]}]}
    )

    type: Literal["unsubscribe"]
    vehicle_ids: list[SubscriptionId] = Field(min_length=1, max_length=MAX_SUBSCRIPTION_IDS)

    @field_validator("vehicle_ids")
    @classmethod
    def _drop_repeats(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


FrontendFrame = PingFrame | PongFrame | SubscribeFrame | UnsubscribeFrame | AnyCommand
"""Any one frame a frontend may send."""

_FRONTEND_MODELS: dict[str, type[PingFrame | PongFrame | SubscribeFrame | UnsubscribeFrame]] = {
    "subscribe": SubscribeFrame,
    "unsubscribe": UnsubscribeFrame,
    "ping": PingFrame,
    "pong": PongFrame,
}
FRONTEND_FRAME_TYPES: tuple[str, ...] = (*_FRONTEND_MODELS, *COMMAND_MODELS)
"""Every ``type`` a frontend may send."""


def parse_frontend_frame(raw: str | bytes, *, bound_vehicle_id: str | None = None) -> FrontendFrame:
    """One frontend message → its frame, or ``ContractError`` (its ``error`` is the code).

    On the fleet socket (``bound_vehicle_id`` None) a command must name its ``vehicle_id``.
    On a frontend connection bound to one vehicle (``/ws/v1/vehicle/{id}`` with a user token)
    the command's ``vehicle_id`` may be left out and is set to that vehicle; another vehicle's
    id is refused with ``vehicle_id_mismatch``. Returned commands always carry ``vehicle_id``.
    """
    data = _decode_frame(raw)
    if "type" not in data and "vehicle_ids" in data:
        data = {"type": "subscribe", **data}  # CONTRACT §6.2: {"vehicle_ids": ["*"]} subscribes
    frame_type = _frame_type(data, FRONTEND_FRAME_TYPES)
    model = _FRONTEND_MODELS.get(frame_type)
    if model is not None:
        return validate_model(model, data)
    if bound_vehicle_id is None:
        return parse_command(data, vehicle_id_required=True)
    command = parse_command(data)
    if command.vehicle_id is None:
        return command.model_copy(update={"vehicle_id": bound_vehicle_id})
    if command.vehicle_id != bound_vehicle_id:
        raise InvalidInputError(
            "vehicle_id_mismatch",
            f"this connection is bound to vehicle {bound_vehicle_id}",
            field="vehicle_id",
            received_value=command.vehicle_id,
        )
    return command


# --- shared ----------------------------------------------------------------------------------


def _decode_frame(raw: str | bytes) -> dict[str, Any]:
    """Decode one message that must be a JSON object."""
    data = decode_json(raw)
    if not isinstance(data, dict):
        raise InvalidInputError(INVALID_MESSAGE, "a message must be a JSON object")
    return data


def _frame_type(data: dict[str, Any], known: Collection[str]) -> str:
    """The frame's ``type`` if this socket knows it, else ``invalid_message``."""
    frame_type = data.get("type")
    if isinstance(frame_type, str) and frame_type in known:
        return frame_type
    _unknown_type(data, known)


def _unknown_type(data: dict[str, Any], known: Collection[str]) -> NoReturn:
    expected = ", ".join(known)
    if "type" not in data:
        raise InvalidInputError(
            INVALID_MESSAGE, f"type is required: one of {expected}", field="type"
        )
    raise InvalidInputError(
        INVALID_MESSAGE,
        f"type must be one of {expected}",
        field="type",
        received_value=data["type"],
    )
