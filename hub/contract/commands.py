"""Commands to a vehicle (CONTRACT §6.3): one model per type, the parser and their helpers.

A command arrives from an operator (a frontend socket frame, or the REST body) and is
forwarded to the vehicle socket. Error codes follow CONTRACT §1.1 with ``invalid_command`` as
the fallback instead of ``validation_error``: latitude/longitude → ``invalid_location``,
``priority``/``action`` → ``invalid_enum``, a timestamp → ``invalid_timestamp``, everything
else (unknown ``type``, unknown field, bad ``command_id``, any ``config_updates`` key) →
``invalid_command``. Nothing here does I/O or reads the clock; callers pass ``now``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.config import JsonDict

from hub.contract.base import VEHICLE_ID_PATTERN, WireModel
from hub.contract.command_parts import (
    COMMAND_ID_MAX_LENGTH,
    COMMAND_ID_PATTERN,
    DEFAULT_ESTOP_REASON,
    MESSAGE_MAX_LENGTH,
    REASON_MAX_LENGTH,
    ConfigUpdates,
    Destination,
    Mission,
    Pickup,
    Priority,
)
from hub.contract.errors import InvalidInputError
from hub.contract.mapping import Loc, contract_code
from hub.contract.telemetry import MISSION_ID_PATTERN
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp
from hub.contract.validation import decode_json, validate_model

__all__ = [
    "COMMAND_ID_PATTERN",
    "COMMAND_MODELS",
    "DEFAULT_ESTOP_REASON",
    "AnyCommand",
    "CancelCommand",
    "Command",
    "CommandModel",
    "CommandType",
    "ConfigUpdates",
    "ConfigureCommand",
    "Destination",
    "DispatchCommand",
    "EmergencyStopCommand",
    "Mission",
    "Pickup",
    "Priority",
    "ResumeCommand",
    "command_code",
    "merge_configure",
    "new_command_id",
    "parse_command",
    "vehicle_payload",
    "with_defaults",
]

CommandType = Literal["dispatch", "cancel", "emergency_stop", "resume", "configure"]


def command_code(error_type: str, loc: Loc) -> str:
    """The contract code for a command error: :func:`contract_code`, ``invalid_command`` else.

    Every ``config_updates`` key is ``invalid_command`` (CONTRACT §6.3), ``ehmi_language``
    included, although it is an enum value.
    """
    if loc and loc[0] == "config_updates":
        return "invalid_command"
    code = contract_code(error_type, loc)
    return "invalid_command" if code == "validation_error" else code


class CommandModel(WireModel):
    """Head of every command: ``type``, and the ids the hub fills when they are missing."""

    type: CommandType
    vehicle_id: str | None = Field(
        default=None,
        pattern=VEHICLE_ID_PATTERN,
        description="The target vehicle; required on the fleet socket, never sent to the vehicle",
    )
    command_id: str | None = Field(
        default=None,
        pattern=COMMAND_ID_PATTERN,
        max_length=COMMAND_ID_MAX_LENGTH,
        description="Unique; assigned by the hub when missing (cmd_ESTOP_… for emergency stops)",
    )
    timestamp: WireTimestamp | None = Field(
        default=None, description="When the command was issued; the hub's time when missing"
    )


# --- the five commands -----------------------------------------------------------------------


def _examples(body: JsonDict) -> ConfigDict:
    """A model config carrying one OpenAPI example (taken from the contract)."""
    return ConfigDict(json_schema_extra={"examples": [body]})


DISPATCH_EXAMPLE: JsonDict = {
    "type": "dispatch",
    "command_id": "cmd_12345",
    "timestamp": EXAMPLE_TIMESTAMP,
    "priority": "normal",
    "mission": {
        "mission_id": "mission_67890",
        "pickup": {
            "waypoint_id": "lobby_entrance",
            "latitude": 35.6811,
            "longitude": 139.767,
            "action": "dock_wheelchair",
        },
        "destination": {
            "waypoint_id": "room_201",
            "latitude": 35.682456,
            "longitude": 139.768234,
            "action": "undock_wheelchair",
        },
        "scheduled_time": "2025-12-16T11:00:00.000Z",
    },
}
"""A dispatch as the contract shows it (also the example of a stored command's payload)."""


class DispatchCommand(CommandModel):
    """Send the vehicle on a mission (creates or updates the ``missions`` row)."""

    model_config = _examples(DISPATCH_EXAMPLE)

    type: Literal["dispatch"] = "dispatch"
    priority: Priority = "normal"
    mission: Mission


class CancelCommand(CommandModel):
    """Abort a mission; ``safe_stop`` lets the vehicle finish a docking move first."""

    model_config = _examples(
        {
            "type": "cancel",
            "command_id": "cmd_23456",
            "timestamp": EXAMPLE_TIMESTAMP,
            "mission_id": "mission_67890",
            "reason": "user_requested",
            "safe_stop": True,
        }
    )

    type: Literal["cancel"] = "cancel"
    mission_id: str = Field(pattern=MISSION_ID_PATTERN, max_length=64)
    reason: str | None = Field(default=None, max_length=REASON_MAX_LENGTH)
    safe_stop: bool = True


def _reason_or_default(value: Any) -> Any:
    if value is None or value == "":
        return DEFAULT_ESTOP_REASON
    return value[:REASON_MAX_LENGTH] if isinstance(value, str) else value


def _cut_message(value: Any) -> Any:
    return value[:MESSAGE_MAX_LENGTH] if isinstance(value, str) else value


StopReason = Annotated[
    str,
    Field(max_length=REASON_MAX_LENGTH),
    BeforeValidator(_reason_or_default),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "Why; missing, null or empty means `staff_initiated`, and a reason "
            f"over {REASON_MAX_LENGTH} characters is cut to them, never refused",
            "examples": ["fire_alarm"],
        }
    ),
]
"""An emergency stop's ``reason``: empty means ``staff_initiated``; a long one is cut."""

