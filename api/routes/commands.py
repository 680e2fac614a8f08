"""Commands over REST (CONTRACT §6.3 hub additions) and the fleet-wide emergency stop."""

from __future__ import annotations

import logging
from typing import Any

import trio
from quart import Quart, Response, g, request
from quart_schema import document_querystring, document_request, document_response, tag

from actors.vehicle.command_desk import MAX_SENDS
from actors.vehicle.messages import CommandOrigin, CommandStatus
from api.bodies.reads import command_item
from api.context import HubServices
from api.filters import flag
from api.guard import require_role
from api.paging import parse_limit
from api.request_body import json_body
from api.responses import json_response
from hub.contract import responses
from hub.contract.command_answers import CommandOutcome, FleetStopResults
from hub.contract.commands import (
    Command,
    EmergencyStopCommand,
    FleetEmergencyStop,
    parse_command,
)
from hub.contract.queries import CommandWaitQuery, LimitQuery
from hub.contract.records import CommandList, CommandRecord
from hub.contract.roles import READERS, STAFF
from hub.contract.validation import parse_json_object, validate_model
from hub.errors import ContractError, InvalidInputError
from hub.security import Principal

WAIT_MARGIN = 1.0  # seconds past the last send's ack timeout


def command_wait(services: HubServices) -> float:
    """How long a REST call waits for a command to settle: every send's ack timeout, plus a
    margin (16 s with the default 5 s timeout)."""
    return services.settings.command_ack_timeout * MAX_SENDS + WAIT_MARGIN


logger = logging.getLogger(__name__)


def _origin(principal: Principal, request_id: str | None) -> CommandOrigin:
    return CommandOrigin(principal.subject, principal.role, None, request_id)


async def sent_command(
    services: HubServices,
    vehicle_id: str,
    raw: bytes,
    principal: Principal,
    request_id: str | None,
) -> CommandStatus:
    """The command POST's body, checked and handed to the vehicle: its status then. Blocks
    until the vehicle's actor has taken it (a stop goes out at once)."""
    command = parse_command(raw)
    if command.vehicle_id is not None and command.vehicle_id != vehicle_id:
        raise InvalidInputError(
            "vehicle_id_mismatch",
            "vehicle_id differs from the path",
            field="vehicle_id",
            received_value=command.vehicle_id,
        )
    return await services.vehicles.send_command(vehicle_id, command, _origin(principal, request_id))


def command_reply(status: CommandStatus) -> tuple[int, dict[str, Any]]:
    """The command POST's answer: 200 once settled, else 202; and its body."""
    return (200 if status.settled else 202), command_answer(status)


def command_answer(status: CommandStatus) -> dict[str, Any]:
    """The body describing a command's status."""
    return {
        "command_id": status.command_id,
        "vehicle_id": status.vehicle_id,
        "status": status.status,
        "ack": None if status.ack is None else dict(status.ack),
    }


async def settled(services: HubServices, status: CommandStatus) -> CommandStatus:
    """The command's outcome once written (acked, timed out…), or its status after the wait;
    a queued command is answered at once (the vehicle is away)."""
    if status.settled or status.status == "queued":
        return status
    return await services.vehicles.outcome(
        status.vehicle_id, status.command_id, wait=command_wait(services)
    )


