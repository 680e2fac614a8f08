"""What a VehicleActor is told (its mailbox union) and the immutable values it answers with.

Requests from outside carry a :class:`~hub.runtime.Reply`; the caller sets the deadline.
Answers are frozen values — never the actor's own objects — so nothing another task holds
can change under it, and nothing it holds lets it reach into the actor.

Six messages come from the actor's own lanes (:class:`StateSeen`, :class:`CommandStored`,
:class:`StopRecorded`, :class:`StopAnswerDue`, :class:`StatusWritten`,
:class:`QueuedCommandsRead`): a lane that finished a piece of work tells the control task,
which alone changes the command desk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from actors.rate_limit import Decision
from actors.sockets.outbound import OutboundLink
from actors.vehicle.battery_health import BatteryHealthState
from hub.contract.bulk import ParsedBulk
from hub.contract.command_acks import CommandAck
from hub.contract.commands import AnyCommand
from hub.contract.telemetry import TelemetryKind, TelemetryRecord
from hub.errors import ContractError
from hub.runtime import Reply

if TYPE_CHECKING:
    from actors.vehicle.ports import StoredCommand


@dataclass(frozen=True, slots=True)
class CommandOrigin:
    """Who sent a command: the person (for the audit log), their session, their request."""

    username: str
    role: str
    session_id: str | None = None
    request_id: str | None = None


# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportAccepted:
    """A live report committed (or a resend of one already stored: ``duplicate``).

    ``alert_id``/``staff_notified``/``unknown_error_code`` are set for error reports;
    ``low_battery_soc`` for a battery reading below the advice level while not charging.
    """

    kind: TelemetryKind
    timestamp: datetime
    received_at: datetime
    duplicate: bool
    quota: Decision
    alert_id: str | None = None
    staff_notified: bool = False
    unknown_error_code: bool = False
    low_battery_soc: float | None = None


@dataclass(frozen=True, slots=True)
class BulkAccepted:
    """An offline backlog committed in one transaction."""

    received: int
    inserted: int
    offline_duration_seconds: int | None
    quota: Decision


@dataclass(frozen=True, slots=True)
class CommandStatus:
    """A command's status at the moment of the answer; ``settled`` once it has an outcome."""

    command_id: str
    vehicle_id: str
    status: str
    ack: Mapping[str, Any] | None
    settled: bool


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """A validated live record to admit (rate limit, time window), check, commit and publish."""

    record: TelemetryRecord
    request_id: str | None
    reply: Reply[ReportAccepted]


@dataclass(frozen=True, slots=True)
class BulkReport:
    """A validated offline backlog to admit and commit in one transaction."""

    parsed: ParsedBulk
    request_id: str | None
    reply: Reply[BulkAccepted]


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
    """The vehicle answered a command (``request_id``: of its socket's opening request)."""

    ack: CommandAck
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendCommand:
    """An operator's command; answered once it is sent or queued (or refused)."""

    command: AnyCommand
    origin: CommandOrigin
    reply: Reply[CommandStatus]


@dataclass(frozen=True, slots=True)
class AwaitOutcome:
    """Answered when the command has an outcome (at once if it has one already)."""

    command_id: str
    reply: Reply[CommandStatus]


@dataclass(frozen=True, slots=True)
class CommandNow:
    """Answered at once with the command's current status."""

    command_id: str
    reply: Reply[CommandStatus]


@dataclass(frozen=True, slots=True)
class BatteryHealthNow:
    """Answered with a copy of the vehicle's battery-health accumulators."""

    reply: Reply[BatteryHealthState]


@dataclass(frozen=True, slots=True)
class GoingAway:
    """The hub is shutting down: close the vehicle's socket with 1001."""


@dataclass(frozen=True, slots=True)
class ConnectedElsewhere:
    """The vehicle opened a socket on another hub: close this hub's one with 4009."""

    hub_id: str


@dataclass(frozen=True, slots=True)
class QueuedElsewhere:
    """Another hub queued a command for this vehicle in the database: if this hub holds the
    vehicle's socket, read the queued commands and deliver the ones it does not know."""


@dataclass(frozen=True, slots=True)
class QueuedCommandsRead:
    """The vehicle's queued commands as the database holds them now (after
    :class:`QueuedElsewhere`)."""

    commands: tuple[StoredCommand, ...]


@dataclass(frozen=True, slots=True)
class Drain:
    """Answered once every storage write queued before it is done (shutdown)."""

    reply: Reply[None]


# --- from the actor's own lanes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateSeen:
    """The telemetry lane accepted a status: the state the resume rule looks at."""

    state: str
    accepted_at: float


@dataclass(frozen=True, slots=True)
class CommandStored:
    """The persistence lane wrote (or failed to write) an ordinary command's row."""

    command_id: str
    error: ContractError | None


@dataclass(frozen=True, slots=True)
class StopRecorded:
    """An emergency stop's row is written at last: its current status must follow it."""

    command_id: str


@dataclass(frozen=True, slots=True)
class StopAnswerDue:
    """An emergency stop's sender may be answered now: the first attempt to record the stop
    has ended (its row is written, refused, or left to the retries of an outage), or the
    stop has waited :data:`~actors.vehicle.command_rows.STOP_ANSWER_GRACE` for it. Told once
    for each; the second changes nothing."""

    command_id: str


@dataclass(frozen=True, slots=True)
class StatusWritten:
    """The persistence lane wrote a command's settled status: its waiters may be answered."""

    command_id: str
    status: str


VehicleMessage = (
    Report
    | BulkReport
    | Connect
    | Disconnect
    | AckReceived
    | SendCommand
    | AwaitOutcome
    | CommandNow
    | BatteryHealthNow
    | GoingAway
    | ConnectedElsewhere
    | QueuedElsewhere
    | QueuedCommandsRead
    | Drain
    | StateSeen
    | CommandStored
    | StopRecorded
    | StopAnswerDue
    | StatusWritten
)
"""Everything a VehicleActor's mailbox holds."""
