"""Telemetry bodies a vehicle POSTs (CONTRACT §3), one model per kind.

Field order is the contract's document order; validation errors are reported in that order.
Every model starts with ``timestamp`` (a :data:`~hub.contract.timestamps.WireTimestamp`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from hub.contract.base import INTEGRAL, WireModel
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp, wire_text

TelemetryKind = Literal["location", "status", "battery", "error", "docking"]
VehicleState = Literal["idle", "navigating", "docking", "charging", "error", "emergency_stop"]
Severity = Literal["info", "warning", "error", "critical"]
Subsystem = Literal["navigation", "docking", "perception", "power", "safety", "hardware"]
DockingPhase = Literal[
    "approaching",
    "marker_detection",
    "visual_servoing",
    "final_approach",
    "attachment",
    "success",
    "failed",
]

INT32_MAX = 2_147_483_647
"""Upper bound for counters the contract leaves open (they are stored as 32-bit integers)."""

MISSION_ID_PATTERN = r"^mission_[a-zA-Z0-9]+$"
ERROR_CODE_PATTERN = r"^[A-Z_]+$"

LOCATION_EXAMPLE: JsonDict = {
    "latitude": 35.681236,
    "longitude": 139.767125,
    "altitude": 45.5,
    "heading": 90.5,
    "speed": 0.8,
    "accuracy": 0.15,
}
BATTERY_EXAMPLE: JsonDict = {
    "soc_percent": 85.5,
    "voltage": 52.3,
    "current": -8.2,
    "temperature": 32.5,
    "charging": False,
    "estimated_runtime_minutes": 180,
    "health_percent": 95.0,
}


class TelemetryModel(WireModel):
    """Common head of every telemetry body: the vehicle-side ``timestamp``."""

    kind: ClassVar[TelemetryKind]

    timestamp: WireTimestamp

    @property
    def timestamp_text(self) -> str:
        """The timestamp exactly as the vehicle sent it."""
        return wire_text(self.timestamp)


class Location(WireModel):
    """A position fix: WGS84 degrees, metres, m/s, degrees clockwise from true north."""

    model_config = ConfigDict(json_schema_extra={"examples": [LOCATION_EXAMPLE]})

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude: float | None = None
    heading: float = Field(ge=0, le=360)
    speed: float = Field(ge=0, le=2.0)
    accuracy: float = Field(ge=0, le=1.0)


class ErrorLocation(WireModel):
    """Where an error happened: only latitude/longitude are required."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"latitude": 35.681236, "longitude": 139.767125}]}
    )

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    altitude: float | None = None
    heading: float | None = Field(default=None, ge=0, le=360)
    speed: float | None = Field(default=None, ge=0, le=2.0)
    accuracy: float | None = Field(default=None, ge=0, le=1.0)


class LocationUpdate(TelemetryModel):
    """``POST /api/v1/vehicle/{id}/location``."""

    kind: ClassVar[TelemetryKind] = "location"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"timestamp": EXAMPLE_TIMESTAMP, "location": LOCATION_EXAMPLE}]
        }
    )

    location: Location


class StatusDetails(WireModel):
    """Mission progress attached to a status report; every key optional."""

    progress_percent: float | None = Field(default=None, ge=0, le=100)
    eta_seconds: Annotated[int, Field(ge=0, le=INT32_MAX), INTEGRAL] | None = None
    distance_remaining_meters: float | None = Field(default=None, ge=0)


class StatusUpdate(TelemetryModel):
    """``POST /api/v1/vehicle/{id}/status``."""

    kind: ClassVar[TelemetryKind] = "status"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timestamp": EXAMPLE_TIMESTAMP,
                    "state": "navigating",
                    "mission_id": "mission_12345",
                    "current_waypoint": "room_201",
                    "passengers_onboard": True,
                    "operational_hours": True,
                    "details": {
                        "progress_percent": 65.5,
                        "eta_seconds": 180,
                        "distance_remaining_meters": 145.2,
                    },
                }
            ]
        }
    )

    state: VehicleState
    mission_id: str | None = Field(default=None, pattern=MISSION_ID_PATTERN, max_length=64)
    current_waypoint: str | None = Field(default=None, max_length=200)
    passengers_onboard: bool
    operational_hours: bool
    details: StatusDetails | None = None


