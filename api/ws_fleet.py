"""The fleet socket ``/ws/v1/fleet`` (CONTRACT §6.2) and frontend connections in general.

:func:`serve_frontend` serves any authenticated person on a socket: the fleet socket, and a
user token on the vehicle path ``/ws/v1/vehicle/{id}`` (CONTRACT §6.1, third paragraph),
which ``api.ws_vehicle`` hands over with ``bound_vehicle_id`` set. It starts a
:class:`~actors.session.actor.SessionActor`, runs the socket's reader, writer and heartbeat
(:func:`~actors.sockets.connection.run_socket`) in the request's task, and when the socket ends
stops the actor and detaches the session from the Router.

The handler may be cancelled (Quart-Trio cancels it when the peer disconnects; shutdown
cancels it on either path), so the clean-up is shielded.
"""

from __future__ import annotations

import logging
from typing import Protocol

import trio
from quart import Quart

from actors.router.sink import RouterSink
from actors.session.actor import (
    SESSION_KIND,
    CommandDirectory,
    SessionActor,
    SessionIdentity,
    SessionMessage,
    Snapshot,
    frame_handler,
    new_session_id,
)
from actors.session.conflation import SessionLink
from actors.sockets.connection import NORMAL, SocketPolicy, run_socket
from api.socket_port import QuartSocket, SocketPort
from api.ws_common import authenticate_socket, close_socket, refuse, serve_socket
from hub.errors import ForbiddenError, InternalError
from hub.runtime import ActorCrashedError, ActorRef, ActorStoppedError, Registry
from hub.security import Principal, TokenCodec

logger = logging.getLogger(__name__)

FLEET_PATH = "/ws/v1/fleet"
CLEANUP_TIMEOUT = 5.0


class FrontendServices(Protocol):
    """What frontend sockets need from ``HubServices`` (read-only, so fields may be narrower)."""

    @property
    def codec(self) -> TokenCodec: ...
    @property
    def actors(self) -> Registry: ...
    @property
    def router(self) -> RouterSink: ...
    @property
    def vehicles(self) -> CommandDirectory: ...
    @property
    def snapshots(self) -> Snapshot: ...
    @property
    def socket_policy(self) -> SocketPolicy: ...


async def fleet_socket(services: FrontendServices, port: SocketPort) -> None:
    """Serve ``/ws/v1/fleet`` for a person's token (4003 for a vehicle's). Blocks until the
    socket ends."""
    principal = await authenticate_socket(port, services.codec)
    if principal is None:
        return
    if principal.is_vehicle:
        await refuse(port, ForbiddenError("Vehicle tokens may not open the fleet socket"))
        return
    await serve_frontend(services, port, principal, bound_vehicle_id=None)


def register(app: Quart, services: FrontendServices) -> None:
    """Add the ``/ws/v1/fleet`` WebSocket route to Quart (served there with
    TVM_FAST_PATHS=false)."""

    async def fleet_socket_route() -> None:
        await serve_socket(QuartSocket(), lambda port: fleet_socket(services, port))

    app.add_websocket(FLEET_PATH, endpoint="fleet_socket", view_func=fleet_socket_route)


async def serve_frontend(
    services: FrontendServices,
    port: SocketPort,
    principal: Principal,
    *,
    bound_vehicle_id: str | None,
) -> None:
    """Serve one person's socket until it closes (the token is verified already).

    Accepts the socket if the caller has not. ``bound_vehicle_id`` (vehicle path) subscribes
    the session to that vehicle and is the default target of its commands; the caller
    checks that the vehicle exists (4004). Returns when the socket is closed; cancellation
    (shutdown, or under Quart the peer going away) stops the session as well.
    """
    await port.accept()
    identity = SessionIdentity(
        session_id=new_session_id(),
        username=principal.subject,
        role=principal.role,
        bound_vehicle_id=bound_vehicle_id,
    )
    link = SessionLink(label=identity.session_id)

    def new_session() -> SessionActor:
        return SessionActor(
            identity,
            link=link,
            router=services.router,
            directory=services.vehicles,
            snapshot=services.snapshots,
        )

    try:
        session: ActorRef[SessionMessage] = await services.actors.get_or_start(
            SESSION_KIND, identity.session_id, new_session
        )
    except (trio.TooSlowError, ActorStoppedError, ActorCrashedError):
        logger.exception("could not start session %s", identity.session_id)
        await refuse(port, InternalError("Try again later"))
        return
    try:
        code, reason = await run_socket(
            link,
            receive=port.receive,
            send=port.sender(),
            on_frame=frame_handler(session, link, bound_vehicle_id=bound_vehicle_id),
            policy=services.socket_policy,
        )
    finally:
        link.close(NORMAL, "session ended")  # no-op when run_socket closed it already
        with trio.CancelScope(shield=True) as cleanup:
            cleanup.deadline = trio.current_time() + CLEANUP_TIMEOUT
            await services.actors.supervisor.stop_child(SESSION_KIND, identity.session_id)
        services.router.detach(identity.session_id)
    if reason != "peer closed":
        await close_socket(port, code, reason)
