"""Operations bodies (CONTRACT §8, TVM-DB-SCHEMA-002, TVM-API-BAT-003): reservations in and
out, and the mission and battery-health answers read beside them.

Request models are strict (unknown fields and type coercion refused); validation errors come
out in the contract's flat shape through :func:`hub.contract.validation.parse_model` —
latitude/longitude → ``invalid_location``, ``status`` → ``invalid_enum``, ``scheduled_time``
→ ``invalid_timestamp``, anything else → ``validation_error``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from hub.contract.base import VEHICLE_ID_PATTERN, ResponseModel, WireModel
from hub.contract.command_parts import WaypointId
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp

ReservationStatus = Literal["pending", "confirmed", "cancelled", "completed"]
RESERVATION_STATUSES: tuple[str, ...] = ("pending", "confirmed", "cancelled", "completed")
RESERVATION_ID_PATTERN = r"^resv_[0-9a-f]{16}$"

_PICKUP_EXAMPLE: JsonDict = {
    "waypoint_id": "lobby_entrance",
    "latitude": 35.6811,
    "longitude": 139.767,
}
_DESTINATION_EXAMPLE: JsonDict = {
    "waypoint_id": "room_201",
    "latitude": 35.682456,
    "longitude": 139.768234,
}
_CREATE_EXAMPLE: JsonDict = {
    "passenger_name": "Hanako Sato",
    "pickup": _PICKUP_EXAMPLE,
    "destination": _DESTINATION_EXAMPLE,
    "scheduled_time": EXAMPLE_TIMESTAMP,
    "vehicle_id": "wheelchair_001",
}
_RESERVATION_EXAMPLE: JsonDict = {
    "reservation_id": "resv_3f9a0c1d2b4e5f60",
    "passenger_name": "Hanako Sato",
    "pickup": _PICKUP_EXAMPLE,
    "destination": _DESTINATION_EXAMPLE,
    "scheduled_time": EXAMPLE_TIMESTAMP,
    "status": "pending",
    "vehicle_id": "wheelchair_001",
    "mission_id": "mission_3f9a0c1d2b4e5f60",
    "mission_status": None,
    "created_by": "op.tanaka",
    "created_at": "2025-12-16T09:00:00.000Z",
    "updated_at": "2025-12-16T09:00:00.000Z",
}
_MISSION_EXAMPLE: JsonDict = {
    "mission_id": "mission_3f9a0c1d2b4e5f60",
    "vehicle_id": "wheelchair_001",
    "reservation_id": "resv_3f9a0c1d2b4e5f60",
    "status": "dispatched",
    "priority": "normal",
    "pickup": {**_PICKUP_EXAMPLE, "action": "dock_wheelchair"},
    "destination": {**_DESTINATION_EXAMPLE, "action": "undock_wheelchair"},
    "scheduled_time": EXAMPLE_TIMESTAMP,
    "start_time": None,
    "end_time": None,
    "created_at": "2025-12-16T10:25:00.000Z",
    "updated_at": "2025-12-16T10:25:00.000Z",
}


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("validation_error", "must not be null")
    return value


class ReservationPlace(WireModel):
    """A named place on the site map with its coordinates."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PICKUP_EXAMPLE]})

    waypoint_id: WaypointId
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class ReservationCreate(WireModel):
    """``POST /api/v1/reservations``: book a transport (a new reservation is ``pending``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE_EXAMPLE]})

    passenger_name: str = Field(min_length=1, max_length=200)
    pickup: ReservationPlace
    destination: ReservationPlace
    scheduled_time: WireTimestamp
    vehicle_id: str | None = Field(default=None, pattern=VEHICLE_ID_PATTERN)


class ReservationUpdate(WireModel):
    """``PATCH /api/v1/reservations/{id}``: change the time, the vehicle (null unassigns) or
    the status; at least one of them.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "confirmed", "vehicle_id": "wheelchair_002"},
                {"scheduled_time": EXAMPLE_TIMESTAMP},
            ]
        }
    )

    scheduled_time: WireTimestamp | None = None
    vehicle_id: str | None = Field(default=None, pattern=VEHICLE_ID_PATTERN)
    status: ReservationStatus | None = None

    @field_validator("scheduled_time", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Only ``vehicle_id`` may be null (to unassign the vehicle)."""
        return _refuse_null(value)

    @model_validator(mode="after")
    def _something_to_change(self) -> ReservationUpdate:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "validation_error", "must set at least one of scheduled_time, vehicle_id, status"
            )
        return self


class Reservation(ResponseModel):
    """A reservation; ``mission_id`` is the mission id a dispatch for it must use, and
    ``mission_status`` that mission's status once dispatched (else null).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_RESERVATION_EXAMPLE]})

    reservation_id: str
    passenger_name: str | None
    pickup: dict[str, Any]
    destination: dict[str, Any]
    scheduled_time: str
    status: ReservationStatus
    vehicle_id: str | None
    mission_id: str
    mission_status: str | None
    created_by: str | None
    created_at: str
    updated_at: str


class ReservationPage(ResponseModel):
    """Reservations soonest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_RESERVATION_EXAMPLE], "next_cursor": None}]}
    )

    items: list[Reservation]
    next_cursor: str | None


class Mission(ResponseModel):
    """A mission created by a dispatch command, with its life-cycle times."""

    model_config = ConfigDict(json_schema_extra={"examples": [_MISSION_EXAMPLE]})

    mission_id: str
    vehicle_id: str
    reservation_id: str | None
    status: str
    priority: str
    pickup: dict[str, Any] | None
    destination: dict[str, Any] | None
    scheduled_time: str | None
    start_time: str | None
    end_time: str | None
    created_at: str
    updated_at: str


class MissionPage(ResponseModel):
    """Missions newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_MISSION_EXAMPLE], "next_cursor": None}]}
    )

    items: list[Mission]
    next_cursor: str | None


class VoltageSample(ResponseModel):
    """The mean resting voltage of one UTC day."""

    date: str
    volts: float


class RestingVoltage(ResponseModel):
    """Daily resting-voltage means and their least-squares slope (null before two days)."""

    samples: list[VoltageSample]
    trend_volts_per_day: float | None


class BatteryHealth(ResponseModel):
    """``GET /api/v1/vehicle/{id}/battery/health``: equivalent full cycles (100 % of SoC
    discharged = one) and the resting-voltage trend; ``updated_at`` is the newest reading
    counted.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "vehicle_id": "wheelchair_001",
                    "cycle_count": 412,
                    "discharge_accumulated_percent": 41237.5,
                    "resting_voltage": {
                        "samples": [
                            {"date": "2025-12-15", "volts": 52.61},
                            {"date": "2025-12-16", "volts": 52.58},
                        ],
                        "trend_volts_per_day": -0.03,
                    },
                    "updated_at": EXAMPLE_TIMESTAMP,
                }
            ]
        }
    )

    vehicle_id: str
    cycle_count: int
    discharge_accumulated_percent: float
    resting_voltage: RestingVoltage
    updated_at: str | None
