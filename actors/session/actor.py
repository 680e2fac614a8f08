"""SessionActor: one frontend socket's subscriptions, outbound queue and commands (CONTRACT §6.2).

The socket task (``api.ws_fleet``) runs :func:`~actors.sockets.connection.run_socket` over the
session's :class:`~actors.session.conflation.SessionLink`; its reader hands each frame to
:func:`frame_handler`, which parses it (a bad frame is a ``ContractError`` there, counted by
``run_socket``), answers ``ping`` at once and tells the rest to the actor. The Router pushes
events straight into the link's queue, never through this actor's mailbox, so a busy session
never delays fan-out.

Lanes inside the actor:

- the **mailbox** handles subscribe and unsubscribe in order. A subscribe reserves its place
  in the queue first, so live events never overtake the ``subscribed`` answer, its snapshot
  and its replay;
- the **command lane** hands commands to the vehicle directory one at a time, in the order
  they came; an ``emergency_stop`` skips the lane and goes at once.

The subscriptions live in the Router too; a restarted SessionActor gets them back from there.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from actors.router.actor import (
    ALL_VEHICLES,
    STAFF_ROLES,
)
from actors.router.messages import (
    Attach,
    Attached,
    SessionHandle,
    Subscribe,
    Subscribed,
    Unsubscribe,
)
from actors.router.sink import RouterSink
from actors.session.conflation import SessionLink
from actors.sockets.connection import FrameHandler
from actors.sockets.encoded import Frame
from actors.vehicle.messages import CommandOrigin, CommandStatus
from hub.clock import now_timestamp, utc_now
from hub.contract import ws_events
from hub.contract.commands import AnyCommand, with_defaults
from hub.contract.ws import (
    PingFrame,
    PongFrame,
    SubscribeFrame,
    UnsubscribeFrame,
    parse_frontend_frame,
)
from hub.errors import ContractError
from hub.logs import reset_log_context
from hub.runtime import ActorCrashedError, ActorRef, ActorStoppedError, Inbox, ended_by_cancellation

logger = logging.getLogger(__name__)

SESSION_KIND = "session"
FRAME_ERRORS = ("invalid_json", "invalid_message")  # what counts towards closing 4002
COMMAND_LANE_SIZE = 100
INTERNAL_ERROR = 1011
GOING_AWAY = 1001


class Snapshot(Protocol):
    """Current state of vehicles for the ``subscribed`` answer (``None``: every vehicle)."""

    def __call__(self, vehicle_ids: list[str] | None) -> Awaitable[list[dict[str, Any]]]:
        """Snapshot rows; may raise ContractError (503 when the database is down)."""
        ...


class CommandDirectory(Protocol):
    """Where commands go: the vehicle actors, found by vehicle id."""

    async def send_command(
        self, vehicle_id: str, command: AnyCommand, origin: CommandOrigin
    ) -> CommandStatus:
        """Hand a command to its vehicle; ContractError 404/409/400 when refused."""
        ...


@dataclass(frozen=True, slots=True)
class SessionIdentity:
    """Who is on the socket, and the vehicle a vehicle-path connection is bound to."""

    session_id: str
    username: str
    role: str
    bound_vehicle_id: str | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """A parsed frame from the frontend that the actor handles (not ping/pong)."""

    frame: SubscribeFrame | UnsubscribeFrame | AnyCommand


SessionMessage = Inbound


def new_session_id() -> str:
    """A fresh session id, ``sess_<16 hex>``."""
    return "sess_" + secrets.token_hex(8)


def frame_handler(
    session: ActorRef[SessionMessage], link: SessionLink, *, bound_vehicle_id: str | None
) -> FrameHandler:
    """The ``on_frame`` for :func:`~actors.sockets.connection.run_socket` of one session.

    Raises ContractError for a frame that is no message at all (not JSON, unknown type: these
    count towards closing 4002); a message that fails validation (a bad command) gets an
    error frame naming its ``command_id`` instead. Blocks while the session's mailbox is
    full (backpressure on the reader).
    """

    async def on_frame(raw: str | bytes) -> None:
        try:
            frame = parse_frontend_frame(raw, bound_vehicle_id=bound_vehicle_id)
        except ContractError as error:
            if error.error in FRAME_ERRORS:
                raise  # counts towards closing 4002
            link.send_nowait(_refusal(error, raw))
            return
        if isinstance(frame, PingFrame):
            link.send_nowait(ws_events.pong(now_timestamp()))
        elif not isinstance(frame, PongFrame):  # a pong only counts as "heard from"
            try:
                await session.tell(Inbound(frame))
            except ActorStoppedError:
                link.close(INTERNAL_ERROR, "internal_error")

    return on_frame


def _refusal(error: ContractError, raw: str | bytes) -> dict[str, Any]:
    """The error frame for a refused message, with the ``command_id`` it carried if any."""
    frame = ws_events.contract_error_frame(error)
    try:
        command_id = json.loads(raw).get("command_id")
    except (ValueError, UnicodeDecodeError, AttributeError):
        command_id = None
    if isinstance(command_id, str):
        frame["command_id"] = command_id
    return frame


class SessionActor:
    """One frontend session (kind ``"session"``, key its session id)."""

    def __init__(
        self,
        identity: SessionIdentity,
        *,
        link: SessionLink,
        router: RouterSink,
        directory: CommandDirectory,
        snapshot: Snapshot,
        snapshot_timeout: float = 5.0,
        router_timeout: float = 5.0,
    ) -> None:
        self.identity = identity
        self.link = link
        self._router = router
        self._directory = directory
        self._snapshot = snapshot
        self._snapshot_timeout = snapshot_timeout
        self._router_timeout = router_timeout
        self.subscriptions: set[str] = set()
        self._lanes: trio.Nursery | None = None
        self._commands_send, self._commands_receive = trio.open_memory_channel[AnyCommand](
            COMMAND_LANE_SIZE
        )

    def __repr__(self) -> str:
        return f"<SessionActor {self.identity.session_id} {self.identity.role}>"

    async def run(
        self, inbox: Inbox[SessionMessage], *, task_status: trio.TaskStatus[None]
    ) -> None:
        """Attach to the Router, then handle frames until cancelled (the socket closed).

        When this incarnation ends its socket is closed with it: 1001 when the session is
        stopped (the hub shuts down), 1011 after a crash.
        """
        reset_log_context()
        handle = SessionHandle(
            self.identity.session_id, self.identity.role, self.link.send_nowait, self.link.close
        )
        try:
            with trio.fail_after(self._router_timeout):
                attached: Attached = await self._router.ref.ask(lambda reply: Attach(handle, reply))
            self.subscriptions = set(attached.subscriptions)
            async with trio.open_nursery() as lanes:
                self._lanes = lanes
                lanes.start_soon(self._command_lane)
                task_status.started()
                bound = self.identity.bound_vehicle_id
                if bound is not None and not attached.resumed:
                    await self.subscribe((bound,), None)
                async for message in inbox:
                    await self.handle(message)
        except BaseException as exc:
            if ended_by_cancellation(exc):
                self.link.close(GOING_AWAY, "server going away")
            else:
                self.link.close(INTERNAL_ERROR, "internal error")
            raise

    async def handle(self, message: SessionMessage) -> None:
        """Handle one frame; refusals become error frames on the socket."""
        frame = message.frame
        if isinstance(frame, SubscribeFrame):
            await self.subscribe(tuple(frame.vehicle_ids), frame.since)
        elif isinstance(frame, UnsubscribeFrame):
            await self.unsubscribe(tuple(frame.vehicle_ids))
        else:
            self.command(frame)

    def describe(self) -> dict[str, Any]:
        """Fields for /debug/actors."""
        queue = self.link.queue
        return {
            "role": self.identity.role,
            "username": self.identity.username,
            "bound_vehicle_id": self.identity.bound_vehicle_id,
            "subscriptions": sorted(self.subscriptions),
            "queue_depth": queue.depth,
            "conflated": queue.conflated,
            "commands_waiting": self._commands_receive.statistics().current_buffer_used,
            "connection": "closed" if self.link.closed else "open",
            "last_heartbeat": round(self.link.last_received, 3),
        }

    # --- subscriptions --------------------------------------------------------------------

    async def subscribe(
        self, vehicle_ids: tuple[str, ...], since: Mapping[str, int] | None
    ) -> None:
        """Subscribe in the Router, then send ``subscribed`` with a snapshot, then the replay.

        Events for these vehicles that arrive meanwhile wait behind the answer in the queue.
        """
        reservation = self.link.queue.reserve()
        frames: list[Frame] = []
        try:
            session_id = self.identity.session_id
            try:
                with trio.fail_after(self._router_timeout):
                    result: Subscribed = await self._router.ref.ask(
                        lambda reply: Subscribe(session_id, vehicle_ids, since, reply)
                    )
            except (trio.TooSlowError, ActorCrashedError, ActorStoppedError, LookupError):
                logger.warning("subscribe of %s failed", session_id, exc_info=True)
                frames.append(
                    ws_events.error_frame("service_unavailable", "Subscription failed, retry")
                )
                return
            self.subscriptions = set(result.subscriptions)
            snapshot = await self._snapshot_of(vehicle_ids, frames)
            replayed = result.replayed if since is not None else None
            frames.append(ws_events.subscribed(vehicle_ids, snapshot, replayed))
            frames.extend(result.replay)
        finally:
            self.link.fill(reservation, frames)

    async def unsubscribe(self, vehicle_ids: tuple[str, ...]) -> None:
        """Drop subscriptions here and in the Router (no answer frame)."""
        self.subscriptions.difference_update(vehicle_ids)
        await self._router.ref.tell(Unsubscribe(self.identity.session_id, vehicle_ids))

    async def _snapshot_of(
        self, vehicle_ids: tuple[str, ...], errors: list[Frame]
    ) -> list[dict[str, Any]]:
        """The snapshot rows, or [] with an error frame appended when it cannot be read."""
        wanted = None if ALL_VEHICLES in vehicle_ids else list(vehicle_ids)
        try:
            with trio.fail_after(self._snapshot_timeout):
                return await self._snapshot(wanted)
        except ContractError as error:
            errors.append(ws_events.contract_error_frame(error))
        except trio.TooSlowError:
            errors.append(
                ws_events.error_frame("service_unavailable", "Snapshot unavailable, retry later")
            )
        return []

    # --- commands -------------------------------------------------------------------------

    def command(self, command: AnyCommand) -> None:
        """Check the role, fill in id and timestamp, and queue the command for its vehicle."""
        if self.identity.role not in STAFF_ROLES:
            self._refuse(
                command.command_id,
                "forbidden",
                f"Role {self.identity.role} may not send commands",
            )
            return
        command = with_defaults(command, utc_now())
        if command.type == "emergency_stop" and self._lanes is not None:
            self._lanes.start_soon(self._send_command, command)  # never behind other commands
            return
        try:
            self._commands_send.send_nowait(command)
        except trio.WouldBlock:
            self._refuse(
                command.command_id, "service_unavailable", "Too many commands waiting, retry"
            )

    async def _command_lane(self) -> None:
        async for command in self._commands_receive:
            await self._send_command(command)

    async def _send_command(self, command: AnyCommand) -> None:
        """Hand one command to the directory; its statuses come back through the Router."""
        vehicle_id = command.vehicle_id
        assert vehicle_id is not None  # parse_frontend_frame sets it on every command
        identity = self.identity
        origin = CommandOrigin(identity.username, identity.role, session_id=identity.session_id)
        try:
            await self._directory.send_command(vehicle_id, command, origin)
        except ContractError as error:
            frame = ws_events.contract_error_frame(error)
            if command.command_id is not None:
                frame["command_id"] = command.command_id
            self.link.send_nowait(frame)
        except (ActorCrashedError, ActorStoppedError):
            logger.warning("command %s was not handed over", command.command_id, exc_info=True)
            self._refuse(
                command.command_id, "internal_error", "The command could not be handed over"
            )

    def _refuse(self, command_id: str | None, code: str, message: str) -> None:
        extra = {} if command_id is None else {"command_id": command_id}
        self.link.send_nowait(ws_events.error_frame(code, message, **extra))
