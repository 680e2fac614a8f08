"""What a simulated vehicle emits: telemetry bodies and command acks, built with the wire models.

Every body goes through its pydantic model from :mod:`hub.contract`, so a simulator that drifts
from the contract fails here, in its own process, instead of at the hub.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.clock import format_timestamp, utc_now
from hub.contract.command_acks import CommandAck
from hub.contract.telemetry import TELEMETRY_MODELS, TelemetryKind

ONE_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One telemetry record: the ``<kind>`` path segment and its REST body (with timestamp)."""

    kind: TelemetryKind
    body: dict[str, Any]

    @property
    def timestamp(self) -> str:
        """The record's wire timestamp."""
        return str(self.body["timestamp"])


@dataclass(frozen=True, slots=True)
class Ack:
    """A ``command_ack`` frame to send on the vehicle socket."""

    frame: dict[str, Any]


Emission = Telemetry | Ack
"""Anything the vehicle model hands to its I/O side."""


class Stamper:
    """Wire timestamps from a wall clock, strictly increasing even if the clock is not."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._last: datetime | None = None

    def now(self) -> datetime:
        """The clock's current time, without reserving it."""
        return self._clock()

    def next(self) -> str:
        """A timestamp later than every one handed out before."""
        moment = self._clock()
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if self._last is not None and moment <= self._last:
            moment = self._last + ONE_MILLISECOND
        self._last = moment
        return format_timestamp(moment)

    def after(self, seconds: float) -> str:
        """The wall time ``seconds`` from now (for an estimated arrival)."""
        return format_timestamp(self._clock() + timedelta(seconds=seconds))


def telemetry(kind: TelemetryKind, timestamp: str, fields: dict[str, Any]) -> Telemetry:
    """A record of ``kind``, validated by its wire model and dumped as the REST body."""
    model = TELEMETRY_MODELS[kind].model_validate({"timestamp": timestamp, **fields})
    return Telemetry(kind=kind, body=model.model_dump(mode="json", exclude_none=True))


def ack(command_id: str, status: str, **fields: Any) -> Ack:
    """A ``command_ack`` frame, validated by :class:`~hub.contract.command_acks.CommandAck`."""
    model = CommandAck.model_validate(
        {"type": "command_ack", "command_id": command_id, "status": status, **fields}
    )
    return Ack(frame={"type": "command_ack", **model.as_dict()})
