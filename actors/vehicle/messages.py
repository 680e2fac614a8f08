"""What a VehicleActor is told (its mailbox union) and how it writes command statuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.alerts import rules as alert_rules
from actors.rate_limit import Decision
from actors.sockets.outbound import OutboundLink
from actors.vehicle.command_desk import PendingCommand, StatusStore
from actors.vehicle.rows import TelemetryRecord
from actors.vehicle.telemetry import Accepted
from hub.contract.bulk import ParsedBulk
from hub.contract.command_acks import CommandAck
from hub.contract.commands import AnyCommand
from hub.runtime import Reply
from storage.database import Database
from storage.queries import accounts as account_queries
from storage.queries import alerts as alert_queries
from storage.queries import commands as command_queries


@dataclass(frozen=True, slots=True)
class CommandOrigin:
    """Who sent a command: the person (for the audit log) and their session, if any."""

    username: str
    role: str
    session_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A live telemetry record to check, commit, answer and publish."""

    record: TelemetryRecord
    decision: Decision
    reply: Reply[Accepted]


@dataclass(frozen=True, slots=True)
class BulkReport:
    """An offline backlog to commit in one transaction."""

    parsed: ParsedBulk
    decision: Decision
    reply: Reply[Accepted]


@dataclass(frozen=True, slots=True)
class Connect:
    """The vehicle's socket is open; this link replaces any older one (closed 4009)."""

    link: OutboundLink
    reply: Reply[None]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """A vehicle socket closed."""

    link_id: str


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The vehicle answered a command."""

    ack: CommandAck


@dataclass(frozen=True, slots=True)
class SendCommand:
    """An operator's command for this vehicle; the reply is the command's pending record."""

    command: AnyCommand
    origin: CommandOrigin
    reply: Reply[PendingCommand]


VehicleMessage = Report | BulkReport | Connect | Disconnect | AckReceived | SendCommand


class StorageStatusStore(StatusStore):
    """Command statuses, stop results, alerts and missions written to PostgreSQL."""

    def __init__(self, database: Database, vehicle_id: str) -> None:
        self._database = database
        self._vehicle_id = vehicle_id

    async def set_status(
        self,
        command_ids: list[str],
        status: str,
        *,
        sends: int | None = None,
        ack: dict[str, Any] | None = None,
        sent: bool = False,
    ) -> None:
        await command_queries.set_status(
            self._database, command_ids, status, attempts=sends, ack=ack, sent=sent
        )

    async def raise_alert(
        self, vehicle_id: str, draft: alert_rules.AlertDraft, alert_id: str
    ) -> None:
        await alert_queries.insert_alert(
            self._database,
            alert_id=alert_id,
            vehicle_id=vehicle_id,
            kind=draft.kind,
            severity=draft.severity,
            message=draft.message,
            error_code=draft.error_code,
        )

    async def mission_status(self, mission_id: str, status: str) -> None:
        await command_queries.set_mission_status(self._database, mission_id, status)

    async def stop_result(self, command_id: str, status: str, ack: dict[str, Any] | None) -> None:
        await account_queries.write_audit(
            self._database,
            action="emergency_stop_result",
            actor=None,
            actor_role=None,
            vehicle_id=self._vehicle_id,
            outcome=status,
            details={"command_id": command_id, "ack": ack},
        )
