"""Fleet state and history for people (CONTRACT §8)."""

from __future__ import annotations

from quart import Quart, Response, request
from quart_schema import document_querystring, document_response, tag

from actors.fleet_reads import HISTORY_PATHS, parse_limit, parse_query_timestamp
from api.context import HubServices
from api.errors import json_response
from api.guard import VIEWERS, require_role
from hub.contract import responses
from hub.contract.queries import HistoryQuery
from hub.errors import not_found


def register(app: Quart, services: HubServices) -> None:
    """Add the fleet list, the vehicle snapshot and the history endpoints."""

    @tag(["fleet"])
    @document_response(responses.VehicleList, 200)
    async def list_vehicles() -> Response:
        """Every registered vehicle with its latest state.

        Disabled vehicles are left out. `connected` says whether its socket is open now.
        """
        require_role(services, VIEWERS)
        return json_response({"vehicles": await services.reads.fleet()})

    @tag(["fleet"])
    @document_response(responses.VehicleSummary, 200)
    @document_response(responses.ErrorBody, 404)
    async def get_vehicle(vehicle_id: str) -> Response:
        """One vehicle with its latest state.

        404 `unknown_vehicle` for a vehicle that is not registered or is disabled.
        """
        require_role(services, VIEWERS)
        return json_response(await services.reads.vehicle(vehicle_id))

    @tag(["fleet"])
    @document_querystring(HistoryQuery)
    @document_response(responses.HistoryPage, 200)
    @document_response(responses.ErrorBody, 400)
    async def history(vehicle_id: str, kind: str) -> Response:
        """A vehicle's history, newest first.

        Filters ``from``, ``to``; ``limit`` (≤ 10 000) and ``cursor``.
        Each item is one stored record, its columns at the top level. Follow `next_cursor`
        for older records; it is null on the last page.
        """
        require_role(services, VIEWERS)
        telemetry_kind = HISTORY_PATHS.get(kind)
        if telemetry_kind is None:
            raise not_found()
        args = request.args
        page = await services.reads.history(
            vehicle_id,
            telemetry_kind,
            start=parse_query_timestamp("from", args.get("from")),
            end=parse_query_timestamp("to", args.get("to")),
            cursor=args.get("cursor"),
            limit=parse_limit(args.get("limit")),
        )
        return json_response(page)

    app.add_url_rule("/api/v1/vehicles", view_func=list_vehicles, methods=["GET"])
    app.add_url_rule("/api/v1/vehicle/<vehicle_id>", view_func=get_vehicle, methods=["GET"])
    app.add_url_rule("/api/v1/vehicle/<vehicle_id>/<kind>", view_func=history, methods=["GET"])
