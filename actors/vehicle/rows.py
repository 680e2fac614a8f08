"""Wire records → storage rows. Pure functions; one per kind."""

from __future__ import annotations

from typing import Any

from hub.contract.base import WireModel
from hub.contract.telemetry import (
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    StatusUpdate,
)
from storage.writer import TelemetryRow


def flat_fields(model: WireModel) -> dict[str, Any]:
    """A model's fields as a new dict: what ``model_dump()`` gives for a model whose fields
    are all plain values (no nested models, no extras), at a tenth of its cost — which is
    per row of a 1000-message bulk upload. ``Location`` and ``Battery`` are such models."""
    return model.__dict__.copy()


def location_row(vehicle_id: str, record: LocationUpdate) -> TelemetryRow:
    """A ``vehicle_locations`` row."""
    return TelemetryRow("location", vehicle_id, record.timestamp, flat_fields(record.location))


def status_row(vehicle_id: str, record: StatusUpdate) -> TelemetryRow:
    """A ``vehicle_status`` row (the details object is flattened into columns)."""
    details = record.details
    values: dict[str, Any] = {
        "state": record.state,
        "mission_id": record.mission_id,
        "current_waypoint": record.current_waypoint,
        "passengers_onboard": record.passengers_onboard,
        "operational_hours": record.operational_hours,
        "progress_percent": details.progress_percent if details else None,
        "eta_seconds": details.eta_seconds if details else None,
        "distance_remaining_meters": details.distance_remaining_meters if details else None,
        "error_code": None,
        "error_message": None,
    }
    return TelemetryRow("status", vehicle_id, record.timestamp, values)


def battery_row(vehicle_id: str, record: BatteryUpdate) -> TelemetryRow:
    """A ``vehicle_battery`` row."""
    return TelemetryRow("battery", vehicle_id, record.timestamp, flat_fields(record.battery))


def error_row(
    vehicle_id: str, record: ErrorReport, *, alert_id: str | None, backfilled: bool
) -> TelemetryRow:
    """A ``vehicle_errors`` row carrying the id of the alert it raised, if any."""
    location = record.location
    values: dict[str, Any] = {
        "error_code": record.error_code,
        "severity": record.severity,
        "subsystem": record.subsystem,
        "latitude": location.latitude if location else None,
        "longitude": location.longitude if location else None,
        "description": record.description,
        "recovery_action": record.recovery_action,
        "user_action_required": record.user_action_required,
        "alert_id": alert_id,
        "backfilled": backfilled,
    }
    return TelemetryRow("error", vehicle_id, record.timestamp, values)


def docking_row(vehicle_id: str, record: DockingUpdate, *, mission_id: str | None) -> TelemetryRow:
    """A ``vehicle_docking`` row, linked to the mission the vehicle is on."""
    details = record.details
    values: dict[str, Any] = {
        "phase": record.phase,
        "marker_id": record.marker_id,
        "distance_to_marker_meters": record.distance_to_marker_meters,
        "alignment_error_degrees": record.alignment_error_degrees,
        "docking_success": record.docking_success,
        "attempts": record.attempts,
        "marker_visible": details.marker_visible if details else None,
        "confidence": details.confidence if details else None,
        "mission_id": mission_id,
    }
    return TelemetryRow("docking", vehicle_id, record.timestamp, values)
