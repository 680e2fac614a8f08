"""Fleet state and history for people (CONTRACT §8)."""

from __future__ import annotations

from datetime import datetime

from quart import Quart, Response, request
from quart_schema import document_querystring, document_response, tag

from actors.fleet_reads import HISTORY_PATHS
from api.bodies.reads import history_item, vehicle_summary
from api.context import HubServices
from api.guard import require_role
from api.paging import optional_cursor, page_body, parse_limit, parse_query_timestamp
from api.responses import json_response
from hub.contract import responses
from hub.contract.queries import HistoryQuery
from hub.contract.roles import READERS


def register(app: Quart, services: HubServices) -> None:
    """Add the fleet list, the vehicle snapshot and the history endpoints."""

    @tag(["fleet"])
    @document_response(responses.VehicleList, 200)
    async def list_vehicles() -> Response:
        """Every registered vehicle with its latest state.

        Disabled vehicles are left out. `connected` says whether its socket is open now.
        """
        require_role(services, READERS)
        rows = await services.reads.fleet()
        connected = await services.router.connected_vehicles([r["vehicle_id"] for r in rows])
        vehicles = [vehicle_summary(row, connected=row["vehicle_id"] in connected) for row in rows]
        return json_response({"vehicles": vehicles})

    @tag(["fleet"])
    @document_response(responses.VehicleSummary, 200)
    @document_response(responses.ErrorBody, 404)
    async def get_vehicle(vehicle_id: str) -> Response:
        """One vehicle with its latest state.

        404 `unknown_vehicle` for a vehicle that is not registered or is disabled.
        """
        require_role(services, READERS)
        row = await services.reads.vehicle(vehicle_id)
        connected = vehicle_id in await services.router.connected_vehicles([vehicle_id])
        return json_response(vehicle_summary(row, connected=connected))

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
        require_role(services, READERS)
        telemetry_kind = HISTORY_PATHS[kind]  # the rule matches only these
        args = request.args
        limit = parse_limit(args.get("limit"))
        before = optional_cursor(args.get("cursor"), (datetime,))
        rows = await services.reads.history(
            vehicle_id,
            telemetry_kind,
            start=parse_query_timestamp("from", args.get("from")),
            end=parse_query_timestamp("to", args.get("to")),
            before=None if before is None else before[0],
            limit=limit + 1,
        )
        page = page_body(rows, limit, render=history_item, key=lambda row: (row["timestamp"],))
        return json_response(page)

    app.add_url_rule("/api/v1/vehicles", view_func=list_vehicles, methods=["GET"])
    app.add_url_rule("/api/v1/vehicle/<vehicle_id>", view_func=get_vehicle, methods=["GET"])
    kinds = ",".join(HISTORY_PATHS)
    # ``string:`` spelled out: quart-schema's path renderer would otherwise read
    # ``<vehicle_id>/<any(…):kind>`` as one parameter.
    app.add_url_rule(
        f"/api/v1/vehicle/<string:vehicle_id>/<any({kinds}):kind>",
        view_func=history,
        methods=["GET"],
    )
