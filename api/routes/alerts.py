"""Alerts for people (CONTRACT §7 hub additions): the list, and acknowledging one."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict
from quart import Quart, Response, request
from quart_schema import document_querystring, document_response, tag

from actors.fleet_reads import parse_limit
from api.context import HubServices
from api.errors import json_response
from api.guard import OPERATORS, VIEWERS, require_role
from hub.contract import responses
from hub.contract.base import VEHICLE_ID_PATTERN, ResponseModel
from hub.contract.queries import AlertQuery
from hub.contract.timestamps import EXAMPLE_TIMESTAMP, WireTimestamp
from hub.errors import bad_request

SEVERITIES = ("info", "warning", "error", "critical")
_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")

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


def parse_open(value: str | None) -> bool | None:
    """``open``: true → unacknowledged only, false → acknowledged only, absent → all."""
    if value is None or value == "":
        return None
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise bad_request(
        "validation_error", "open must be true or false", field="open", received_value=value
    )


def parse_severity(value: str | None) -> str | None:
    """``severity``: one of info, warning, error, critical; 400 ``invalid_enum`` otherwise."""
    if value is None or value == "":
        return None
    if value not in SEVERITIES:
        raise bad_request(
            "invalid_enum",
            f"severity must be one of {', '.join(SEVERITIES)}",
            field="severity",
            received_value=value,
        )
    return value


def parse_vehicle_id(value: str | None) -> str | None:
    """``vehicle_id`` filter; 400 ``validation_error`` if it cannot be a vehicle id."""
    if value is None or value == "":
        return None
    if not _VEHICLE_ID.match(value):
        raise bad_request(
            "validation_error",
            "vehicle_id must match ^[A-Za-z0-9_-]{1,64}$",
            field="vehicle_id",
            received_value=value,
        )
    return value


def register(app: Quart, services: HubServices) -> None:
    """Add ``GET /api/v1/alerts`` and ``POST /api/v1/alerts/{alert_id}/ack``."""

    @tag(["alerts"])
    @document_querystring(AlertQuery)
    @document_response(AlertPage, 200)
    @document_response(responses.ErrorBody, 400)
    async def list_alerts() -> Response:
        """Alerts, newest first.

        ``open=true`` for unacknowledged ones only (``false``: only acknowledged ones);
        filters ``vehicle_id``, ``severity``; ``limit`` (≤ 10 000, default 100) and
        ``cursor`` (the previous page's ``next_cursor``).
        """
        require_role(services, VIEWERS)
        args = request.args
        page = await services.alerts.list_alerts(
            open_only=parse_open(args.get("open")),
            vehicle_id=parse_vehicle_id(args.get("vehicle_id")),
            severity=parse_severity(args.get("severity")),
            limit=parse_limit(args.get("limit")),
            cursor=args.get("cursor") or None,
        )
        return json_response(page)

    @tag(["alerts"])
    @document_response(AlertItem, 200)
    @document_response(responses.ErrorBody, 403)
    @document_response(responses.ErrorBody, 404)
    async def acknowledge_alert(alert_id: str) -> Response:
        """Acknowledge an alert (operator or admin).

        Records who and when, and stops its escalation. Acknowledging again answers 200
        with the first acknowledgement.
        """
        principal = require_role(services, OPERATORS)
        return json_response(await services.alerts.acknowledge(alert_id, principal.subject))

    app.add_url_rule("/api/v1/alerts", view_func=list_alerts, methods=["GET"])
    app.add_url_rule("/api/v1/alerts/<alert_id>/ack", view_func=acknowledge_alert, methods=["POST"])
