"""Filters of the reading endpoints' query strings, checked before any query runs."""

from __future__ import annotations

import re

from hub.contract.base import VEHICLE_ID_PATTERN
from hub.contract.reservations import RESERVATION_STATUSES
from hub.contract.telemetry import Severity
from hub.errors import InvalidInputError

SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")
MISSION_STATUS = re.compile(r"^[a-z_]{1,32}$")
_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def vehicle_filter(value: str | None) -> str | None:
    """A ``vehicle_id`` filter; 400 ``validation_error`` if it cannot be a vehicle id."""
    if value is None or value == "":
        return None
    if not _VEHICLE_ID.match(value):
        raise InvalidInputError(
            "validation_error",
            f"vehicle_id must match {VEHICLE_ID_PATTERN}",
            field="vehicle_id",
            received_value=value,
        )
    return value


def flag(name: str, value: str | None) -> bool | None:
    """A true/false parameter (absent: None); 400 ``validation_error`` for anything else."""
    if value is None or value == "":
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidInputError(
        "validation_error", f"{name} must be true or false", field=name, received_value=value
    )


def severity_filter(value: str | None) -> str | None:
    """``severity``: one of info, warning, error, critical; 400 ``invalid_enum`` otherwise."""
    if value is None or value == "":
        return None
    if value not in SEVERITIES:
        raise InvalidInputError(
            "invalid_enum",
            f"severity must be one of {', '.join(SEVERITIES)}",
            field="severity",
            received_value=value,
        )
    return value


def mission_status_filter(value: str | None) -> str | None:
    """A mission ``status`` filter (``dispatched``, ``completed``…)."""
    if value is None or value == "":
        return None
    if not MISSION_STATUS.fullmatch(value):
        raise InvalidInputError(
            "validation_error",
            "status must be a mission status such as dispatched or completed",
            field="status",
            received_value=value,
        )
    return value


def reservation_status_filter(value: str | None) -> str | None:
    """A reservation ``status`` filter: one of the reservation statuses."""
    if value is None or value == "":
        return None
    if value not in RESERVATION_STATUSES:
        raise InvalidInputError(
            "invalid_enum",
            "status must be one of " + ", ".join(RESERVATION_STATUSES),
            field="status",
            received_value=value,
        )
    return value
