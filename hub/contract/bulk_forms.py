"""The bulk upload body as `parse_bulk` accepts it, for the OpenAPI document.

``BulkUpload`` in :mod:`hub.contract.bulk` leaves each message's ``data`` an open object,
because :func:`~hub.contract.bulk.parse_bulk` checks it with the kind's own model. This module
says what that check accepts: 1 to 1000 messages, each ``type`` with its kind's body without
``timestamp`` as ``data`` (for ``location`` and ``battery`` also the inner object alone), and
the message ``timestamp`` at most 30 days old. Nothing parses with these models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from hub.contract.base import VEHICLE_ID_PATTERN, WireModel
from hub.contract.bulk import BULK_MAX_MESSAGES, BulkUpload, OfflinePeriod
from hub.contract.telemetry import (
    Battery,
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    Location,
    LocationUpdate,
    StatusUpdate,
)
from hub.contract.timestamps import WireTimestamp

_TIMESTAMP_DESCRIPTION = "When the vehicle recorded it: at most 30 days old, at most 5 s ahead"


def _without_timestamp(model: type[BaseModel]) -> type[WireModel]:
    """``model``'s body without ``timestamp`` (it travels on the message)."""
    fields: dict[str, Any] = {
        name: (field.annotation, field)
        for name, field in model.model_fields.items()
        if name != "timestamp"
    }
    name = model.__name__.removesuffix("Update").removesuffix("Report") + "Data"
    data: type[WireModel] = create_model(name, __base__=WireModel, __doc__=model.__doc__, **fields)
    return data


LocationData = _without_timestamp(LocationUpdate)
StatusData = _without_timestamp(StatusUpdate)
BatteryData = _without_timestamp(BatteryUpdate)
ErrorData = _without_timestamp(ErrorReport)
DockingData = _without_timestamp(DockingUpdate)


class LocationMessage(WireModel):
    """A buffered location report (``data`` may be the location object itself)."""

    type: Literal["location"]
    timestamp: WireTimestamp = Field(description=_TIMESTAMP_DESCRIPTION)
    data: LocationData | Location  # type: ignore[valid-type]


class StatusMessage(WireModel):
    """A buffered status report (transition rules are not applied to history)."""

    type: Literal["status"]
    timestamp: WireTimestamp = Field(description=_TIMESTAMP_DESCRIPTION)
    data: StatusData  # type: ignore[valid-type]


class BatteryMessage(WireModel):
    """A buffered battery report (``data`` may be the battery object itself)."""

    type: Literal["battery"]
    timestamp: WireTimestamp = Field(description=_TIMESTAMP_DESCRIPTION)
    data: BatteryData | Battery  # type: ignore[valid-type]


class ErrorMessage(WireModel):
    """A buffered error report; severity error or critical raises a backfilled alert."""

    type: Literal["error"]
    timestamp: WireTimestamp = Field(description=_TIMESTAMP_DESCRIPTION)
    data: ErrorData  # type: ignore[valid-type]


class DockingMessage(WireModel):
    """A buffered docking report."""

    type: Literal["docking"]
    timestamp: WireTimestamp = Field(description=_TIMESTAMP_DESCRIPTION)
    data: DockingData  # type: ignore[valid-type]


BulkMessageForm = Annotated[
    LocationMessage | StatusMessage | BatteryMessage | ErrorMessage | DockingMessage,
    Field(discriminator="type"),
]


class BulkBody(WireModel):
    """``POST /api/v1/vehicle/{id}/bulk``: what the vehicle recorded while offline.

    A body ``vehicle_id``, if sent, must equal the path's (400 ``vehicle_id_mismatch``); more
    than 1000 messages answer 400 ``bulk_too_large``.
    """

    model_config = ConfigDict(json_schema_extra=BulkUpload.model_config.get("json_schema_extra"))

    vehicle_id: str | None = Field(default=None, pattern=VEHICLE_ID_PATTERN)
    offline_period: OfflinePeriod | None = Field(
        default=None, description="When the vehicle was offline; `end` not before `start`"
    )
    messages: list[BulkMessageForm] = Field(min_length=1, max_length=BULK_MAX_MESSAGES)
