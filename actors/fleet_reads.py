"""Read side for people: the fleet snapshot and history pages (CONTRACT §8)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from actors.accounts import storage_guard
from actors.vehicle.registry import VehicleRegistry, unknown_vehicle
from hub.clock import format_timestamp, parse_timestamp
from hub.errors import bad_request, not_found
from storage.database import Database, Row
from storage.queries import accounts as account_queries
from storage.queries import commands as command_queries
from storage.queries import history as history_queries
from storage.queries import vehicles as vehicle_queries
from storage.telemetry_tables import TelemetryKind

MAX_PAGE = 10_000
DEFAULT_PAGE = 100

HISTORY_PATHS: dict[str, TelemetryKind] = {
    "locations": TelemetryKind.LOCATION,
    "status": TelemetryKind.STATUS,
    "battery": TelemetryKind.BATTERY,
    "errors": TelemetryKind.ERROR,
    "docking": TelemetryKind.DOCKING,
}


def _timestamp_or_none(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def _json_or_none(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def vehicle_summary(row: Row, *, connected: bool = False) -> dict[str, Any]:
    """The contract's per-vehicle snapshot from a summary row."""
    return {
        "vehicle_id": row["vehicle_id"],
        "name": row["name"],
        "connected": connected,
        "last_seen": _timestamp_or_none(row["last_seen"]),
        "state": row["state"],
        "mission_id": row["mission_id"],
        "location": _json_or_none(row["location"]),
        "battery": _json_or_none(row["battery"]),
        "docking_phase": row["docking_phase"],
        "open_alerts": int(row["open_alerts"]),
    }


def encode_cursor(timestamp: datetime) -> str:
    """An opaque cursor pointing just past a record."""
    return base64.urlsafe_b64encode(format_timestamp(timestamp).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> datetime:
    """The timestamp inside a cursor; 400 ``validation_error`` if it was tampered with."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return parse_timestamp(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request(
            "validation_error", "Invalid cursor", field="cursor", received_value=cursor
        ) from None


def parse_query_timestamp(name: str, value: str | None) -> datetime | None:
    """A ``from``/``to`` query value; 400 ``invalid_timestamp`` if malformed."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise bad_request(
            "invalid_timestamp",
            f"{name} must look like 2025-12-16T10:30:45.123Z",
            field=name,
            received_value=value,
        ) from None


def parse_limit(value: str | None) -> int:
    """``limit`` in 1..10 000 (default 100); 400 ``validation_error`` otherwise."""
    if value is None:
        return DEFAULT_PAGE
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise bad_request(
            "validation_error",
            f"limit must be an integer from 1 to {MAX_PAGE}",
            field="limit",
            received_value=value,
        )
    return limit


def history_item(row: Row) -> dict[str, Any]:
    """A stored record as the API shows it: its columns and its wire timestamp."""
    item = {key: value for key, value in row.items() if key != "timestamp"}
    item["timestamp"] = format_timestamp(row["timestamp"])
    return item


class FleetReads:
    """Queries behind the read endpoints."""

    def __init__(self, *, database: Database, registry: VehicleRegistry) -> None:
        self._database = database
        self._registry = registry

    async def fleet(self) -> list[dict[str, Any]]:
        """Every enabled vehicle with its latest state (one query)."""
        async with storage_guard():
            rows = await vehicle_queries.fleet_summary(self._database)
        return [vehicle_summary(row) for row in rows]

    async def vehicle(self, vehicle_id: str) -> dict[str, Any]:
        """One vehicle's snapshot; 404 ``unknown_vehicle``."""
        self._registry.require(vehicle_id)
        async with storage_guard():
            row = await vehicle_queries.vehicle_summary(self._database, vehicle_id)
        if row is None:
            raise unknown_vehicle(vehicle_id)
        return vehicle_summary(row)

    async def history(
        self,
        vehicle_id: str,
        kind: TelemetryKind,
        *,
        start: datetime | None,
        end: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        """A page of history, newest first, and the cursor of the next page (or None)."""
        self._registry.require(vehicle_id)
        before = decode_cursor(cursor) if cursor else None
        async with storage_guard():
            rows = await history_queries.history_page(
                self._database,
                kind=kind,
                vehicle_id=vehicle_id,
                start=start,
                end=end,
                before=before,
                limit=limit + 1,
            )
        items = [history_item(row) for row in rows[:limit]]
        next_cursor = encode_cursor(rows[limit - 1]["timestamp"]) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    async def commands(self, vehicle_id: str, *, limit: int) -> list[dict[str, Any]]:
        """A vehicle's commands, newest first."""
        self._registry.require(vehicle_id)
        async with storage_guard():
            rows = await command_queries.vehicle_commands(
                self._database, vehicle_id, limit=limit, before=None
            )
        return [command_item(row) for row in rows]

    async def command(self, command_id: str) -> dict[str, Any]:
        """One command; 404 ``not_found``."""
        async with storage_guard():
            row = await command_queries.command(self._database, command_id)
        if row is None:
            raise not_found("not_found", f"No command {command_id}")
        return command_item(row)

    async def audit(self, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """Audit records, newest first, keyset-paged."""
        before: int | None = None
        if cursor:
            if not cursor.isdigit():
                raise bad_request(
                    "validation_error", "Invalid cursor", field="cursor", received_value=cursor
                )
            before = int(cursor)
        async with storage_guard():
            rows = await account_queries.audit_page(
                self._database, limit=limit + 1, before_id=before
            )
        items = []
        for row in rows[:limit]:
            item = dict(row)
            item["at"] = format_timestamp(row["at"])
            item["details"] = _json_or_none(row["details"])
            items.append(item)
        next_cursor = str(rows[limit - 1]["audit_id"]) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}


def command_item(row: Row) -> dict[str, Any]:
    """A stored command as the API shows it."""
    return {
        "command_id": row["command_id"],
        "vehicle_id": row["vehicle_id"],
        "type": row["type"],
        "status": row["status"],
        "priority": row["priority"],
        "sender": row["sender"],
        "payload": _json_or_none(row["payload"]),
        "ack": _json_or_none(row["ack"]),
        "attempts": row["attempts"],
        "created_at": _timestamp_or_none(row["created_at"]),
        "sent_at": _timestamp_or_none(row["sent_at"]),
        "acked_at": _timestamp_or_none(row["acked_at"]),
        "updated_at": _timestamp_or_none(row["updated_at"]),
    }
