"""In-memory stand-ins for what a VehicleActor talks to: its storage, its publisher, its socket.

:class:`MemoryVehicleStore` implements :class:`actors.vehicle.ports.VehicleStore`: telemetry
commits are deduplicated on (kind, vehicle, timestamp) exactly as the Writer does, and every
other write is kept in a list, each with the trio time it landed. A test can make the next
calls of a method fail with a storage error (:meth:`MemoryVehicleStore.fail_next`) or take
time (``delays``). :class:`RecordingPublisher` keeps every event, status and alert; a socket
is an :class:`~actors.sockets.outbound.OutboundLink` (:func:`closed_with` reads how it ended).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import trio

from actors.alerts.rules import AlertDraft
from actors.sockets.outbound import LinkClosedError, OutboundLink
from actors.vehicle.actor import VehicleActor, VehicleOptions
from actors.vehicle.battery_health import BatteryHealthState, copy_state
from actors.vehicle.ports import AuditEntry, NewCommand, Restored
from hub.config import Settings
from storage.database import StorageError, UniqueViolationError
from storage.writer import AlertRow, TelemetryRow, WriteRequest, WriteResult

TelemetryKey = tuple[str, str, datetime]


@dataclass(frozen=True)
class StatusWrite:
    """One ``set_command_status`` call as the store received it."""

    command_ids: list[str]
    status: str
    sends: int | None = None
    ack: Mapping[str, Any] | None = None
    sent: bool = False


@dataclass(frozen=True)
class Landed:
    """Something the store wrote, and the trio time it was written."""

    at: float
    value: Any


@dataclass
class _Failure:
    remaining: int
    error: StorageError
    only: Callable[..., bool] | None


@dataclass
class MemoryVehicleStore:
    """A VehicleStore in lists; see the module docstring."""

    restored: Restored = field(default_factory=Restored)
    delays: dict[str, float] = field(default_factory=dict)
    """Seconds of trio time a method takes before it does anything (by method name)."""

    telemetry: dict[TelemetryKey, TelemetryRow] = field(default_factory=dict)
    commits: list[Landed] = field(default_factory=list)  # WriteResult of each commit
    alerts: list[AlertRow] = field(default_factory=list)  # stored with their telemetry row
    raised: list[tuple[str, str, AlertDraft]] = field(default_factory=list)  # insert_alert
    commands: list[Landed] = field(default_factory=list)  # NewCommand rows
    statuses: list[StatusWrite] = field(default_factory=list)  # every call, row or no row
    command_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each command row as stored now: ``status``, ``ack``, ``attempts``, ``sent_at`` (trio
    time); an update of an id without a row changes nothing, as in PostgreSQL."""
    missions: list[tuple[str, str]] = field(default_factory=list)
    audits: list[Landed] = field(default_factory=list)  # AuditEntry rows
    battery_saves: list[Landed] = field(default_factory=list)  # copies of the state saved
    calls: list[tuple[float, str]] = field(default_factory=list)
    """Every call, failed or not: (trio time, method name)."""
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)

    # --- test controls --------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        times: int,
        error: StorageError,
        *,
        only: Callable[..., bool] | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error`` (without writing).

        ``only`` (called with the method's arguments) limits it to the calls it accepts; the
        others succeed and do not count.
        """
        self._failures.setdefault(method, []).append(_Failure(times, error, only))

    def calls_of(self, method: str) -> list[float]:
        """The trio times ``method`` was called, failed calls included."""
        return [at for at, name in self.calls if name == method]

    def command_ids(self) -> list[str]:
        """The command rows written, in order."""
        return [landed.value.command_id for landed in self.commands]

    def stored_status(self, command_id: str) -> str | None:
        """The status a read of the command's row would show (None: no row)."""
        row = self.command_rows.get(command_id)
        return None if row is None else row["status"]

    def row_of(self, command_id: str) -> Landed:
        """The command row written for ``command_id`` (AssertionError if there is none)."""
        found = [landed for landed in self.commands if landed.value.command_id == command_id]
        assert found, f"no row for {command_id}; rows: {self.command_ids()}"
        [landed] = found
        return landed

    async def _enter(self, method: str, *args: Any) -> None:
        await trio.sleep(self.delays.get(method, 0.0))  # a checkpoint even when 0
        self.calls.append((trio.current_time(), method))
        for failure in self._failures.get(method, []):
            if failure.remaining > 0 and (failure.only is None or failure.only(*args)):
                failure.remaining -= 1
                raise failure.error

    # --- VehicleStore ---------------------------------------------------------------------

    async def restore(self, vehicle_id: str) -> Restored:
        await self._enter("restore", vehicle_id)
        return self.restored

    async def commit(self, request: WriteRequest) -> WriteResult:
        """New rows are those whose key is not stored yet, nor earlier in the same request."""
        await self._enter("commit", request)
        flags: list[bool] = []
        for row in request.rows:
            is_new = row.key not in self.telemetry
            if is_new:
                self.telemetry[row.key] = row
            flags.append(is_new)
        self.alerts.extend(alert for alert in request.alerts if flags[alert.source])
        result = WriteResult(tuple(flags))
        self.commits.append(Landed(trio.current_time(), result))
        return result

    async def alert_of_error_report(self, vehicle_id: str, timestamp: datetime) -> str | None:
        await self._enter("alert_of_error_report", vehicle_id, timestamp)
        row = self.telemetry.get(("error", vehicle_id, timestamp))
        return None if row is None else row.values.get("alert_id")

    async def save_battery_health(self, state: BatteryHealthState) -> None:
        await self._enter("save_battery_health", state)
        self.battery_saves.append(Landed(trio.current_time(), copy_state(state)))

    async def insert_command(self, command: NewCommand) -> None:
        await self._enter("insert_command", command)
        if command.command_id in self.command_rows:
            raise UniqueViolationError(f"command {command.command_id} exists")
        self.commands.append(Landed(trio.current_time(), command))
        self.command_rows[command.command_id] = {
            "status": command.status,
            "ack": None,
            "attempts": 0,
            "sent_at": None,
        }

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
        await self._enter("set_command_status", command_ids, status)
        written = None if ack is None else copy.deepcopy(dict(ack))
        self.statuses.append(StatusWrite(list(command_ids), status, sends, written, sent))
        for command_id in command_ids:
            row = self.command_rows.get(command_id)
            if row is None:
                continue
            row["status"] = status
            if written is not None:
                row["ack"] = written
            if sends is not None:
                row["attempts"] = sends
            if sent_at is not None:
                row["sent_at"] = sent_at
            elif sent:
                row["sent_at"] = trio.current_time()

    async def set_mission_status(self, mission_id: str, status: str) -> None:
        await self._enter("set_mission_status", mission_id, status)
        self.missions.append((mission_id, status))

    async def insert_alert(self, vehicle_id: str, alert_id: str, draft: AlertDraft) -> None:
        await self._enter("insert_alert", vehicle_id, alert_id, draft)
        self.raised.append((vehicle_id, alert_id, draft))

    async def audit(self, entry: AuditEntry) -> None:
        await self._enter("audit", entry)
        self.audits.append(Landed(trio.current_time(), entry))


async def closed_with(link: OutboundLink) -> tuple[int, str]:
    """The close code and reason the hub asked the socket behind ``link`` to close with."""
    with pytest.raises(LinkClosedError) as closed:
        await link.next_frame()
    return closed.value.code, closed.value.reason


class RecordingPublisher:
    """A Publisher that keeps everything, each with the trio time it was published."""

    def __init__(self, *, staff_online: bool = True) -> None:
        self.staff = staff_online
        self.vehicle_events: list[tuple[str, dict[str, Any]]] = []
        self.command_statuses: list[tuple[str, dict[str, Any], str | None]] = []
        self.alerts: list[dict[str, Any]] = []
        self.alert_times: list[float] = []

    def vehicle_event(self, vehicle_id: str, event: dict[str, Any]) -> None:
        self.vehicle_events.append((vehicle_id, event))

    def command_status(
        self, vehicle_id: str, event: dict[str, Any], *, sender_session: str | None
    ) -> None:
        self.command_statuses.append((vehicle_id, event, sender_session))

    def alert(self, event: dict[str, Any]) -> None:
        self.alerts.append(event)
        self.alert_times.append(trio.current_time())

    async def staff_online(self) -> bool:
        await trio.lowlevel.checkpoint()
        return self.staff

    def statuses_of(self, command_id: str) -> list[str]:
        """Every status published for one command, in order."""
        return [
            event["status"]
            for _, event, _ in self.command_statuses
            if event["command_id"] == command_id
        ]


def vehicle_actor(
    vehicle_id: str,
    store: MemoryVehicleStore,
    publisher: RecordingPublisher | None = None,
    **options: Any,
) -> VehicleActor:
    """A VehicleActor on the fakes, with the hub's default (contract) limits and timers."""
    return VehicleActor(
        vehicle_id,
        store=store,
        publisher=publisher if publisher is not None else RecordingPublisher(),
        known_error_codes=KNOWN_ERROR_CODES,
        options=VehicleOptions(rate_limits=Settings().rate_limits, **options),
    )


KNOWN_ERROR_CODES = frozenset({"SAFE_COLLISION_DETECTED", "NAV_PATH_BLOCKED"})
