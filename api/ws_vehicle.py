"""The vehicle socket ``/ws/v1/vehicle/{vehicle_id}`` (alias ``/ws/vehicle/{vehicle_id}``).

A vehicle token opens the vehicle's own connection: commands come down it, acks, pings and
telemetry come up (CONTRACT §6.1). A person's token on the same path opens a frontend
session bound to that vehicle (TVM-WS-CONN-002).

A telemetry frame is parsed with the same model as the REST body and handed to the
vehicle's actor as the same :class:`~actors.vehicle.messages.Report`; its answer comes back
through a :class:`FrameReply`, which writes the ``telemetry_ack`` (or the ``error`` frame)
straight onto the socket — no task waits for it, so reading acks and pongs never waits on a
commit, and acks leave in commit order.
"""

from __future__ import annotations

import trio
from quart import Quart

from actors.sockets.connection import run_socket
from actors.sockets.outbound import OutboundLink
from actors.vehicle.messages import Report, ReportAccepted
from api.context import HubServices
from api.socket_port import QuartSocket, SocketPort
from api.ws_common import (
    authenticate_socket,
    close_socket,
    refuse,
    serve_socket,
    socket_request_id,
)
from hub.clock import format_timestamp, now_timestamp
from hub.contract import ws_events
from hub.contract.command_acks import CommandAck
from hub.contract.ws import PingFrame, PongFrame, TelemetryFrame, parse_vehicle_frame
from hub.errors import (
    ContractError,
    ForbiddenError,
    InternalError,
    UnavailableError,
    UnknownVehicleError,
)
from hub.runtime import ActorStoppedError, MailboxFullError, Reply

FRAME_ERRORS = ("invalid_json", "invalid_message")  # what counts towards closing 4002


class FrameReply(Reply[ReportAccepted]):
    """The reply slot of a socket report: answering it writes the ack or error frame."""

    __slots__ = ("_link",)

    def __init__(self, link: OutboundLink) -> None:
        super().__init__()
        self._link = link

    def send(self, value: ReportAccepted) -> bool:
        """Write ``telemetry_ack`` for the committed record (``duplicate`` for a resend)."""
        if not super().send(value):
            return False
        ack = ws_events.telemetry_ack(
            value.kind, format_timestamp(value.timestamp), "duplicate" if value.duplicate else "ok"
        )
        self._link.send_nowait(ack)
        return True

    def fail(self, error: Exception) -> bool:
        """Write the ``error`` frame of the refusal (``internal_error`` for anything else)."""
        if not super().fail(error):
            return False
        refusal = error if isinstance(error, ContractError) else InternalError()
        self._link.send_nowait(ws_events.contract_error_frame(refusal))
        return True


async def serve_vehicle(
    services: HubServices, port: SocketPort, vehicle_id: str, link: OutboundLink
) -> None:
    """Run one vehicle connection until it closes; the actor knows it for that long."""
    directory = services.vehicles
    actor = await directory.connect(vehicle_id, link)  # the actor that now holds the socket
    request_id = socket_request_id(port)

    async def on_frame(raw: str | bytes) -> None:
        try:
            frame = parse_vehicle_frame(raw)
        except ContractError as error:
            if error.error in FRAME_ERRORS:
                raise
            link.send_nowait(ws_events.contract_error_frame(error))
            return
        match frame:
            case PingFrame():
                link.send_nowait(ws_events.pong(now_timestamp()))
            case PongFrame():
                pass
            case CommandAck():
                await directory.acknowledged(vehicle_id, frame, request_id=request_id)
            case TelemetryFrame():
                reply = FrameReply(link)
                try:
                    actor.tell_nowait(Report(frame.record, request_id, reply))
                except (MailboxFullError, ActorStoppedError):
                    reply.fail(UnavailableError("Telemetry backlog full", retry_after=1))

    try:
        code, reason = await run_socket(
            link,
            receive=port.receive,
            send=port.sender(),
            on_frame=on_frame,
            policy=services.socket_policy,
        )
        if reason != "peer closed":
            await close_socket(port, code, reason)
    finally:
        with trio.CancelScope(shield=True):
            await directory.disconnect(vehicle_id, link.link_id)


async def vehicle_socket(services: HubServices, port: SocketPort, vehicle_id: str) -> None:
    """Serve ``/ws/v1/vehicle/{vehicle_id}``: the vehicle's own connection for its token, a
    frontend session bound to the vehicle for a person's. Blocks until the socket ends."""
    principal = await authenticate_socket(port, services.codec)
    if principal is None:
        return
    if not services.registry.is_enabled(vehicle_id):
        await refuse(port, UnknownVehicleError(vehicle_id))
        return
    if not principal.is_vehicle:
        from api.ws_fleet import serve_frontend

        await serve_frontend(services, port, principal, bound_vehicle_id=vehicle_id)
        return
    if principal.vehicle_id != vehicle_id:
        await refuse(port, ForbiddenError("This token belongs to another vehicle"))
        return
    try:
        await serve_vehicle(services, port, vehicle_id, OutboundLink(label=vehicle_id))
    except ContractError as error:  # the actor could not start (database away…)
        await refuse(port, error)


def register(app: Quart, services: HubServices) -> None:
    """Add the vehicle socket and its alias to Quart (served there with TVM_FAST_PATHS=false)."""

    async def vehicle_socket_route(vehicle_id: str) -> None:
        await serve_socket(QuartSocket(), lambda port: vehicle_socket(services, port, vehicle_id))

    app.add_websocket("/ws/v1/vehicle/<vehicle_id>", "vehicle_socket", vehicle_socket_route)
    app.add_websocket("/ws/vehicle/<vehicle_id>", "vehicle_socket_alias", vehicle_socket_route)
