"""The door to vehicle actors: start on first use, then talk to them only by message.

REST handlers, the vehicle socket and frontend sessions go through :class:`VehicleDirectory`,
so none of them knows how actors are started, named or supervised, and nothing reaches into
an actor: every answer is a value the actor sent.

With several hubs on a bus (``hub`` given), a command for a vehicle whose socket another hub
holds is run there (:mod:`actors.vehicle.remote`); if that hub does not answer, the command is
queued here, in the database, for the vehicle's next connection. A vehicle that connects here
while this hub already has its actor starts a fresh one, restored from the database, so the
commands other hubs queued for it meanwhile are delivered; and when it connects to another
hub, this hub closes its older socket (4009).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

import trio

from actors.sockets.outbound import OutboundLink
from actors.vehicle.actor import VehicleActor
from actors.vehicle.battery_health import BatteryHealthState
from actors.vehicle.messages import (
    AckReceived,
    AwaitOutcome,
    BatteryHealthNow,
    BulkAccepted,
    BulkReport,
    CommandNow,
    CommandOrigin,
    CommandStatus,
    Connect,
    ConnectedElsewhere,
    Disconnect,
    Drain,
    GoingAway,
    QueuedElsewhere,
    Report,
    ReportAccepted,
    SendCommand,
    VehicleMessage,
)
from actors.vehicle.registry import VehicleRegistry
from actors.vehicle.remote import (
    COMMAND_OUTCOME,
    OWNER_LOOKUP,
    REMOTE_MARGIN,
    SEND_COMMAND,
    HubLink,
    decode_answer,
    decode_outcome_call,
    decode_send,
    encode_answer,
    encode_outcome_call,
    encode_refusal,
    encode_send,
)
from hub.contract.bulk import ParsedBulk
from hub.contract.command_acks import CommandAck
from hub.contract.commands import AnyCommand
from hub.contract.errors import ContractError
from hub.contract.telemetry import TelemetryRecord
from hub.errors import InternalError, UnavailableError
from hub.runtime import (
    ActorCrashedError,
    ActorRef,
    ActorStoppedError,
    MailboxFullError,
    Registry,
    Reply,
)
from storage.database import StorageError, StorageUnavailableError

logger = logging.getLogger(__name__)

VEHICLE = "vehicle"
VEHICLE_MAILBOX = 1_000
DRAIN_TIMEOUT = 5.0

T = TypeVar("T")


class VehicleDirectory:
    """Finds (or starts) the actor of a registered vehicle and sends it messages."""

    def __init__(
        self,
        *,
        actors: Registry,
        known: VehicleRegistry,
        make_actor: Callable[[str], VehicleActor],
        hub: HubLink | None = None,
    ) -> None:
        self._actors = actors
        self._known = known
        self._make_actor = make_actor
        self._hub = hub
        self.forwarded = 0  # commands run on the hub holding the vehicle's socket
        self.forward_failures = 0  # ... that got no answer there, and were queued here

    async def actor(self, vehicle_id: str) -> ActorRef[VehicleMessage]:
        """The vehicle's actor, started if needed.

        Raises UnknownVehicleError if the vehicle is not registered, UnavailableError if its
        stored state cannot be read (the database is away). Blocks while a new actor restores.
        """
        self._known.require(vehicle_id)
        try:
            return await self._actors.get_or_start(
                VEHICLE,
                vehicle_id,
                lambda: self._make_actor(vehicle_id),
                mailbox_size=VEHICLE_MAILBOX,
            )
        except StorageUnavailableError:
            raise UnavailableError() from None
        except StorageError as exc:
            logger.error("vehicle %s could not be restored: %s", vehicle_id, exc)
            raise InternalError() from exc

    async def _ask(self, vehicle_id: str, build: Callable[[Reply[T]], VehicleMessage]) -> T:
        return await _asked(await self.actor(vehicle_id), build)

    async def report(
        self, vehicle_id: str, record: TelemetryRecord, *, request_id: str | None
    ) -> ReportAccepted:
        """Admit, check, commit and publish one live record (raises the error family)."""
        return await self._ask(vehicle_id, lambda reply: Report(record, request_id, reply))

    async def bulk(
        self, vehicle_id: str, parsed: ParsedBulk, *, request_id: str | None
    ) -> BulkAccepted:
        """Commit an offline backlog in one transaction."""
        return await self._ask(vehicle_id, lambda reply: BulkReport(parsed, request_id, reply))

    async def send_command(
        self, vehicle_id: str, command: AnyCommand, origin: CommandOrigin
    ) -> CommandStatus:
        """Hand a command to the vehicle; returns once it is recorded and sent or queued.

        When another hub holds the vehicle's socket, that hub runs it (one bus round trip);
        if it does not answer within a few seconds, the command is queued on this hub.
        """
        self._known.require(vehicle_id)
        owner = await self._remote_owner(vehicle_id)
        if owner is not None:
            body = encode_send(vehicle_id, command, origin)
            answer = await self._forward(owner, SEND_COMMAND, body, REMOTE_MARGIN)
            if answer is not None:
                return answer
        return await self._send_here(vehicle_id, command, origin)

    async def _send_here(
        self, vehicle_id: str, command: AnyCommand, origin: CommandOrigin
    ) -> CommandStatus:
        return await self._ask(vehicle_id, lambda reply: SendCommand(command, origin, reply))

    async def outcome(self, vehicle_id: str, command_id: str, *, wait: float) -> CommandStatus:
        """The command's outcome once written, or its status after ``wait`` seconds (asked of
        the hub holding the vehicle's socket, when that is another one)."""
        owner = await self._remote_owner(vehicle_id)
        if owner is not None:
            body = encode_outcome_call(vehicle_id, command_id, wait)
            answer = await self._forward(owner, COMMAND_OUTCOME, body, wait + REMOTE_MARGIN)
            if answer is not None:
                return answer
        return await self._outcome_here(vehicle_id, command_id, wait=wait)

    async def _remote_owner(self, vehicle_id: str) -> str | None:
        """The other hub holding the vehicle's socket, if one does and the bus is up."""
        hub = self._hub
        if hub is None or not hub.up or hub.holds(vehicle_id):
            return None
        owners = await hub.owners([vehicle_id], within=OWNER_LOOKUP)
        owner = None if owners is None else owners.get(vehicle_id)
        return owner if owner is not None and owner != hub.hub_id else None

    async def _forward(
        self, owner: str, name: str, body: str, answer_within: float
    ) -> CommandStatus | None:
        """Run a call on ``owner``; its status, or None when it did not answer (raises the
        refusal it answered with)."""
        assert self._hub is not None
        try:
            answer = await self._hub.call(owner, name, body, answer_within=answer_within)
        except Exception as exc:  # the owner is gone or the bus was lost: handle it here
            self.forward_failures += 1
            logger.warning("hub %s did not run %s (%s); handling it here", owner, name, exc)
            return None
        self.forwarded += 1
        return decode_answer(answer)

    async def handle_call(self, name: str, body: str) -> str:
        """Run another hub's call here (this hub holds the vehicle's socket); a refusal is
        answered as the error itself. Blocks as the same request made here would."""
        try:
            if name == SEND_COMMAND:
                vehicle_id, command, origin = decode_send(body)
                self._known.require(vehicle_id)
                return encode_answer(await self._send_here(vehicle_id, command, origin))
            if name == COMMAND_OUTCOME:
                vehicle_id, command_id, wait = decode_outcome_call(body)
                status = await self._outcome_here(vehicle_id, command_id, wait=wait)
                return encode_answer(status)
        except ContractError as refusal:
            return encode_refusal(refusal)
        raise LookupError(f"no call named {name}")

    async def queued_elsewhere(self, vehicle_id: str) -> None:
        """A command was queued for the vehicle in the database (maybe by another hub): if
        this hub holds its socket, its actor reads and delivers it. Never blocks for long."""
        self._tell_if_running(vehicle_id, QueuedElsewhere())

    async def reread_queued(self) -> None:
        """Notifications may have been missed: every vehicle actor holding a socket reads
        its queued commands again."""
        for ref in self._actors.supervisor.refs(VEHICLE):
            with contextlib.suppress(MailboxFullError, ActorStoppedError):
                ref.tell_nowait(QueuedElsewhere())

    def connected_elsewhere(self, vehicle_id: str, hub_id: str) -> None:
        """Another hub now holds the vehicle's socket: close ours (4009), without a
        "disconnected" event (the vehicle is connected, there). Never blocks; the next
        socket here restarts the actor from the database (:meth:`connect`)."""
        if self._hub is not None and hub_id != self._hub.hub_id:
            self._tell_if_running(vehicle_id, ConnectedElsewhere(hub_id))

    def _tell_if_running(self, vehicle_id: str, message: VehicleMessage) -> None:
        """Hand ``message`` to the vehicle's actor if this hub has one (never starts one, never
        blocks; a full mailbox or a stopping actor drops it)."""
        ref = self._actors.lookup(VEHICLE, vehicle_id)
        if ref is not None and not ref.stopped:
            with contextlib.suppress(MailboxFullError, ActorStoppedError):
                ref.tell_nowait(message)

    async def _outcome_here(
        self, vehicle_id: str, command_id: str, *, wait: float
    ) -> CommandStatus:
        with trio.move_on_after(wait):
            return await self._ask(vehicle_id, lambda reply: AwaitOutcome(command_id, reply))
        return await self._ask(vehicle_id, lambda reply: CommandNow(command_id, reply))

    async def battery_health(self, vehicle_id: str) -> BatteryHealthState:
        """A copy of the vehicle's battery-health accumulators."""
        return await self._ask(vehicle_id, BatteryHealthNow)

    async def connect(self, vehicle_id: str, link: OutboundLink) -> ActorRef[VehicleMessage]:
        """Attach a vehicle socket (the older one, if any, is closed 4009); the actor that
        holds it, for the socket's frames.

        With several hubs, an actor this hub had before the connection is first drained and
        stopped (a few seconds at most), so the one that takes the socket is restored from
        the database with every command any hub queued for the vehicle.
        """
        if self._hub is not None:
            await self._restart_for_socket(vehicle_id)
        ref = await self.actor(vehicle_id)
        await _asked(ref, lambda reply: Connect(link, reply))
        return ref

    async def _restart_for_socket(self, vehicle_id: str) -> None:
        ref = self._actors.lookup(VEHICLE, vehicle_id)
        if ref is None or ref.stopped:
            return
        with trio.move_on_after(DRAIN_TIMEOUT):
            with contextlib.suppress(ActorCrashedError, ActorStoppedError):
                await ref.ask(Drain)
        await self._actors.supervisor.stop_child(VEHICLE, vehicle_id)

    async def disconnect(self, vehicle_id: str, link_id: str) -> None:
        """Detach a vehicle socket that closed (nothing to do if the actor is gone)."""
        ref = self._actors.lookup(VEHICLE, vehicle_id)
        if ref is not None and not ref.stopped:
            with contextlib.suppress(ActorStoppedError):
                await ref.tell(Disconnect(link_id))

    async def acknowledged(
        self, vehicle_id: str, ack: CommandAck, *, request_id: str | None = None
    ) -> None:
        """Pass a vehicle's command ack to its actor."""
        ref = await self.actor(vehicle_id)
        with contextlib.suppress(ActorStoppedError):
            await ref.tell(AckReceived(ack, request_id))

    def going_away(self) -> int:
        """Tell every vehicle actor to close its socket with 1001 (shutdown); how many told."""
        told = 0
        for ref in self._actors.supervisor.refs(VEHICLE):
            try:
                ref.tell_nowait(GoingAway())
                told += 1
            except (MailboxFullError, ActorStoppedError):
                logger.warning("%s did not take the shutdown notice", ref)
        return told

    async def drain(self) -> None:
        """Wait (a few seconds at most per actor) until every vehicle actor has written what it
        queued for storage and saved its battery accumulators."""
        for ref in self._actors.supervisor.refs(VEHICLE):
            with trio.move_on_after(DRAIN_TIMEOUT):
                with contextlib.suppress(ActorCrashedError, ActorStoppedError):
                    await ref.ask(Drain)


async def _asked(ref: ActorRef[VehicleMessage], build: Callable[[Reply[T]], VehicleMessage]) -> T:
    """The actor's answer; its crash is an InternalError, its stop an UnavailableError."""
    try:
        return await ref.ask(build)
    except ActorCrashedError as exc:
        raise InternalError() from exc
    except ActorStoppedError:
        raise UnavailableError("The hub is shutting down, retry later") from None
