"""Bodies the hub answers with, for OpenAPI and for building answers in one place.

``model_dump(mode="json")`` gives the contract's body exactly: optional keys the contract
shows only sometimes (``duplicate``, battery ``message``…) are left out when ``None``, while
keys the contract shows as ``null`` (battery ``warning``, ``alert_id``) stay.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from hub.contract.base import ResponseModel
from hub.contract.telemetry import (
    BATTERY_EXAMPLE,
    LOCATION_EXAMPLE,
    Battery,
    DockingPhase,
    Location,
    VehicleState,
)
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp


def _omit_none(value: Any) -> bool:
    """``exclude_if`` hook: leave the key out of the body when it holds ``None``."""
    return value is None


_DUPLICATE_DESCRIPTION = "true when this exact record was already stored (nothing new stored)"


class ErrorBody(ResponseModel):
    """The flat error body of every REST refusal (``error``, ``message``, ``field``…)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "invalid_location",
                    "message": "latitude must be between -90 and 90",
                    "field": "location.latitude",
                    "received_value": 95.123,
                    "timestamp": "2025-12-16T10:30:45.234Z",
                    "request_id": "3f1c2a9e-8d7b-4c6a-9e21-0b5d4f7a8c31",
                    "details": {
                        "errors": [
                            {
                                "field": "location.latitude",
                                "error": "invalid_location",
                                "message": "latitude must be between -90 and 90",
                            }
                        ]
                    },
                }
            ]
        }
    )

    error: str
    message: str
    field: str | None = Field(default=None, exclude_if=_omit_none)
    received_value: Any = Field(default=None, description="what the client sent at `field`")
    timestamp: WireTimestamp
    request_id: str | None = Field(default=None, exclude_if=_omit_none)
    details: dict[str, Any] | None = Field(default=None, exclude_if=_omit_none)
    retry_after: int | None = Field(
        default=None, exclude_if=_omit_none, description="429 only: seconds to wait"
    )


class RateLimitedBody(ResponseModel):
    """The 429 body: the flat error body, with ``retry_after`` (seconds) always present."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "rate_limit_exceeded",
                    "message": "Too many requests. Please wait 1 seconds.",
                    "retry_after": 1,
                    "timestamp": EXAMPLE_TIMESTAMP,
                    "request_id": "3f1c2a9e8d7b4c6a9e210b5d4f7a8c31",
                }
            ]
        }
    )

    error: Literal["rate_limit_exceeded"]
    message: str
    retry_after: int = Field(ge=0, description="Seconds to wait (also in `Retry-After`)")
    timestamp: WireTimestamp
    request_id: str | None = Field(default=None, exclude_if=_omit_none)


class TelemetryAccepted(ResponseModel):
    """The 200 of location, status and docking reports."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "received_at": EXAMPLE_TIMESTAMP}]}
    )

    status: Literal["ok"] = "ok"
    received_at: WireTimestamp
    duplicate: bool | None = Field(
        default=None, exclude_if=_omit_none, description=_DUPLICATE_DESCRIPTION
    )


class BatteryAccepted(ResponseModel):
    """The 200 of a battery report; ``warning`` is ``low_battery`` or ``null``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "received_at": EXAMPLE_TIMESTAMP,
                    "warning": "low_battery",
                    "message": "Battery at 25%, return to base",
                    "recommended_action": "return_to_base",
                },
                {"status": "ok", "received_at": EXAMPLE_TIMESTAMP, "warning": None},
            ]
        }
    )

    status: Literal["ok"] = "ok"
    received_at: WireTimestamp
    warning: Literal["low_battery"] | None = None
    message: str | None = Field(default=None, exclude_if=_omit_none)
    recommended_action: str | None = Field(default=None, exclude_if=_omit_none)
    duplicate: bool | None = Field(
        default=None, exclude_if=_omit_none, description=_DUPLICATE_DESCRIPTION
    )


class ErrorReportAccepted(ResponseModel):
    """The 200 of an error report: whether staff were alerted."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "acknowledged",
                    "received_at": EXAMPLE_TIMESTAMP,
                    "alert_id": "alert_7f3a9c",
                    "action": "alert_staff",
                    "staff_notified": True,
                },
                {
                    "status": "acknowledged",
                    "received_at": EXAMPLE_TIMESTAMP,
                    "alert_id": None,
                    "action": "logged",
                    "staff_notified": False,
                    "warning": "unknown_error_code",
                },
            ]
        }
    )

    status: Literal["acknowledged"] = "acknowledged"
    received_at: WireTimestamp
    alert_id: str | None
    action: Literal["alert_staff", "logged"]
    staff_notified: bool
    warning: Literal["unknown_error_code"] | None = Field(default=None, exclude_if=_omit_none)
    duplicate: bool | None = Field(
        default=None, exclude_if=_omit_none, description=_DUPLICATE_DESCRIPTION
    )


