"""The door to vehicle actors: start on first use, then talk to them by message.

REST handlers, the vehicle socket and frontend sessions go through :class:`VehicleDirectory`
so none of them needs to know how actors are started, named or supervised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.rate_limit import Decision
from actors.sockets.outbound import OutboundLink
from actors.vehicle.actor import VehicleActor
from actors.vehicle.command_desk import PendingCommand
from actors.vehicle.messages import (
    AckReceived,
    BulkReport,
    CommandOrigin,
    Connect,
    Disconnect,
    Report,
    SendCommand,
    VehicleMessage,
)
from actors.vehicle.registry import VehicleRegistry
from actors.vehicle.rows import TelemetryRecord
from actors.vehicle.telemetry import Accepted
from hub.contract.bulk import ParsedBulk
from hub.contract.command_acks import CommandAck
from hub.contract.commands import AnyCommand
from hub.runtime import ActorRef, Registry

VEHICLE = "vehicle"
VEHICLE_MAILBOX = 1_000
GOING_AWAY = 1001


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
        """The vehicle's actor, started if needed; 404 ``unknown_vehicle`` if not registered.

        Blocks while a new actor restores its queued commands.
        """
        self._known.require(vehicle_id)
        return await self._actors.get_or_start(
            VEHICLE,
            vehicle_id,
            lambda: self._make_actor(vehicle_id),
            mailbox_size=VEHICLE_MAILBOX,
        )

    def is_connected(self, vehicle_id: str) -> bool:
        """Whether the vehicle's socket is open on this hub."""
        ref = self._actors.lookup(VEHICLE, vehicle_id)
        if ref is None:
            return False
        for child in self._actors.supervisor.children():
            if child.ref is ref and isinstance(child.actor, VehicleActor):
                return child.actor.desk.link is not None
        return False

    def connected_ids(self) -> set[str]:
        """Every vehicle with an open socket on this hub."""
        return {
            child.key
            for child in self._actors.supervisor.children()
            if child.kind == VEHICLE
            and isinstance(child.actor, VehicleActor)
            and child.actor.desk.link is not None
        }

    async def report(
        self, vehicle_id: str, record: TelemetryRecord, decision: Decision
    ) -> Accepted:
        """Check, commit and publish one live record (raises the contract's errors)."""
        ref = await self.actor(vehicle_id)
        return await ref.ask(lambda reply: Report(record, decision, reply))

    async def bulk(self, vehicle_id: str, parsed: ParsedBulk, decision: Decision) -> Accepted:
        """Commit an offline backlog in one transaction."""
        ref = await self.actor(vehicle_id)
        return await ref.ask(lambda reply: BulkReport(parsed, decision, reply))

    async def send_command(
        self, vehicle_id: str, command: AnyCommand, origin: CommandOrigin
    ) -> PendingCommand:
        """Hand a command to the vehicle; returns once it is recorded and sent or queued."""
        ref = await self.actor(vehicle_id)
        return await ref.ask(lambda reply: SendCommand(command, origin, reply))

    async def connect(self, vehicle_id: str, link: OutboundLink) -> None:
        """Attach a vehicle socket (the older one, if any, is closed 4009)."""
        ref = await self.actor(vehicle_id)
        await ref.ask(lambda reply: Connect(link, reply))

    async def disconnect(self, vehicle_id: str, link_id: str) -> None:
        """Detach a vehicle socket that closed."""
        ref = self._actors.lookup(VEHICLE, vehicle_id)
        if ref is not None and not ref.stopped:
            await ref.tell(Disconnect(link_id))

    async def acknowledged(self, vehicle_id: str, ack: CommandAck) -> None:
        """Pass a vehicle's command ack to its actor."""
        ref = await self.actor(vehicle_id)
        await ref.tell(AckReceived(ack))

    def going_away(self) -> int:
        """Close every vehicle and frontend socket with 1001 (shutdown); return how many."""
        closed = 0
        for child in self._actors.supervisor.children():
            actor = child.actor
            link = getattr(actor, "link", None)
            if isinstance(actor, VehicleActor):
                link = actor.desk.link
            if isinstance(link, OutboundLink) and not link.closed:
                link.close(GOING_AWAY, "server going away")
                closed += 1
        return closed

    async def drain(self) -> None:
        """Wait until every vehicle actor has written what it queued for storage."""
        for child in self._actors.supervisor.children():
            if isinstance(child.actor, VehicleActor):
                await child.actor.drain()

    def snapshot(self) -> list[dict[str, Any]]:
        """Every live actor (for /debug/actors)."""
        return self._actors.snapshot()
