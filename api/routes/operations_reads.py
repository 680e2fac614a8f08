"""Battery health, missions and reservations (CONTRACT §3 battery health, §8).

Battery health is asked of the vehicle's actor (it owns the accumulators); missions and
reservations come from :class:`actors.missions.MissionService`.
Viewers read; operators and admins book, change and cancel reservations.
"""

from __future__ import annotations

from datetime import datetime

from quart import Quart, Response, g, request
from quart_schema import document_querystring, document_request, document_response, tag

from actors.missions import Caller
from api.bodies.reads import battery_health_body, mission_item, reservation_item
from api.context import HubServices
from api.filters import mission_status_filter, reservation_status_filter, vehicle_filter
from api.guard import require_role
from api.paging import optional_cursor, page_body, parse_limit, parse_query_timestamp
from api.request_body import json_body
from api.responses import json_response
from hub.contract import responses
from hub.contract.queries import MissionQuery, ReservationQuery
from hub.contract.reservations import (
    BatteryHealth,
    Mission,
    MissionPage,
    Reservation,
    ReservationCreate,
    ReservationPage,
    ReservationUpdate,
)
from hub.contract.roles import READERS, STAFF
from hub.contract.validation import parse_model
from hub.security import Principal


def _caller(principal: Principal) -> Caller:
    return Caller(principal.subject, principal.role, g.get("request_id"))


def register(app: Quart, services: HubServices) -> None:
    """Add the battery-health, mission and reservation endpoints."""

    @tag(["fleet"])
    @document_response(BatteryHealth, 200)
    @document_response(responses.ErrorBody, 404)
    async def battery_health(vehicle_id: str) -> Response:
        """Charge cycles (100 % of SoC discharged = one) and the resting-voltage trend.

        Counted from the stored battery reports; `updated_at` is the newest one counted.
        """
        require_role(services, READERS)
        state = await services.vehicles.battery_health(vehicle_id)
        return json_response(battery_health_body(state))

    @tag(["missions"])
    @document_querystring(MissionQuery)
    @document_response(MissionPage, 200)
    @document_response(responses.ErrorBody, 400)
    async def list_missions() -> Response:
        """Missions, newest first.

        Filters ``vehicle_id``, ``status``; ``limit`` (≤ 10 000) and ``cursor``.

        A dispatch command creates its mission; acks and status reports move it on.
        """
        require_role(services, READERS)
        args = request.args
        limit = parse_limit(args.get("limit"))
        rows = await services.missions.missions(
            vehicle_id=vehicle_filter(args.get("vehicle_id")),
            status=mission_status_filter(args.get("status")),
            before=optional_cursor(args.get("cursor"), (datetime, str)),
            limit=limit + 1,
        )
        page = page_body(
            rows, limit, render=mission_item, key=lambda row: (row["created_at"], row["mission_id"])
        )
        return json_response(page)

    @tag(["missions"])
    @document_response(Mission, 200)
    @document_response(responses.ErrorBody, 404)
    async def get_mission(mission_id: str) -> Response:
        """One mission and its reservation, if it carries one out.

        404 `not_found` for a mission id never dispatched.
        """
        require_role(services, READERS)
        return json_response(mission_item(await services.missions.mission(mission_id)))

    @tag(["reservations"])
    @document_request(ReservationCreate)
    @document_response(Reservation, 201)
    @document_response(responses.ErrorBody, 400)
    async def create_reservation() -> Response:
        """Book a transport; the answer's ``mission_id`` is the id to dispatch it with.

        A new reservation is `pending`. The scheduled time must be between 5 minutes ago
        and a year ahead (400 `invalid_timestamp`); a `vehicle_id` must be registered.
        """
        principal = require_role(services, STAFF)
        body = parse_model(ReservationCreate, await json_body())
        item = reservation_item(await services.missions.create(body, _caller(principal)))
        headers = {"Location": f"/api/v1/reservations/{item['reservation_id']}"}
        return json_response(item, status=201, headers=headers)

    @tag(["reservations"])
    @document_querystring(ReservationQuery)
    @document_response(ReservationPage, 200)
    @document_response(responses.ErrorBody, 400)
    async def list_reservations() -> Response:
        """Reservations, soonest first.

        Filters ``status``, ``vehicle_id``, ``from``/``to`` (scheduled time); ``limit``
        (≤ 10 000) and ``cursor``.
        """
        require_role(services, READERS)
        args = request.args
        limit = parse_limit(args.get("limit"))
        rows = await services.missions.reservations(
            status=reservation_status_filter(args.get("status")),
            vehicle_id=vehicle_filter(args.get("vehicle_id")),
            start=parse_query_timestamp("from", args.get("from")),
            end=parse_query_timestamp("to", args.get("to")),
            after=optional_cursor(args.get("cursor"), (datetime, str)),
            limit=limit + 1,
        )
        page = page_body(
            rows,
            limit,
            render=reservation_item,
            key=lambda row: (row["scheduled_time"], row["reservation_id"]),
        )
        return json_response(page)

    @tag(["reservations"])
    @document_response(Reservation, 200)
    @document_response(responses.ErrorBody, 404)
    async def get_reservation(reservation_id: str) -> Response:
        """One reservation, with its mission's status once dispatched.

        404 `not_found` for an unknown id.
        """
        require_role(services, READERS)
        return json_response(reservation_item(await services.missions.reservation(reservation_id)))

    @tag(["reservations"])
    @document_request(ReservationUpdate)
    @document_response(Reservation, 200)
    @document_response(responses.ErrorBody, 400)
    async def update_reservation(reservation_id: str) -> Response:
        """Change a reservation's time, vehicle or status.

        `vehicle_id: null` unassigns the vehicle. Status moves pending → confirmed →
        completed, cancelled from either; confirmed → pending reopens it (400
        `invalid_state_transition` otherwise). A cancelled or completed reservation cannot
        change. 409 `conflict` if it keeps changing under concurrent edits.
        """
        principal = require_role(services, STAFF)
        body = parse_model(ReservationUpdate, await json_body())
        row = await services.missions.update(reservation_id, body, _caller(principal))
        return json_response(reservation_item(row))

    @tag(["reservations"])
    @document_response(Reservation, 200)
    @document_response(responses.ErrorBody, 400)
    async def cancel_reservation(reservation_id: str) -> Response:
        """Cancel a reservation (the row is kept, with status ``cancelled``).

        DELETE does not remove anything: the reservation stays readable with status
        `cancelled`. Cancelling again answers the same; a completed one cannot be cancelled.
        """
        principal = require_role(services, STAFF)
        row = await services.missions.cancel(reservation_id, _caller(principal))
        return json_response(reservation_item(row))

    app.add_url_rule(
        "/api/v1/vehicle/<vehicle_id>/battery/health", view_func=battery_health, methods=["GET"]
    )
    app.add_url_rule("/api/v1/missions", view_func=list_missions, methods=["GET"])
    app.add_url_rule("/api/v1/missions/<mission_id>", view_func=get_mission, methods=["GET"])
    app.add_url_rule("/api/v1/reservations", view_func=create_reservation, methods=["POST"])
    app.add_url_rule("/api/v1/reservations", view_func=list_reservations, methods=["GET"])
    app.add_url_rule(
        "/api/v1/reservations/<reservation_id>", view_func=get_reservation, methods=["GET"]
    )
    app.add_url_rule(
        "/api/v1/reservations/<reservation_id>",
        view_func=update_reservation,
        methods=["PATCH"],
    )
    app.add_url_rule(
        "/api/v1/reservations/<reservation_id>",
        view_func=cancel_reservation,
        methods=["DELETE"],
    )
