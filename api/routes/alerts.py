"""Alerts for people (CONTRACT §7 hub additions): the list, and acknowledging one."""

from __future__ import annotations

from datetime import datetime

from quart import Quart, Response, request
from quart_schema import document_querystring, document_response, tag

from api.bodies.reads import alert_item
from api.context import HubServices
from api.filters import flag, severity_filter, vehicle_filter
from api.guard import require_role
from api.paging import optional_cursor, page_body, parse_limit
from api.responses import json_response
from hub.contract import responses
from hub.contract.alerts import AlertItem, AlertPage
from hub.contract.queries import AlertQuery
from hub.contract.roles import READERS, STAFF


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
        require_role(services, READERS)
        args = request.args
        limit = parse_limit(args.get("limit"))
        rows = await services.alerts.page(
            open_only=flag("open", args.get("open")),
            vehicle_id=vehicle_filter(args.get("vehicle_id")),
            severity=severity_filter(args.get("severity")),
            before=optional_cursor(args.get("cursor"), (datetime, str)),
            limit=limit + 1,
        )
        page = page_body(
            rows, limit, render=alert_item, key=lambda row: (row["created_at"], row["alert_id"])
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
        principal = require_role(services, STAFF)
        return json_response(
            alert_item(await services.alerts.acknowledge(alert_id, principal.subject))
        )

    app.add_url_rule("/api/v1/alerts", view_func=list_alerts, methods=["GET"])
    app.add_url_rule("/api/v1/alerts/<alert_id>/ack", view_func=acknowledge_alert, methods=["POST"])