class BulkAccepted(ResponseModel):
    """The 200 of a bulk upload."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "messages_received": 247,
                    "messages_processed": 247,
                    "inserted": 240,
                    "skipped_duplicates": 7,
                    "offline_duration_seconds": 300,
                }
            ]
        }
    )

    status: Literal["ok"] = "ok"
    messages_received: int
    messages_processed: int
    inserted: int
    skipped_duplicates: int
    offline_duration_seconds: int | None


_SUMMARY_EXAMPLE: JsonDict = {
    "vehicle_id": "wheelchair_001",
    "name": "Ward 3 chair",
    "connected": True,
    "last_seen": EXAMPLE_TIMESTAMP,
    "state": "navigating",
    "mission_id": "mission_12345",
    "location": LOCATION_EXAMPLE,
    "battery": BATTERY_EXAMPLE,
    "docking_phase": None,
    "open_alerts": 0,
}


class VehicleSummary(ResponseModel):
    """One vehicle with its latest known state (``GET /api/v1/vehicle/{id}``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUMMARY_EXAMPLE]})

    vehicle_id: str
    name: str
    connected: bool
    last_seen: WireTimestamp | None
    state: VehicleState | None
    mission_id: str | None
    location: Location | None
    battery: Battery | None
    docking_phase: DockingPhase | None = Field(
        description="Phase of the latest docking report; null before the first one"
    )
    open_alerts: int = Field(ge=0, description="Unacknowledged alerts of this vehicle")


class VehicleList(ResponseModel):
    """``GET /api/v1/vehicles``: the whole fleet."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"vehicles": [_SUMMARY_EXAMPLE]}]})

    vehicles: list[VehicleSummary]


class HistoryPage(ResponseModel):
    """One page of a vehicle's history, newest first; follow ``next_cursor`` for older rows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"timestamp": EXAMPLE_TIMESTAMP, "location": LOCATION_EXAMPLE}],
                    "next_cursor": "MjAyNS0xMi0xNlQxMDozMDo0NS4xMjNa",
                }
            ]
        }
    )

    items: list[dict[str, Any]]
    next_cursor: str | None


class Health(ResponseModel):
    """``GET /health``: overall status and each component's."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "components": {
                        "database": {"status": "ok", "latency_ms": 1.8},
                        "redis": "disabled",
                        "actors": {"status": "ok", "live": 42, "restarts": 0},
                    },
                }
            ]
        }
    )

    status: Literal["ok", "degraded", "down"]
    components: dict[str, Any]


class Liveness(ResponseModel):
    """``GET /health/live``: the process answers at all."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class Readiness(ResponseModel):
    """``GET /health/ready``: ``ok`` when requests can be served, ``down`` otherwise (503)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok", "database": "ok"}, {"status": "down", "database": "down"}]
        }
    )

    status: Literal["ok", "down"]
    database: str = Field(description="The database's status: ok, or why it is not")


class VehicleDisabled(ResponseModel):
    """``DELETE /api/v1/admin/vehicles/{id}``: the vehicle is disabled; its history is kept."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"vehicle_id": "wheelchair_001", "enabled": False}]}
    )

    vehicle_id: str
    enabled: Literal[False]


class VehicleEnabled(ResponseModel):
    """``POST /api/v1/admin/vehicles/{id}/enable``: the vehicle may log in and report again."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"vehicle_id": "wheelchair_001", "enabled": True}]}
    )

    vehicle_id: str
    enabled: Literal[True]


class WorkerIdentity(ResponseModel):
    """Which hub process answered: its worker number under ``serve --workers N``, its pid."""

    id: int | None = Field(
        description="0 to N - 1 under ``serve --workers N`` (TVM_WORKER_ID); null when the hub"
        " runs as one process"
    )
    pid: int = Field(description="The answering process's id")


class ActorList(ResponseModel):
    """``GET /debug/actors``: every live actor; the keys beyond ``kind`` depend on the kind."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "worker": {"id": 0, "pid": 4242},
                    "actors": [
                        {
                            "kind": "vehicle",
                            "key": "wheelchair_001",
                            "mailbox_depth": 0,
                            "restarts": 0,
                            "connected": True,
                            "queue_depth": 0,
                        }
                    ],
                }
            ]
        }
    )

    worker: WorkerIdentity
    actors: list[dict[str, Any]]
