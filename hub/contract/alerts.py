"""Alerts as the REST API shows them (CONTRACT §7): one alert, and a page of them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict

from hub.contract.base import ResponseModel
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp

_ALERT_EXAMPLE: dict[str, Any] = {
    "alert_id": "alert_3f9a1c2b4d5e6f70",
    "vehicle_id": "wheelchair_001",
    "kind": "error_report",
    "severity": "critical",
    "error_code": "SAFE_COLLISION_DETECTED",
    "message": "Collision detected, stopped",
    "details": {"timestamp": EXAMPLE_TIMESTAMP},
    "backfilled": False,
    "created_at": EXAMPLE_TIMESTAMP,
    "acknowledged_by": None,
    "acknowledged_at": None,
    "escalated_at": None,
}


class AlertItem(ResponseModel):
    """One alert: what raised it, and who acknowledged it when."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ALERT_EXAMPLE]})

    alert_id: str
    vehicle_id: str
    kind: str
    severity: Literal["info", "warning", "error", "critical"]
    error_code: str | None
    message: str
    details: dict[str, Any]
    backfilled: bool
    created_at: WireTimestamp
    acknowledged_by: str | None
    acknowledged_at: WireTimestamp | None
    escalated_at: WireTimestamp | None


class AlertPage(ResponseModel):
    """A page of alerts, newest first; follow ``next_cursor`` for older ones."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [_ALERT_EXAMPLE], "next_cursor": "MjAyNS0xMi0xNlQxMDozMDo0NS4xMjNa"}
            ]
        }
    )

    items: list[AlertItem]
    next_cursor: str | None
