"""Telemetry frames a vehicle sends on its socket (CONTRACT §6.1), for the AsyncAPI document.

A telemetry frame is the REST body of its kind plus ``"type": "<kind>"``; the hub parses it
with the REST model (:func:`hub.contract.ws.parse_vehicle_frame`). These models exist only
to publish that shape; each is the REST model with the ``type`` it travels under.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from hub.contract.telemetry import (
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    StatusUpdate,
    TelemetryKind,
)


def _frame_examples(kind: str, model: type[BaseModel]) -> ConfigDict:
    """The REST model's first example, as a frame of ``kind``."""
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list) and isinstance(examples[0], dict)
    frame: dict[str, Any] = {"type": kind, **examples[0]}
    return ConfigDict(json_schema_extra={"examples": [frame]})


class LocationFrame(LocationUpdate):
    """A location report over the socket; answered ``telemetry_ack`` or ``error``."""

    model_config = _frame_examples("location", LocationUpdate)

    type: Literal["location"]


class StatusFrame(StatusUpdate):
    """A status report over the socket; answered ``telemetry_ack`` or ``error``."""

    model_config = _frame_examples("status", StatusUpdate)

    type: Literal["status"]


class BatteryFrame(BatteryUpdate):
    """A battery report over the socket; answered ``telemetry_ack`` or ``error``."""

    model_config = _frame_examples("battery", BatteryUpdate)

    type: Literal["battery"]


class ErrorReportFrame(ErrorReport):
    """An error report over the socket; answered ``telemetry_ack`` or ``error``."""

    model_config = _frame_examples("error", ErrorReport)

    type: Literal["error"]


class DockingFrame(DockingUpdate):
    """A docking report over the socket; answered ``telemetry_ack`` or ``error``."""

    model_config = _frame_examples("docking", DockingUpdate)

    type: Literal["docking"]


TELEMETRY_FRAME_MODELS: dict[TelemetryKind, type[BaseModel]] = {
    "location": LocationFrame,
    "status": StatusFrame,
    "battery": BatteryFrame,
    "error": ErrorReportFrame,
    "docking": DockingFrame,
}
"""The frame model of each telemetry kind, by its ``type``."""
