"""A vehicle's answer to a command (CONTRACT §6.3) and the statuses a command goes through.

Acks come from vehicles in the field, so the model is liberal where that costs nothing:
fields it does not know are ignored (a newer vehicle firmware may add some), and ``reason`` is
any short string (the known ones are listed in :data:`KNOWN_REJECTION_REASONS`). The fields it
knows keep strict types: a timestamp in the wrong form or a string for an object is refused,
since the hub would otherwise store or forward something it cannot read.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import ConfigDict, Field, JsonValue

from hub.contract.base import WireModel
from hub.contract.command_parts import COMMAND_ID_MAX_LENGTH, COMMAND_ID_PATTERN
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp

AckStatus = Literal["accepted", "rejected", "executed", "applied"]
"""What a vehicle may answer: accepted/rejected (dispatch, cancel, resume), executed
(emergency_stop, cancel), applied (configure)."""

CommandStatus = Literal[
    "queued", "sent", "accepted", "rejected", "executed", "applied", "timeout", "dropped", "expired"
]
"""Every status a command can be reported in (``command_status`` frames, the commands table)."""

ACK_STATUSES: frozenset[str] = frozenset(get_args(AckStatus))
FINAL_STATUSES: frozenset[str] = frozenset(
    {"rejected", "executed", "applied", "timeout", "dropped", "expired"}
)
"""Statuses after which nothing more happens to a command (``accepted`` may still execute)."""

KNOWN_REJECTION_REASONS: frozenset[str] = frozenset(
    {
        "battery_too_low",
        "already_on_mission",
        "in_error_state",
        "outside_operational_hours",
        "invalid_destination",
    }
)
"""The ``reason`` values the vehicle API defines for a rejection; others are accepted too."""


class CommandAck(WireModel):
    """``{"type": "command_ack", …}`` from a vehicle; repeated acks are idempotent."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "type": "command_ack",
                    "command_id": "cmd_12345",
                    "status": "accepted",
                    "estimated_arrival": EXAMPLE_TIMESTAMP,
                },
                {
                    "type": "command_ack",
                    "command_id": "cmd_12346",
                    "status": "rejected",
                    "reason": "battery_too_low",
                    "message": "Battery at 12 %, charging first",
                },
                {
                    "type": "command_ack",
                    "command_id": "cmd_ESTOP_34567",
                    "status": "executed",
                    "stopped_at": EXAMPLE_TIMESTAMP,
                    "location": {"latitude": 35.681236, "longitude": 139.767125},
                },
                {
                    "type": "command_ack",
                    "command_id": "cmd_56789",
                    "status": "applied",
                    "updated_config": {"max_speed": 0.8, "audio_volume": 75},
                },
            ]
        },
    )

    type: Literal["command_ack"]
    command_id: str = Field(pattern=COMMAND_ID_PATTERN, max_length=COMMAND_ID_MAX_LENGTH)
    status: AckStatus
    reason: str | None = Field(
        default=None,
        max_length=200,
        description="Why it was rejected: " + ", ".join(sorted(KNOWN_REJECTION_REASONS)),
    )
    message: str | None = Field(default=None, max_length=500)
    estimated_arrival: WireTimestamp | None = None
    stopped_at: JsonValue = Field(
        default=None, description="Where/when the vehicle stopped: a timestamp or an object"
    )
    location: dict[str, Any] | None = None
    updated_config: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ack as stored and reported in ``command_status``: known, non-null fields only."""
        return self.model_dump(mode="json", exclude_none=True)
