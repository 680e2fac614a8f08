"""The vehicle socket ``/ws/v1/vehicle/{vehicle_id}`` (alias ``/ws/vehicle/{vehicle_id}``).

A vehicle token opens the vehicle's own connection: commands come down it, acks, pings and
telemetry come up (CONTRACT §6.1). A person's token on the same path opens a frontend
session bound to that vehicle (TVM-WS-CONN-002). Telemetry frames are committed one at a
time in their own lane, so a slow commit never delays reading an ack or a pong.
"""

from __future__ import annotations

import trio
from quart import Quart, websocket

from actors.sockets.connection import PeerGoneError, run_socket
from actors.sockets.outbound import OutboundLink
from api.context import HubServices
from api.ws_common import FORBIDDEN, UNKNOWN_VEHICLE, authenticate_socket, refuse
from hub.clock import format_timestamp, now_timestamp, utc_now
from hub.contract import ws_events
from hub.contract.command_acks import CommandAck
from hub.contract.validation import check_live_timestamp
from hub.contract.ws import PingFrame, PongFrame, TelemetryFrame, parse_vehicle_frame
from hub.errors import ContractError

FRAME_ERRORS = ("invalid_json", "invalid_message")  # what counts towards closing 4002
TELEMETRY_LANE = 100


async def _receive() -> str | bytes:
    try:
        return await websocket.receive()
    except (ConnectionError, trio.BrokenResourceError, trio.ClosedResourceError):
        raise PeerGoneError from None


async def _send(text: str) -> None:
    await websocket.send(text)


async def serve_vehicle(services: HubServices, vehicle_id: str, link: OutboundLink) -> None:
    """Run one vehicle connection until it closes; the actor knows it for that long."""
    lane_send, lane_receive = trio.open_memory_channel[TelemetryFrame](TELEMETRY_LANE)

    async def telemetry_lane() -> None:
        async for frame in lane_receive:
            timestamp = format_timestamp(frame.record.timestamp)
            try:
                decision = services.telemetry.admit(vehicle_id, frame.kind)
                check_live_timestamp(frame.record.timestamp, utc_now(), raw=timestamp)
                accepted = await services.vehicles.report(vehicle_id, frame.record, decision)
            except ContractError as error:
                link.send_nowait(ws_events.contract_error_frame(error))
                continue
            duplicate = bool(accepted.body.get("duplicate"))
            link.send_nowait(
                ws_events.telemetry_ack(frame.kind, timestamp, "duplicate" if duplicate else "ok")
            )

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
                await services.vehicles.acknowledged(vehicle_id, frame)
            case TelemetryFrame():
                try:
                    lane_send.send_nowait(frame)
                except trio.WouldBlock:
                    link.send_nowait(
                        ws_events.error_frame("service_unavailable", "Telemetry backlog full")
                    )

    await services.vehicles.connect(vehicle_id, link)
    try:
        async with trio.open_nursery() as connection_nursery:
            connection_nursery.start_soon(telemetry_lane)
            code, reason = await run_socket(
                link,
                receive=_receive,
                send=_send,
                on_frame=on_frame,
                policy=services.socket_policy,
            )
            connection_nursery.cancel_scope.cancel()
        if reason != "peer closed":
            await websocket.close(code, reason)
    finally:
        with trio.CancelScope(shield=True):
            await services.vehicles.disconnect(vehicle_id, link.link_id)


def register(app: Quart, services: HubServices) -> None:
    """Add the vehicle socket and its alias."""

    async def vehicle_socket(vehicle_id: str) -> None:
        principal = await authenticate_socket(services.codec)
        if principal is None:
            return
        if not services.registry.is_enabled(vehicle_id):
            await refuse(
                UNKNOWN_VEHICLE, "unknown_vehicle", f"Vehicle {vehicle_id} is not registered"
            )
            return
        if not principal.is_vehicle:
            from api.ws_fleet import serve_frontend

            await serve_frontend(services, principal, bound_vehicle_id=vehicle_id)
            return
        if principal.vehicle_id != vehicle_id:
            await refuse(FORBIDDEN, "forbidden", "This token belongs to another vehicle")
            return
        await serve_vehicle(services, vehicle_id, OutboundLink(label=vehicle_id))

    app.add_websocket("/ws/v1/vehicle/<vehicle_id>", "vehicle_socket", vehicle_socket)
    app.add_websocket("/ws/vehicle/<vehicle_id>", "vehicle_socket_alias", vehicle_socket)
