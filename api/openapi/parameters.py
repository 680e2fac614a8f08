"""Path parameters of the REST routes: their patterns, descriptions and examples.

The routes take every path parameter as a plain string; these schemas say what a valid one
looks like (CONTRACT §1 for vehicle ids, §6.3 for command ids). A value outside the pattern
names nothing the hub has, so the hub answers 404 for it (or 401/403 before looking).
"""

from __future__ import annotations

from typing import Any

from hub.contract.base import VEHICLE_ID_PATTERN
from hub.contract.command_parts import COMMAND_ID_MAX_LENGTH, COMMAND_ID_PATTERN
from hub.contract.reservations import RESERVATION_ID_PATTERN
from hub.contract.telemetry import MISSION_ID_PATTERN

ALERT_ID_PATTERN = r"^alert_[0-9a-f]{16}$"
"""Alert ids as the hub makes them (``alert_`` and 16 hex digits)."""

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "vehicle_id": {
        "description": "The vehicle's id",
        "schema": {"type": "string", "pattern": VEHICLE_ID_PATTERN, "maxLength": 64},
        "example": "wheelchair_001",
    },
    "command_id": {
        "description": "A command id (assigned by the sender or the hub)",
        "schema": {
            "type": "string",
            "pattern": COMMAND_ID_PATTERN,
            "maxLength": COMMAND_ID_MAX_LENGTH,
        },
        "example": "cmd_12345",
    },
    "alert_id": {
        "description": "An alert id, as in the alert list or an `alert` frame",
        "schema": {"type": "string", "pattern": ALERT_ID_PATTERN},
        "example": "alert_3f9a1c2b4d5e6f70",
    },
    "mission_id": {
        "description": "A mission id (a dispatch's `mission.mission_id`)",
        "schema": {"type": "string", "pattern": MISSION_ID_PATTERN, "maxLength": 64},
        "example": "mission_67890",
    },
    "reservation_id": {
        "description": "A reservation id, as answered when it was booked",
        "schema": {"type": "string", "pattern": RESERVATION_ID_PATTERN},
        "example": "resv_3f9a0c1d2b4e5f60",
    },
}
"""Everything known about each path parameter, by name (OpenAPI parameter object fields)."""


def path_parameter(name: str) -> dict[str, Any]:
    """The OpenAPI parameter object of path parameter ``name`` (KeyError if undocumented)."""
    return {"name": name, "in": "path", "required": True, **PATH_PARAMETERS[name]}