StopMessage = Annotated[
    str,
    Field(max_length=MESSAGE_MAX_LENGTH),
    BeforeValidator(_cut_message),
    WithJsonSchema(
        {
            "type": "string",
            "description": "Shown to the people on board; over "
            f"{MESSAGE_MAX_LENGTH} characters it is cut to them, never refused",
        }
    ),
]
"""An emergency stop's ``message``: a long one is cut, never refused."""

VEHICLE_SELECTOR_PATTERN = r"^(\*|[A-Za-z0-9_-]{1,64})$"
FLEET_STOP_MAX_VEHICLES = 10_000


class EmergencyStopCommand(CommandModel):
    """Stop now. Refused only when it cannot be addressed (bad ``type``, ids or timestamp).

    Unknown fields are ignored, a missing, null or empty ``reason`` becomes
    ``staff_initiated``, and an over-long ``reason``/``message`` is cut to its limit instead
    of refused: an operator must never have to retype an emergency stop.
    """

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "type": "emergency_stop",
                    "command_id": "cmd_ESTOP_34567",
                    "timestamp": EXAMPLE_TIMESTAMP,
                    "reason": "staff_initiated",
                    "message": "Person in the corridor, stop at once",
                }
            ]
        },
    )

    type: Literal["emergency_stop"] = "emergency_stop"
    reason: StopReason = DEFAULT_ESTOP_REASON
    message: StopMessage | None = None


class FleetEmergencyStop(WireModel):
    """``POST /api/v1/fleet/emergency_stop``: stop every vehicle named (``["*"]``: all).

    Like a single emergency stop, it is refused only when it cannot be addressed: every
    field may be left out (every enabled vehicle, reason ``staff_initiated``), unknown fields
    are ignored and long texts are cut.
    """

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"reason": "fire_alarm", "message": "Evacuate", "vehicle_ids": ["*"]},
                {"reason": "staff_initiated", "vehicle_ids": ["wheelchair_001", "wheelchair_002"]},
            ]
        },
    )

    reason: StopReason = DEFAULT_ESTOP_REASON
    message: StopMessage | None = None
    vehicle_ids: list[Annotated[str, Field(pattern=VEHICLE_SELECTOR_PATTERN)]] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=FLEET_STOP_MAX_VEHICLES,
        description='Vehicle ids, or `["*"]` for every enabled vehicle; repeated ids count once',
    )


class ResumeCommand(CommandModel):
    """Leave ``emergency_stop`` (the hub checks the vehicle's state: ``invalid_command_state``)."""

    model_config = _examples(
        {"type": "resume", "command_id": "cmd_45678", "timestamp": EXAMPLE_TIMESTAMP}
    )

    type: Literal["resume"] = "resume"


