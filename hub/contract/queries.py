"""Query strings of the read endpoints, for the OpenAPI document (CONTRACT §7, §8).

The handlers read ``request.args`` themselves (with the parsers in ``actors.fleet_reads``,
``actors.missions`` and ``api.routes.alerts``); these models only describe what those parsers
accept, so that ``/openapi.json`` lists every parameter with its type, bounds and pattern.
Nothing validates a request against them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from hub.clock import TIMESTAMP_PATTERN
from hub.contract.base import VEHICLE_ID_PATTERN
from hub.contract.timestamps import EXAMPLE_TIMESTAMP

PAGE_LIMIT_MAX = 10_000
PAGE_LIMIT_DEFAULT = 100
MISSION_STATUS_FILTER_PATTERN = r"^[a-z_]{0,32}$"
VEHICLE_FILTER_PATTERN = f"^({VEHICLE_ID_PATTERN[1:-1]})?$"
"""A ``vehicle_id`` filter: a vehicle id, or empty for no filter."""
AUDIT_CURSOR_PATTERN = r"^[0-9]{0,18}$"
FLAG_PATTERN = r"^(|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0|[Yy][Ee][Ss]|[Nn][Oo])$"
"""A true/false parameter: true/false, 1/0 or yes/no in any case; empty means absent."""

_CURSOR_DESCRIPTION = (
    "The `next_cursor` of the previous page, unchanged (opaque; empty means the first page); "
    "any other value answers 400 `validation_error`."
)


_TIMESTAMP_SCHEMA: JsonDict = {
    "type": "string",
    "format": "date-time",
    "pattern": TIMESTAMP_PATTERN.pattern,
    "examples": [EXAMPLE_TIMESTAMP],
}


class _Query(BaseModel):
    """A documented query string: unknown parameters are ignored by every handler."""

    model_config = ConfigDict(populate_by_name=True)


class LimitQuery(_Query):
    """``limit`` alone (a vehicle's commands)."""

    limit: int = Field(
        default=PAGE_LIMIT_DEFAULT,
        ge=1,
        le=PAGE_LIMIT_MAX,
        description=f"Items per page, 1 to {PAGE_LIMIT_MAX:,} (default {PAGE_LIMIT_DEFAULT})",
    )


class PageQuery(LimitQuery):
    """Keyset pagination: ``limit`` and the previous page's ``cursor``."""

    cursor: str | None = Field(default=None, description=_CURSOR_DESCRIPTION)


class AuditQuery(LimitQuery):
    """``GET /api/v1/admin/audit``: the audit log is paged on its record id."""

    cursor: str | None = Field(
        default=None,
        pattern=AUDIT_CURSOR_PATTERN,
        description="The `next_cursor` of the previous page (a record id; empty: first page)",
    )


class HistoryQuery(PageQuery):
    """A vehicle's history: records with ``from <= timestamp <= to``, newest first."""

    from_: str | None = Field(
        default=None,
        alias="from",
        description="Oldest record timestamp to return (inclusive)",
        json_schema_extra=_TIMESTAMP_SCHEMA,
    )
    to: str | None = Field(
        default=None,
        description="Newest record timestamp to return (inclusive)",
        json_schema_extra=_TIMESTAMP_SCHEMA,
    )


class AlertQuery(PageQuery):
    """``GET /api/v1/alerts``: filters, newest first; an empty filter is no filter."""

    open: str | None = Field(
        default=None,
        pattern=FLAG_PATTERN,
        description="true: unacknowledged alerts only; false: acknowledged ones only; absent "
        "or empty: all. `1`/`0` and `yes`/`no` are read the same way, in any case.",
        examples=["true"],
    )
    vehicle_id: str | None = Field(
        default=None,
        pattern=VEHICLE_FILTER_PATTERN,
        description="Alerts of this vehicle only (empty: all)",
    )
    severity: Literal["", "info", "warning", "error", "critical"] | None = Field(
        default=None, description="Alerts of this severity only"
    )


class MissionQuery(PageQuery):
    """``GET /api/v1/missions``: filters, newest first; an empty filter is no filter."""

    vehicle_id: str | None = Field(
        default=None, pattern=VEHICLE_FILTER_PATTERN, description="Missions of this vehicle only"
    )
    status: str | None = Field(
        default=None,
        pattern=MISSION_STATUS_FILTER_PATTERN,
        description="Missions in this status only: dispatched, accepted, rejected, completed, "
        "failed or cancelled",
        examples=["dispatched"],
    )


class ReservationQuery(PageQuery):
    """``GET /api/v1/reservations``: filters, soonest first; an empty filter is no filter."""

    status: Literal["", "pending", "confirmed", "cancelled", "completed"] | None = Field(
        default=None, description="Reservations in this status only"
    )
    vehicle_id: str | None = Field(
        default=None,
        pattern=VEHICLE_FILTER_PATTERN,
        description="Reservations of this vehicle only",
    )
    from_: str | None = Field(
        default=None,
        alias="from",
        description="Earliest scheduled time (inclusive)",
        json_schema_extra=_TIMESTAMP_SCHEMA,
    )
    to: str | None = Field(
        default=None,
        description="Latest scheduled time (inclusive)",
        json_schema_extra=_TIMESTAMP_SCHEMA,
    )


class CommandWaitQuery(_Query):
    """``POST /api/v1/vehicle/{id}/commands``: whether to wait for the vehicle's answer."""

    wait: str | None = Field(
        default=None,
        pattern=FLAG_PATTERN,
        description="`false`, `0` or `no` (any case): answer 202 at once, without waiting for "
        "the vehicle. `true`, `1`, `yes`, empty or absent: wait up to 16 s for the command to "
        "settle. Anything else answers 400 `validation_error` and sends nothing.",
        examples=["false"],
    )
