"""Vehicle telemetry POSTs (CONTRACT §3–4): auth → ownership → 404 → validate → the vehicle's
actor (rate limit → time window → transition rules → commit) → answer. The answer is sent
only after the row is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from quart import Quart, Response, g
from quart_schema import document_request, document_response, tag

from api.bodies.telemetry import bulk_body, quota_headers, report_body
from api.context import HubServices
from api.guard import require_vehicle
from api.request_body import MAX_BULK_BODY, json_body
from api.responses import json_response
from hub.clock import utc_now
from hub.contract import responses
from hub.contract.bulk import parse_bulk
from hub.contract.bulk_forms import BulkBody
from hub.contract.telemetry import (
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    StatusUpdate,
    TelemetryModel,
)
from hub.contract.validation import parse_model

_ERRORS = {
    400: responses.ErrorBody,
    401: responses.ErrorBody,
    403: responses.ErrorBody,
    404: responses.ErrorBody,
    429: responses.ErrorBody,
    503: responses.ErrorBody,
}


Handler = TypeVar("Handler", bound=Callable[..., Any])


def _documented(request_model: type, response_model: type) -> Callable[[Handler], Handler]:
    """Document a telemetry endpoint: its body, its answer and every error it may give."""

    def decorate(handler: Handler) -> Handler:
        for status, model in _ERRORS.items():
            handler = document_response(model, status)(handler)
        handler = document_response(response_model, 200)(handler)
        handler = document_request(request_model)(handler)
        return tag(["telemetry"])(handler)

    return decorate


def register(app: Quart, services: HubServices) -> None:
    """Add the six telemetry endpoints."""

    def live_endpoint(kind: str, model: type[TelemetryModel], response_model: type) -> None:
        async def handler(vehicle_id: str) -> Response:
            require_vehicle(services, vehicle_id)
            services.registry.require(vehicle_id)
            record = parse_model(model, await json_body())
            answer = await services.vehicles.report(
                vehicle_id,
                record,  # type: ignore[arg-type]
                request_id=g.get("request_id"),
            )
            return json_response(report_body(answer), headers=quota_headers(answer.quota))

        handler.__name__ = f"post_{kind}"
        handler.__doc__ = f"Report the vehicle's {kind} (vehicle token for this vehicle)."
        app.add_url_rule(
            f"/api/v1/vehicle/<vehicle_id>/{kind}",
            endpoint=f"post_{kind}",
            view_func=_documented(model, response_model)(handler),
            methods=["POST"],
        )

    live_endpoint("location", LocationUpdate, responses.TelemetryAccepted)
    live_endpoint("status", StatusUpdate, responses.TelemetryAccepted)
    live_endpoint("battery", BatteryUpdate, responses.BatteryAccepted)
    live_endpoint("error", ErrorReport, responses.ErrorReportAccepted)
    live_endpoint("docking", DockingUpdate, responses.TelemetryAccepted)

    @_documented(BulkBody, responses.BulkAccepted)
    async def post_bulk(vehicle_id: str) -> Response:
        """Upload what the vehicle recorded while offline: 1–1000 messages, all or nothing.

        Each message is one report (`type`, `timestamp`, and that kind's body as `data`).
        """
        require_vehicle(services, vehicle_id)
        services.registry.require(vehicle_id)
        settings = services.settings
        parsed = parse_bulk(
            await json_body(limit=MAX_BULK_BODY),
            path_vehicle_id=vehicle_id,
            now=utc_now(),
            max_age=timedelta(seconds=settings.bulk_max_age),
            max_messages=settings.bulk_max_messages,
        )
        answer = await services.vehicles.bulk(vehicle_id, parsed, request_id=g.get("request_id"))
        return json_response(bulk_body(answer), headers=quota_headers(answer.quota))

    app.add_url_rule(
        "/api/v1/vehicle/<vehicle_id>/bulk",
        endpoint="post_bulk",
        view_func=post_bulk,
        methods=["POST"],
    )
