"""The parts of command bodies (CONTRACT §6.3): mission waypoints and configure keys.

Shared by :mod:`hub.contract.commands` (which validates them with the command error codes) and
anything that stores or compares them (missions, the offline queue's configure merge).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hub.contract.base import INTEGRAL, WireModel
from hub.contract.telemetry import MISSION_ID_PATTERN
from hub.contract.timestamps import WireTimestamp

Priority = Literal["low", "normal", "high", "urgent"]
PickupAction = Literal["dock_wheelchair", "wait"]
DestinationAction = Literal["undock_wheelchair", "park"]
EhmiLanguage = Literal["en", "ja", "zh"]

COMMAND_ID_PATTERN = r"^cmd_[a-zA-Z0-9_]+$"
COMMAND_ID_MAX_LENGTH = 64
HOUR_MINUTE_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
"""``HH:MM`` from ``00:00`` to ``23:59`` (ASCII digits only)."""

_HOUR_MINUTE = re.compile(HOUR_MINUTE_PATTERN)


def _validate_hour_minute(value: Any) -> str:
    if isinstance(value, str) and _HOUR_MINUTE.fullmatch(value):
        return value
    raise PydanticCustomError("invalid_command", "must be HH:MM between 00:00 and 23:59")


HourMinute = Annotated[
    str,
    PlainValidator(_validate_hour_minute),
    WithJsonSchema({"type": "string", "pattern": HOUR_MINUTE_PATTERN, "examples": ["07:30"]}),
]
"""A time of day, ``HH:MM`` (24 h, vehicle local time)."""

DEFAULT_ESTOP_REASON = "staff_initiated"
REASON_MAX_LENGTH = 200
MESSAGE_MAX_LENGTH = 500

WaypointId = Annotated[str, Field(min_length=1, max_length=200)]
"""A named place on the site map, e.g. ``lobby_entrance``."""


class Pickup(WireModel):
    """Where the wheelchair is collected."""

    waypoint_id: WaypointId
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    action: PickupAction


class Destination(WireModel):
    """Where the wheelchair is taken."""

    waypoint_id: WaypointId
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    action: DestinationAction


class Mission(WireModel):
    """A transport job: pick up, take to destination, optionally at a scheduled time."""

    mission_id: str = Field(pattern=MISSION_ID_PATTERN, max_length=64)
    pickup: Pickup
    destination: Destination
    scheduled_time: WireTimestamp | None = None


class ConfigUpdates(WireModel):
    """Settings a ``configure`` command changes: at least one key, none null, none unknown."""

    max_speed: float | None = Field(default=None, ge=0.1, le=1.5, description="m/s")
    audio_volume: Annotated[int, Field(ge=0, le=100), INTEGRAL] | None = Field(
        default=None, description="percent"
    )
    ehmi_language: EhmiLanguage | None = Field(
        default=None, description="Language of the external display and announcements"
    )
    telemetry_frequency: float | None = Field(default=None, ge=0.1, le=2.0, description="Hz")
    operational_hours_start: HourMinute | None = Field(
        default=None, description="HH:MM, vehicle local time; may be after the end (overnight)"
    )
    operational_hours_end: HourMinute | None = Field(
        default=None, description="HH:MM, vehicle local time"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        """A key sent as null changes nothing and is almost surely a client bug."""
        if value is None:
            raise PydanticCustomError("invalid_command", "must not be null")
        return value

    @model_validator(mode="after")
    def _at_least_one_key(self) -> ConfigUpdates:
        """An empty update would be recorded and sent for nothing."""
        if not self.model_fields_set:
            raise PydanticCustomError(
                "invalid_command", "must set at least one of " + ", ".join(_CONFIG_KEYS)
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        """The keys that were set, as JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


_CONFIG_KEYS = tuple(ConfigUpdates.model_fields)