class Battery(WireModel):
    """A battery reading: %, V, A (negative = discharging), °C."""

    model_config = ConfigDict(json_schema_extra={"examples": [BATTERY_EXAMPLE]})

    soc_percent: float = Field(ge=0, le=100)
    voltage: float = Field(gt=0, le=100)
    current: float = Field(ge=-100, le=100)
    temperature: float = Field(ge=-20, le=80)
    charging: bool
    estimated_runtime_minutes: Annotated[int, Field(ge=0, le=INT32_MAX), INTEGRAL] | None = None
    health_percent: float | None = Field(default=None, ge=0, le=100)


class BatteryUpdate(TelemetryModel):
    """``POST /api/v1/vehicle/{id}/battery``."""

    kind: ClassVar[TelemetryKind] = "battery"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"timestamp": EXAMPLE_TIMESTAMP, "battery": BATTERY_EXAMPLE}]
        }
    )

    battery: Battery


class ErrorReport(TelemetryModel):
    """``POST /api/v1/vehicle/{id}/error``: a fault the vehicle reports (never thrown away)."""

    kind: ClassVar[TelemetryKind] = "error"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timestamp": EXAMPLE_TIMESTAMP,
                    "error_code": "NAV_OBSTACLE_BLOCKED",
                    "severity": "warning",
                    "subsystem": "navigation",
                    "location": {"latitude": 35.681236, "longitude": 139.767125},
                    "description": "Path blocked, rerouting",
                    "recovery_action": "rerouting",
                    "user_action_required": False,
                }
            ]
        }
    )

    error_code: str = Field(pattern=ERROR_CODE_PATTERN, max_length=64)
    severity: Severity
    subsystem: Subsystem
    location: ErrorLocation | None = None
    description: str | None = Field(default=None, max_length=500)
    recovery_action: str | None = Field(default=None, max_length=200)
    user_action_required: bool = False


class DockingDetails(WireModel):
    """What the docking camera sees; every key optional."""

    marker_visible: bool | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)


class DockingUpdate(TelemetryModel):
    """``POST /api/v1/vehicle/{id}/docking``."""

    kind: ClassVar[TelemetryKind] = "docking"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "timestamp": EXAMPLE_TIMESTAMP,
                    "phase": "visual_servoing",
                    "marker_id": 42,
                    "distance_to_marker_meters": 0.85,
                    "alignment_error_degrees": 2.3,
                    "docking_success": False,
                    "attempts": 1,
                    "details": {"marker_visible": True, "confidence": 0.95},
                }
            ]
        }
    )

    phase: DockingPhase
    marker_id: Annotated[int, Field(ge=0, le=999), INTEGRAL] | None = None
    distance_to_marker_meters: float | None = Field(default=None, ge=0, le=10)
    alignment_error_degrees: float | None = Field(default=None, ge=0, le=180)
    docking_success: bool = False
    attempts: Annotated[int, Field(ge=0, le=INT32_MAX), INTEGRAL] | None = None
    details: DockingDetails | None = None

    @field_validator("docking_success")
    @classmethod
    def _success_only_in_success_phase(cls, value: bool, info: ValidationInfo) -> bool:
        """``docking_success`` may be true only with phase ``success``."""
        phase = info.data.get("phase")
        if value and phase is not None and phase != "success":
            raise PydanticCustomError(
                "validation_error", "may be true only when phase is 'success'"
            )
        return value


TelemetryRecord = LocationUpdate | StatusUpdate | BatteryUpdate | ErrorReport | DockingUpdate
"""Any one validated telemetry body."""

TELEMETRY_MODELS: dict[TelemetryKind, type[TelemetryRecord]] = {
    "location": LocationUpdate,
    "status": StatusUpdate,
    "battery": BatteryUpdate,
    "error": ErrorReport,
    "docking": DockingUpdate,
}
"""The body model of each telemetry kind (the ``<kind>`` path segment and bulk ``type``)."""
