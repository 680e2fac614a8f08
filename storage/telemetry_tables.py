"""The five telemetry tables: their columns, PostgreSQL types and batch-insert statements.

Each table is keyed on ``(vehicle_id, "timestamp")``; a batch is inserted with one
``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`` so a whole group commit
costs one round trip per table and duplicates are skipped by the database itself. One more
statement per batch (:func:`seen_and_latest_sql`) marks its vehicles seen and moves their
current records in ``vehicle_latest`` forward.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.contract.telemetry import TelemetryKind


@dataclass(frozen=True, slots=True)
class TableSpec:
    """Where one kind is stored and how its newest record shows in ``vehicle_latest``."""

    table: str
    columns: tuple[tuple[str, str], ...]
    latest: Callable[[Mapping[str, Any]], dict[str, Any]] | None

    @property
    def column_names(self) -> tuple[str, ...]:
        """The value columns, after ``vehicle_id`` and ``timestamp``."""
        return tuple(name for name, _ in self.columns)

    def insert_sql(self) -> str:
        """Batch insert of parallel arrays, returning the keys actually inserted."""
        names = ", ".join(f'"{name}"' for name in self.column_names)
        arrays = ", ".join(
            f"${index}::{pg_type}[]" for index, (_, pg_type) in enumerate(self.columns, start=3)
        )
        return (
            f'INSERT INTO {self.table} (vehicle_id, "timestamp", {names}) '
            f"SELECT * FROM unnest($1::text[], $2::timestamptz[], {arrays}) "
            'ON CONFLICT (vehicle_id, "timestamp") DO NOTHING RETURNING vehicle_id, "timestamp"'
        )


def _location_latest(values: Mapping[str, Any]) -> dict[str, Any]:
    location = {
        key: values[key]
        for key in ("latitude", "longitude", "altitude", "heading", "speed", "accuracy")
    }
    return {"location": json.dumps(location)}


def _battery_latest(values: Mapping[str, Any]) -> dict[str, Any]:
    battery = {
        key: values[key]
        for key in (
            "soc_percent",
            "voltage",
            "current",
            "temperature",
            "charging",
            "estimated_runtime_minutes",
            "health_percent",
        )
    }
    return {"battery": json.dumps(battery)}


def _status_latest(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"state": values["state"], "mission_id": values["mission_id"]}


def _docking_latest(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"docking_phase": values["phase"]}


TABLES: dict[TelemetryKind, TableSpec] = {
    "location": TableSpec(
        "vehicle_locations",
        (
            ("latitude", "float8"),
            ("longitude", "float8"),
            ("altitude", "float8"),
            ("heading", "float8"),
            ("speed", "float8"),
            ("accuracy", "float8"),
        ),
        _location_latest,
    ),
    "status": TableSpec(
        "vehicle_status",
        (
            ("state", "text"),
            ("mission_id", "text"),
            ("current_waypoint", "text"),
            ("passengers_onboard", "bool"),
            ("operational_hours", "bool"),
            ("progress_percent", "float8"),
            ("eta_seconds", "int4"),
            ("distance_remaining_meters", "float8"),
            ("error_code", "text"),
            ("error_message", "text"),
        ),
        _status_latest,
    ),
    "battery": TableSpec(
        "vehicle_battery",
        (
            ("soc_percent", "float8"),
            ("voltage", "float8"),
            ("current", "float8"),
            ("temperature", "float8"),
            ("charging", "bool"),
            ("estimated_runtime_minutes", "int4"),
            ("health_percent", "float8"),
        ),
        _battery_latest,
    ),
    "error": TableSpec(
        "vehicle_errors",
        (
            ("error_code", "text"),
            ("severity", "text"),
            ("subsystem", "text"),
            ("latitude", "float8"),
            ("longitude", "float8"),
            ("description", "text"),
            ("recovery_action", "text"),
            ("user_action_required", "bool"),
            ("alert_id", "text"),
            ("backfilled", "bool"),
        ),
        None,
    ),
    "docking": TableSpec(
        "vehicle_docking",
        (
            ("phase", "text"),
            ("marker_id", "int4"),
            ("distance_to_marker_meters", "float8"),
            ("alignment_error_degrees", "float8"),
            ("docking_success", "bool"),
            ("attempts", "int4"),
            ("marker_visible", "bool"),
            ("confidence", "float8"),
            ("mission_id", "text"),
        ),
        _docking_latest,
    ),
}

LATEST_COLUMNS: dict[TelemetryKind, tuple[str, ...]] = {
    "location": ("location",),
    "status": ("state", "mission_id"),
    "battery": ("battery",),
    "docking": ("docking_phase",),
}

LATEST_TIME_COLUMN: dict[TelemetryKind, str] = {
    "location": "location_at",
    "status": "state_at",
    "battery": "battery_at",
    "docking": "docking_at",
}

_LATEST_TYPES = {
    "location": "jsonb",
    "battery": "jsonb",
    "state": "text",
    "mission_id": "text",
    "docking_phase": "text",
}


@functools.cache
def seen_and_latest_sql(kinds: tuple[TelemetryKind, ...]) -> str:
    """One upsert that marks every vehicle of a batch seen and records its newest records.

    ``$1`` is the batch's vehicles, distinct and in sorted order: rows are locked in the order
    given (no ``DISTINCT`` or join, which may reorder them), so two batches committing at once
    lock shared rows in the same order and cannot deadlock. Then, for each kind of ``kinds``
    in that order, an array of the newest new record's time per vehicle (``NULL`` where the
    vehicle has none of that kind in the batch) and one array per column of
    :data:`LATEST_COLUMNS`. A kind's columns change only where its time is newer than the
    stored one; ``last_seen`` and ``updated_at`` change on every vehicle of the batch.
    """
    arrays = ["$1::text[]"]
    aliases = ["c_vehicle_id"]
    names = ["vehicle_id", "last_seen"]
    selected = ["c_vehicle_id", "now()"]
    updates = ["last_seen = now()", "updated_at = now()"]
    for kind in kinds:
        at = LATEST_TIME_COLUMN[kind]
        newer = (
            f"EXCLUDED.{at} IS NOT NULL"
            f" AND (vehicle_latest.{at} IS NULL OR vehicle_latest.{at} < EXCLUDED.{at})"
        )
        typed = [(at, "timestamptz"), *((c, _LATEST_TYPES[c]) for c in LATEST_COLUMNS[kind])]
        for column, pg_type in typed:
            wire_type = "text" if pg_type == "jsonb" else pg_type
            arrays.append(f"${len(arrays) + 1}::{wire_type}[]")
            aliases.append(f"c_{column}")
            names.append(column)
            selected.append(f"c_{column}::jsonb" if pg_type == "jsonb" else f"c_{column}")
            kept = f"vehicle_latest.{column}"
            updates.append(f"{column} = CASE WHEN {newer} THEN EXCLUDED.{column} ELSE {kept} END")
    return (
        f"INSERT INTO vehicle_latest ({', '.join(names)}) "
        f"SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(arrays)}) AS t({', '.join(aliases)}) "
        f"ON CONFLICT (vehicle_id) DO UPDATE SET {', '.join(updates)}"
    )
