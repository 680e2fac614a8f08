"""The door to vehicle actors: start on first use, then talk to them only by message.

REST handlers, the vehicle socket and frontend sessions go through :class:`VehicleDirectory`,
so none of them knows how actors are started, named or supervised, and nothing reaches into
an actor: every answer is a value the actor sent.
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
    Disconnect,
    Drain,
    GoingAway,
    Report,
    ReportAccepted,
    SendCommand,
    VehicleMessage,
)
from actors.vehicle.registry import VehicleRegistry
from hub.contract.bulk import ParsedBulk
from hub.contract.command_acks import CommandAck
from hub.contract.commands import AnyCommand
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
    ) -> None:
        self._actors = actors
        self._known = known
        self._make_actor = make_actor

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
        ref = await self.actor(vehicle_id)
        try:
            return await ref.ask(build)
        except ActorCrashedError as exc:
            raise InternalError() from exc
        except ActorStoppedError:
            raise UnavailableError("The hub is shutting down, retry later") from None

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
        """Hand a command to the vehicle; returns once it is recorded and sent or queued."""
        return await self._ask(vehicle_id, lambda reply: SendCommand(command, origin, reply))

    async def outcome(self, vehicle_id: str, command_id: str, *, wait: float) -> CommandStatus:
        """The command's outcome once written, or its status after ``wait`` seconds."""
        with trio.move_on_after(wait):
            return await self._ask(vehicle_id, lambda reply: AwaitOutcome(command_id, reply))
        return await self._ask(vehicle_id, lambda reply: CommandNow(command_id, reply))

    async def battery_health(self, vehicle_id: str) -> BatteryHealthState:
        """A copy of the vehicle's battery-health accumulators."""
        return await self._ask(vehicle_id, BatteryHealthNow)

    async def connect(self, vehicle_id: str, link: OutboundLink) -> None:
        """Attach a vehicle socket (the older one, if any, is closed 4009)."""
        await self._ask(vehicle_id, lambda reply: Connect(link, reply))

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
