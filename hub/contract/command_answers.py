"""What the REST command endpoints answer (CONTRACT §6.3 hub additions), for the OpenAPI document.

``POST /api/v1/vehicle/{id}/commands`` answers the command's status once it settles (200) or
while it is still under way or queued (202). The fleet-wide stop answers one outcome per
vehicle named. The handlers build these bodies with plain dicts (``api.routes.commands``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from hub.contract.base import ResponseModel
from hub.contract.command_acks import CommandStatus

_ESTOP_ACK: JsonDict = {
    "type": "command_ack",
    "command_id": "cmd_ESTOP_34567",
    "status": "executed",
    "stopped_at": "2025-12-16T10:30:46.001Z",
}


class CommandOutcome(ResponseModel):
    """A command's status now; ``ack`` is the vehicle's latest answer (null until it answers)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "command_id": "cmd_12345",
                    "vehicle_id": "wheelchair_001",
                    "status": "accepted",
                    "ack": {"type": "command_ack", "command_id": "cmd_12345", "status": "accepted"},
                },
                {
                    "command_id": "cmd_23456",
                    "vehicle_id": "wheelchair_002",
                    "status": "queued",
                    "ack": None,
                },
            ]
        }
    )

    command_id: str
    vehicle_id: str
    status: CommandStatus
    ack: dict[str, Any] | None


class FleetStopFailure(ResponseModel):
    """A vehicle the stop could not be handed to (unknown id, or an internal fault)."""

    vehicle_id: str
    status: Literal["failed"]
    error: str = Field(description="The contract error code, e.g. `unknown_vehicle`")
    message: str


class FleetStopResults(ResponseModel):
    """One outcome per vehicle named, in the order given: ``executed`` once confirmed,
    ``queued`` for an offline vehicle, ``timeout`` after three unanswered sends, ``failed``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "command_id": "cmd_ESTOP_34567",
                            "vehicle_id": "wheelchair_001",
                            "status": "executed",
                            "ack": _ESTOP_ACK,
                        },
                        {
                            "command_id": "cmd_ESTOP_34568",
                            "vehicle_id": "wheelchair_002",
                            "status": "queued",
                            "ack": None,
                        },
                        {
                            "vehicle_id": "wheelchair_404",
                            "status": "failed",
                            "error": "unknown_vehicle",
                            "message": "Vehicle wheelchair_404 is not registered",
                        },
                    ]
                }
            ]
        }
    )

    results: list[CommandOutcome | FleetStopFailure]
