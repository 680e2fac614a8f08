"""The fleet socket ``/ws/v1/fleet`` (CONTRACT §6.2) and frontend connections in general.

:func:`serve_frontend` serves any authenticated person on a socket: the fleet socket, and a
user token on the vehicle path ``/ws/v1/vehicle/{id}`` (CONTRACT §6.1, third paragraph),
which ``api.ws_vehicle`` hands over with ``bound_vehicle_id`` set. It starts a
:class:`~actors.session.actor.SessionActor`, runs the socket's reader, writer and heartbeat
(:func:`~actors.sockets.connection.run_socket`) in the request's task, and when the socket ends
stops the actor and detaches the session from the Router.

Quart-Trio cancels the handler when the peer disconnects, so the clean-up is shielded.
"""

from __future__ import annotations

import logging
from typing import Protocol

import trio
from quart import Quart, websocket

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
from actors.sockets.connection import NORMAL, PeerGoneError, SocketPolicy, run_socket
from api.ws_common import authenticate_socket, close_socket, refuse
from api.ws_send import socket_sender
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


def register(app: Quart, services: FrontendServices) -> None:
    """Add the ``/ws/v1/fleet`` WebSocket route."""

    async def fleet_socket() -> None:
        principal = await authenticate_socket(services.codec)
        if principal is None:
            return
        if principal.is_vehicle:
            await refuse(ForbiddenError("Vehicle tokens may not open the fleet socket"))
            return
        await serve_frontend(services, principal, bound_vehicle_id=None)

    app.add_websocket(FLEET_PATH, endpoint="fleet_socket", view_func=fleet_socket)


async def serve_frontend(
    services: FrontendServices, principal: Principal, *, bound_vehicle_id: str | None
) -> None:
    """Serve one person's socket until it closes (the token is verified already).

    Accepts the socket if the caller has not. ``bound_vehicle_id`` (vehicle path) subscribes
    the session to that vehicle and is the default target of its commands; the caller
    checks that the vehicle exists (4004). Returns when the socket is closed; cancellation (the
    peer went away) stops the session as well.
    """
    await websocket.accept()
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
        await refuse(InternalError("Try again later"))
        return
    try:
        code, reason = await run_socket(
            link,
            receive=_receive,
            send=socket_sender(),
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
        await close_socket(code, reason)


async def _receive() -> str | bytes:
    try:
        return await websocket.receive()
    except (ConnectionError, trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
        raise PeerGoneError from None
