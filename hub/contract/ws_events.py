"""Builders of the frames the hub sends on its sockets (CONTRACT §6.1, §6.2).

These run for every event to every subscriber, so they are plain functions returning plain
dicts: no pydantic, no clock, no copying beyond the frame itself. Timestamps are passed in as
wire text (``hub.clock.format_timestamp``); payload mappings are JSON-ready values (the body a
vehicle sent, a stored row) and are not validated again. The models in
:mod:`hub.contract.ws_frames` document each frame; the tests check the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from hub.contract.errors import ContractError
from hub.contract.telemetry import TelemetryKind
from hub.contract.ws_frames import EVENT_TYPES, PROTOCOL_VERSION

__all__ = [
    "alert",
    "battery_update",
    "command_status",
    "contract_error_frame",
    "docking_update",
    "error_frame",
    "error_report",
    "location_update",
    "ping",
    "pong",
    "status_update",
    "subscribed",
    "telemetry_ack",
    "telemetry_event",
    "vehicle_connection",
    "welcome",
]

# Keys an event sets itself; the same keys in a payload (a frame's "type", the body's
# "timestamp") never override them.
_ENVELOPE_KEYS = frozenset({"type", "vehicle_id", "seq", "timestamp"})


def welcome(vehicle_id: str, server_time: str, ping_interval_seconds: float) -> dict[str, Any]:
    """The first frame on an authenticated vehicle socket."""
    interval: float = ping_interval_seconds
    if isinstance(interval, float) and interval.is_integer():
        interval = int(interval)
    return {
        "type": "welcome",
        "vehicle_id": vehicle_id,
        "server_time": server_time,
        "protocol_version": PROTOCOL_VERSION,
        "ping_interval_seconds": interval,
    }


def ping(timestamp: str) -> dict[str, Any]:
    """A heartbeat ping; the peer answers ``pong``."""
    return {"type": "ping", "timestamp": timestamp}


def pong(timestamp: str) -> dict[str, Any]:
    """The answer to a ``ping`` (``timestamp`` is the answerer's clock)."""
    return {"type": "pong", "timestamp": timestamp}


def error_frame(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """``{"type": "error", "code", "message", …extra}``; ``code`` is a REST error code."""
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    frame.update(extra)
    return frame


def contract_error_frame(error: ContractError) -> dict[str, Any]:
    """The error frame for a refusal: the REST body's code, field and received value (bounded).

    A refusal that says when to try again (rate limits, a full backlog) adds ``retry_after``.
    """
    fields = error.fields()
    frame = error_frame(fields.pop("error"), fields.pop("message"))
    frame.update(fields)
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int):
        frame["retry_after"] = retry_after
    return frame


def telemetry_ack(kind: str, timestamp: str, status: Literal["ok", "duplicate"]) -> dict[str, Any]:
    """The answer to a telemetry frame: ``timestamp`` is the record's own."""
    return {"type": "telemetry_ack", "kind": kind, "timestamp": timestamp, "status": status}


def subscribed(
    vehicle_ids: Iterable[str],
    snapshot: Iterable[Mapping[str, Any]],
    replayed: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The answer to ``subscribe``; ``replayed`` only when the client sent ``since``."""
    frame: dict[str, Any] = {
        "type": "subscribed",
        "vehicle_ids": list(vehicle_ids),
        "snapshot": list(snapshot),
    }
    if replayed is not None:
        frame["replayed"] = dict(replayed)
    return frame


def command_status(
    command_id: str, vehicle_id: str, status: str, ack: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A command's new status (``queued``, ``sent``, … ``expired``) with the vehicle's ack."""
    return {
        "type": "command_status",
        "command_id": command_id,
        "vehicle_id": vehicle_id,
        "status": status,
        "ack": None if ack is None else dict(ack),
    }


def vehicle_connection(
    vehicle_id: str, connected: bool, timestamp: str, seq: int
) -> dict[str, Any]:
    """A vehicle socket opened (``connected`` true) or closed."""
    return {
        "type": "vehicle_connection",
        "vehicle_id": vehicle_id,
        "connected": connected,
        "timestamp": timestamp,
        "seq": seq,
    }


def location_update(
    vehicle_id: str, timestamp: str, location: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """``{"type": "location_update", …, "location": {…}}``."""
    return {
        "type": "location_update",
        "vehicle_id": vehicle_id,
        "seq": seq,
        "timestamp": timestamp,
        "location": location,
    }


def battery_update(
    vehicle_id: str, timestamp: str, battery: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """``{"type": "battery_update", …, "battery": {…}}``."""
    return {
        "type": "battery_update",
        "vehicle_id": vehicle_id,
        "seq": seq,
        "timestamp": timestamp,
        "battery": battery,
    }


def status_update(
    vehicle_id: str, timestamp: str, fields: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """``{"type": "status_update", …, "state": …, …}``: the status fields at the top level."""
    return _event("status_update", vehicle_id, timestamp, fields, seq)


def docking_update(
    vehicle_id: str, timestamp: str, fields: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """``{"type": "docking_update", …, "phase": …, …}``: the docking fields at the top level."""
    return _event("docking_update", vehicle_id, timestamp, fields, seq)


def error_report(
    vehicle_id: str, timestamp: str, fields: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """``{"type": "error_report", …, "error_code": …, …}``: the error fields at the top level."""
    return _event("error_report", vehicle_id, timestamp, fields, seq)


def telemetry_event(
    kind: TelemetryKind, vehicle_id: str, timestamp: str, body: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """The event for a stored record of ``kind``, from its REST body (or frame minus type).

    Every kind's event is its body at the top level, so ``location``/``battery`` bodies give
    the nested ``location``/``battery`` object the contract shows.
    """
    return _event(EVENT_TYPES[kind], vehicle_id, timestamp, body, seq)


def alert(
    alert_id: str,
    vehicle_id: str,
    *,
    severity: str,
    kind: str,
    message: str,
    timestamp: str,
    error_code: str | None = None,
    escalated: bool = False,
    backfilled: bool = False,
    seq: int | None = None,
) -> dict[str, Any]:
    """An alert frame; ``seq`` only when the alert is part of the vehicle's event stream."""
    frame: dict[str, Any] = {"type": "alert", "alert_id": alert_id, "vehicle_id": vehicle_id}
    if seq is not None:
        frame["seq"] = seq
    frame["severity"] = severity
    frame["kind"] = kind
    frame["error_code"] = error_code
    frame["message"] = message
    frame["timestamp"] = timestamp
    frame["escalated"] = escalated
    frame["backfilled"] = backfilled
    return frame


def _event(
    event_type: str, vehicle_id: str, timestamp: str, fields: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """A vehicle event: the envelope, then the payload's own keys."""
    frame: dict[str, Any] = {
        "type": event_type,
        "vehicle_id": vehicle_id,
        "seq": seq,
        "timestamp": timestamp,
    }
    for key, value in fields.items():
        if key not in _ENVELOPE_KEYS:
            frame[key] = value
    return frame