class ConfigureCommand(CommandModel):
    """Change vehicle settings; queued ones for the same vehicle merge (:func:`merge_configure`)."""

    model_config = _examples(
        {
            "type": "configure",
            "command_id": "cmd_56789",
            "timestamp": EXAMPLE_TIMESTAMP,
            "config_updates": {"max_speed": 0.8, "audio_volume": 75, "ehmi_language": "ja"},
        }
    )

    type: Literal["configure"] = "configure"
    config_updates: ConfigUpdates


AnyCommand = (
    DispatchCommand | CancelCommand | EmergencyStopCommand | ResumeCommand | ConfigureCommand
)
"""Any one validated command (use :data:`Command` where pydantic needs the discriminator)."""

Command = Annotated[AnyCommand, Field(discriminator="type")]
"""The tagged union of commands, discriminated on ``type`` (for OpenAPI and TypeAdapter)."""

COMMAND_MODELS: dict[str, type[AnyCommand]] = {
    "dispatch": DispatchCommand,
    "cancel": CancelCommand,
    "emergency_stop": EmergencyStopCommand,
    "resume": ResumeCommand,
    "configure": ConfigureCommand,
}
"""The model of each command ``type``."""


# --- parsing and helpers ---------------------------------------------------------------------


def parse_command(
    raw: bytes | str | Mapping[str, Any], *, vehicle_id_required: bool = False
) -> AnyCommand:
    """Validate one command (JSON text or decoded object) or raise its 400 ``ContractError``.

    Checked in this order: JSON (``invalid_json``), an object with a known ``type``, the
    presence of ``vehicle_id`` when required (fleet socket), then every field.
    """
    data = decode_json(raw) if isinstance(raw, bytes | str) else raw
    if not isinstance(data, Mapping):
        raise InvalidInputError("invalid_command", "a command must be a JSON object")
    kind = data.get("type")
    model = COMMAND_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        expected = ", ".join(COMMAND_MODELS)
        if "type" not in data:
            raise InvalidInputError(
                "invalid_command", f"type is required: one of {expected}", field="type"
            )
        raise InvalidInputError(
            "invalid_command",
            f"type must be one of {expected}",
            field="type",
            received_value=kind,
        )
    if vehicle_id_required and data.get("vehicle_id") is None:
        raise InvalidInputError(
            "invalid_command", "vehicle_id is required on this socket", field="vehicle_id"
        )
    return validate_model(model, data, code=command_code)


def new_command_id(kind: CommandType) -> str:
    """A fresh ``command_id``: ``cmd_<20 hex>``, or ``cmd_ESTOP_<20 hex>`` for emergency stops."""
    prefix = "cmd_ESTOP_" if kind == "emergency_stop" else "cmd_"
    return prefix + secrets.token_hex(10)


C = TypeVar("C", bound=CommandModel)


def with_defaults(command: C, now: datetime) -> C:
    """``command`` with ``command_id`` and ``timestamp`` filled in where the sender left them out.

    ``now`` must be timezone-aware; it is cut to milliseconds like every wire timestamp.
    """
    update: dict[str, Any] = {}
    if command.command_id is None:
        update["command_id"] = new_command_id(command.type)
    if command.timestamp is None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        moment = now.astimezone(UTC)
        update["timestamp"] = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return command.model_copy(update=update) if update else command


def vehicle_payload(command: CommandModel) -> dict[str, Any]:
    """The JSON object sent to the vehicle: the command without ``vehicle_id`` or null keys.

    Vehicles are coded against the vehicle API, whose commands carry no ``vehicle_id``.
    """
    return command.model_dump(mode="json", exclude={"vehicle_id"}, exclude_none=True)


def merge_configure(older: ConfigureCommand, newer: ConfigureCommand) -> ConfigureCommand:
    """One ``configure`` holding both updates, the newer's keys winning (offline queue rule).

    The result keeps the newer command's ids and timestamp.
    """
    merged = {**older.config_updates.as_dict(), **newer.config_updates.as_dict()}
    return newer.model_copy(update={"config_updates": ConfigUpdates.model_validate(merged)})
