"""What a VehicleActor needs from storage and from the rest of the hub, as interfaces.

:class:`VehicleStore` is implemented over PostgreSQL by
:class:`actors.vehicle.store.PostgresVehicleStore` and in memory by the unit tests' fake;
:class:`Publisher` by :class:`actors.alerts.publisher.HubPublisher` (Router and Alerts).
Storage methods raise the :mod:`storage.database` error family; the actor turns an
unreachable database into 503 and anything else into a logged 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from actors.alerts.rules import AlertDraft
from actors.vehicle.battery_health import BatteryHealthState
from storage.writer import WriteRequest, WriteResult


@dataclass(frozen=True, slots=True)
class StoredCommand:
    """A command row still waiting for its vehicle (``queued`` or ``sent``) at restore."""

    command_id: str
    type: str
    payload: dict[str, Any]
    created_at: datetime
    sender: str | None
    queue_position: int


@dataclass(frozen=True, slots=True)
class NewCommand:
    """A command row to insert (with its mission, for a dispatch)."""

    command_id: str
    vehicle_id: str
    type: str
    payload: dict[str, Any]
    status: str
    priority: str
    sender: str | None
    created_at: datetime
    queue_position: int
    mission: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log (an emergency stop and its result)."""

    action: str
    actor: str | None
    actor_role: str | None
    vehicle_id: str
    outcome: str
    details: dict[str, Any]
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Restored:
    """What storage holds of one vehicle when its actor starts."""

    latest: Mapping[str, Any] | None = None
    battery_health: Mapping[str, Any] | None = None
    queued: Sequence[StoredCommand] = field(default_factory=tuple)


class VehicleStore(Protocol):
    """The storage a VehicleActor reads and writes; every method may raise StorageError."""

    async def restore(self, vehicle_id: str) -> Restored:
        """Latest state, battery-health accumulators and waiting commands of one vehicle."""
        ...

    async def commit(self, request: WriteRequest) -> WriteResult:
        """Commit telemetry rows (and the alerts they raise) in one transaction."""
        ...

    async def alert_of_error_report(self, vehicle_id: str, timestamp: datetime) -> str | None:
        """The alert id stored with an error report (to answer a resend)."""
        ...

    async def save_battery_health(self, state: BatteryHealthState) -> None:
        """Store the battery-health accumulators."""
        ...

    async def insert_command(self, command: NewCommand) -> None:
        """Insert a command row (UniqueViolationError if the id was used before)."""
        ...

    async def set_command_status(
        self,
        command_ids: Sequence[str],
        status: str,
        *,
        sends: int | None = None,
        ack: Mapping[str, Any] | None = None,
        sent: bool = False,
        sent_at: datetime | None = None,
    ) -> None:
        """Move command rows to ``status``; ``sent`` stamps the send time now, ``sent_at``
        gives it (a row written after its command went out)."""
        ...

    async def set_mission_status(self, mission_id: str, status: str) -> None:
        """Move a mission along."""
        ...

    async def insert_alert(self, vehicle_id: str, alert_id: str, draft: AlertDraft) -> None:
        """Store an alert raised outside a telemetry commit (an unconfirmed stop)."""
        ...

    async def audit(self, entry: AuditEntry) -> None:
        """Write one audit-log row."""
        ...


class Publisher(Protocol):
    """Where a vehicle's events, command statuses and alerts go; never blocks."""

    def vehicle_event(self, vehicle_id: str, event: dict[str, Any]) -> None:
        """A telemetry or connection event of one vehicle (``seq`` is added on the way)."""
        ...

    def command_status(
        self, vehicle_id: str, event: dict[str, Any], *, sender_session: str | None
    ) -> None:
        """A command's status change: to its sender and the vehicle's subscribers."""
        ...

    def alert(self, event: dict[str, Any]) -> None:
        """A newly raised alert: to staff sessions, side channels, escalation."""
        ...

    async def staff_online(self) -> bool:
        """Whether an admin or operator session is attached to receive alerts now."""
        ...


class SocketPresence(Protocol):
    """Where a hub records that it holds a vehicle's socket, so that other hubs can route
    the vehicle's commands here and close an older socket of it (the bus between hubs).
    Never blocks."""

    def claim(self, vehicle_id: str, link_id: str) -> None:
        """This hub now holds the vehicle's socket ``link_id``."""
        ...

    def release(self, vehicle_id: str, link_id: str) -> None:
        """The socket ``link_id`` closed."""
        ...


class NoPresence:
    """One hub on its own: nobody else needs to know."""

    def claim(self, vehicle_id: str, link_id: str) -> None:
        """Nothing to record."""

    def release(self, vehicle_id: str, link_id: str) -> None:
        """Nothing to record."""
