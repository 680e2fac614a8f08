"""Stored rows as the reading endpoints show them (CONTRACT §7, §8): timestamps in the
contract's form, JSON columns decoded, nothing else added."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from actors.missions import mission_id_for
from actors.vehicle.battery_health import BatteryHealthState, voltage_trend
from hub.clock import format_timestamp
from storage.database import Row


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _json(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    return json.loads(value)


def vehicle_summary(row: Row, *, connected: bool) -> dict[str, Any]:
    """The contract's per-vehicle snapshot from a summary row."""
    return {
        "vehicle_id": row["vehicle_id"],
        "name": row["name"],
        "connected": connected,
        "last_seen": _time(row["last_seen"]),
        "state": row["state"],
        "mission_id": row["mission_id"],
        "location": _json(row["location"]),
        "battery": _json(row["battery"]),
        "docking_phase": row["docking_phase"],
        "open_alerts": int(row["open_alerts"]),
    }


def history_item(row: Row) -> dict[str, Any]:
    """A stored telemetry record: its columns and its wire timestamp."""
    item = {key: value for key, value in row.items() if key != "timestamp"}
    item["timestamp"] = format_timestamp(row["timestamp"])
    return item


def command_item(row: Row) -> dict[str, Any]:
    """A stored command."""
    return {
        "command_id": row["command_id"],
        "vehicle_id": row["vehicle_id"],
        "type": row["type"],
        "status": row["status"],
        "priority": row["priority"],
        "sender": row["sender"],
        "payload": _json(row["payload"]),
        "ack": _json(row["ack"]),
        "attempts": row["attempts"],
        "created_at": _time(row["created_at"]),
        "sent_at": _time(row["sent_at"]),
        "acked_at": _time(row["acked_at"]),
        "updated_at": _time(row["updated_at"]),
    }


def audit_item(row: Row) -> dict[str, Any]:
    """An audit-log record."""
    item = dict(row)
    item["at"] = format_timestamp(row["at"])
    item["last_at"] = _time(row["last_at"])
    item["details"] = _json(row["details"])
    return item


def alert_item(row: Row) -> dict[str, Any]:
    """A stored alert."""
    details = row["details"]
    return {
        "alert_id": row["alert_id"],
        "vehicle_id": row["vehicle_id"],
        "kind": row["kind"],
        "severity": row["severity"],
        "error_code": row["error_code"],
        "message": row["message"],
        "details": json.loads(details) if isinstance(details, str) else dict(details or {}),
        "backfilled": row["backfilled"],
        "created_at": format_timestamp(row["created_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": _time(row["acknowledged_at"]),
        "escalated_at": _time(row["escalated_at"]),
    }


def mission_item(row: Row) -> dict[str, Any]:
    """A stored mission."""
    return {
        "mission_id": row["mission_id"],
        "vehicle_id": row["vehicle_id"],
        "reservation_id": row["reservation_id"],
        "status": row["status"],
        "priority": row["priority"],
        "pickup": _json(row["pickup"]),
        "destination": _json(row["destination"]),
        "scheduled_time": _time(row["scheduled_time"]),
        "start_time": _time(row["start_time"]),
        "end_time": _time(row["end_time"]),
        "created_at": format_timestamp(row["created_at"]),
        "updated_at": format_timestamp(row["updated_at"]),
    }


def reservation_item(row: Row) -> dict[str, Any]:
    """A stored reservation, with the mission that carries it out."""
    return {
        "reservation_id": row["reservation_id"],
        "passenger_name": row["passenger_name"],
        "pickup": _json(row["pickup"]),
        "destination": _json(row["destination"]),
        "scheduled_time": format_timestamp(row["scheduled_time"]),
        "status": row["status"],
        "vehicle_id": row["vehicle_id"],
        "mission_id": mission_id_for(row["reservation_id"]),
        "mission_status": row["mission_status"],
        "created_by": row["created_by"],
        "created_at": format_timestamp(row["created_at"]),
        "updated_at": format_timestamp(row["updated_at"]),
    }


def battery_health_body(state: BatteryHealthState) -> dict[str, Any]:
    """The body of ``GET /api/v1/vehicle/{id}/battery/health``."""
    trend = voltage_trend(state.resting_voltage)
    return {
        "vehicle_id": state.vehicle_id,
        "cycle_count": state.cycle_count,
        "discharge_accumulated_percent": round(state.discharge_accumulated_percent, 3),
        "resting_voltage": {
            "samples": [
                {"date": sample.day.isoformat(), "volts": round(sample.volts, 3)}
                for sample in state.resting_voltage
            ],
            "trend_volts_per_day": None if trend is None else round(trend, 6),
        },
        "updated_at": _time(state.updated_at),
    }