def register(app: Quart, services: HubServices) -> None:
    """Add the command endpoints."""

    @tag(["commands"])
    @document_querystring(CommandWaitQuery)
    @document_request(Command)
    @document_response(CommandOutcome, 200)
    @document_response(CommandOutcome, 202)
    @document_response(responses.ErrorBody, 409)
    async def post_command(vehicle_id: str) -> Response:
        """Send a command to a vehicle.

        Waits for the vehicle's answer unless ``?wait=false``; 202 when the vehicle is
        offline and the command is queued.

        200 once the command settled (the vehicle accepted, rejected, executed or applied it,
        or three sends went unanswered: `timeout`); 202 while it is still `queued` (vehicle
        offline; delivered in order when it reconnects) or `sent` and unanswered. A body
        `vehicle_id`, if any, must equal the path's.
        """
        principal = require_role(services, STAFF)
        wait = flag("wait", request.args.get("wait")) is not False  # refused before any send
        raw = await json_body()
        status = await sent_command(services, vehicle_id, raw, principal, g.get("request_id"))
        if wait:
            status = await settled(services, status)
        code, body = command_reply(status)
        return json_response(body, status=code)

    @tag(["commands"])
    @document_querystring(LimitQuery)
    @document_response(CommandList, 200)
    async def list_commands(vehicle_id: str) -> Response:
        """A vehicle's commands, newest first (``limit``).

        Each with its payload, status, the vehicle's latest ack and when it was sent.
        """
        require_role(services, READERS)
        limit = parse_limit(request.args.get("limit"))
        rows = await services.reads.commands(vehicle_id, limit=limit)
        return json_response({"items": [command_item(row) for row in rows]})

    @tag(["commands"])
    @document_response(CommandRecord, 200)
    @document_response(responses.ErrorBody, 404)
    async def get_command(command_id: str) -> Response:
        """One command and its status.

        404 `not_found` for an id the hub never recorded.
        """
        require_role(services, READERS)
        return json_response(command_item(await services.reads.command(command_id)))

    @tag(["commands"])
    @document_request(FleetEmergencyStop)
    @document_response(FleetStopResults, 200)
    async def fleet_emergency_stop() -> Response:
        """Emergency-stop many vehicles at once.

        Stops every vehicle named (``["*"]``: all): each answers executed, queued or timeout.

        Every stop goes out at once; the answer comes when each has settled (up to 16 s).
        A vehicle that has not confirmed after three sends also raises a critical alert.
        """
        principal = require_role(services, STAFF)
        body = validate_model(
            FleetEmergencyStop, parse_json_object(await json_body(), clean_text=True)
        )
        vehicle_ids = body.vehicle_ids
        if "*" in vehicle_ids:
            vehicle_ids = sorted(services.registry.enabled_ids())
        vehicle_ids = list(dict.fromkeys(vehicle_ids))
        results: dict[str, dict[str, Any]] = {}

        async def stop(vehicle_id: str) -> None:
            # Each vehicle gets its own outcome: one unknown id or one failure must never keep
            # the stop from the others.
            command = EmergencyStopCommand(
                type="emergency_stop", reason=body.reason, message=body.message
            )
            try:
                status = await services.vehicles.send_command(
                    vehicle_id, command, _origin(principal, g.get("request_id"))
                )
            except ContractError as error:
                results[vehicle_id] = {
                    "vehicle_id": vehicle_id,
                    "status": "failed",
                    "error": error.error,
                    "message": error.message,
                }
                return
            except Exception:
                logger.exception("emergency stop for %s failed", vehicle_id)
                results[vehicle_id] = {
                    "vehicle_id": vehicle_id,
                    "status": "failed",
                    "error": "internal_error",
                    "message": "The stop could not be handed to the vehicle",
                }
                return
            results[vehicle_id] = command_answer(await settled(services, status))

        async with trio.open_nursery() as stops:
            for vehicle_id in vehicle_ids:
                stops.start_soon(stop, vehicle_id)
        return json_response({"results": [results[v] for v in vehicle_ids]})

    app.add_url_rule(
        "/api/v1/vehicle/<vehicle_id>/commands", view_func=post_command, methods=["POST"]
    )
    app.add_url_rule(
        "/api/v1/vehicle/<vehicle_id>/commands", view_func=list_commands, methods=["GET"]
    )
    app.add_url_rule("/api/v1/commands/<command_id>", view_func=get_command, methods=["GET"])
    app.add_url_rule(
        "/api/v1/fleet/emergency_stop", view_func=fleet_emergency_stop, methods=["POST"]
    )
