"""A command's row: what it holds, and the persistence-lane jobs that write it.

An ordinary command's row is written before the command is sent (:func:`row_writer` tells
the control task how that went). An emergency stop goes out first and its row and audit
record follow (:class:`StopRecorder`): once in order in the lane; if the database is away,
the remaining attempts (every second, for up to five minutes) run in a task of their own, so
a stop never holds up the writes of other commands. A refusal of the data is not retried.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors.vehicle.command_desk import PendingCommand, PersistJob
from actors.vehicle.messages import (
    CommandOrigin,
    CommandStored,
    StopAnswerDue,
    StopRecorded,
    VehicleMessage,
)
from actors.vehicle.ports import AuditEntry, NewCommand, VehicleStore
from hub.contract.commands import AnyCommand, DispatchCommand
from hub.errors import ConflictError, ContractError, InternalError, UnavailableError
from storage.database import StorageError, StorageUnavailableError, UniqueViolationError

logger = logging.getLogger(__name__)

STOP_RECORD_RETRY = 1.0
"""Seconds between attempts to record an emergency stop while the database is away."""
STOP_RECORD_ATTEMPTS = 300
STOP_ANSWER_GRACE = 1.0
"""Seconds an emergency stop's sender waits at most for the stop's row (the stop itself is
sent at once): a read right after the answer finds the stop, unless the database is slower
than this or away, when the answer comes anyway and the row follows."""

TellControl = Callable[[VehicleMessage], Awaitable[None]]
StartTask = Callable[[Callable[[], Awaitable[None]]], None]


def new_row(
    vehicle_id: str,
    command: AnyCommand,
    pending: PendingCommand,
    origin: CommandOrigin,
    *,
    queue_position: int,
    will_send: bool,
) -> NewCommand:
    """The row of an accepted command (and its mission, for a dispatch)."""
    assert command.command_id is not None
    mission = None
    if isinstance(command, DispatchCommand):
        mission = {
            "mission_id": command.mission.mission_id,
            "pickup": command.mission.pickup.model_dump(mode="json"),
            "destination": command.mission.destination.model_dump(mode="json"),
            "scheduled_time": command.mission.scheduled_time,
        }
    return NewCommand(
        command_id=command.command_id,
        vehicle_id=vehicle_id,
        type=command.type,
        payload=pending.queued.payload,
        status="sent" if will_send else "queued",
        priority=getattr(command, "priority", "normal"),
        sender=origin.username,
        created_at=pending.queued.created_at,
        queue_position=queue_position,
        mission=mission,
    )


def duplicate_command(command_id: str) -> ConflictError:
    """409 ``duplicate_command`` for a ``command_id`` used before."""
    return ConflictError(
        "duplicate_command",
        f"command_id {command_id} was already used",
        field="command_id",
        received_value=command_id,
    )


def row_writer(store: VehicleStore, row: NewCommand, tell: TellControl) -> PersistJob:
    """The lane job that writes an ordinary command's row and tells the control task."""

    async def write_row() -> None:
        error: ContractError | None = None
        try:
            await store.insert_command(row)
        except UniqueViolationError:
            error = duplicate_command(row.command_id)
        except StorageUnavailableError:
            error = UnavailableError()
        except StorageError as exc:
            logger.error("the database refused command %s: %s", row.command_id, exc)
            error = InternalError("The command could not be recorded")
        await tell(CommandStored(row.command_id, error))

    return write_row


class StopRecorder:
    """Records one emergency stop's row and audit record, retrying through an outage."""

    def __init__(
        self,
        store: VehicleStore,
        row: NewCommand,
        origin: CommandOrigin,
        tell: TellControl,
        start_soon: StartTask,
    ) -> None:
        self._store = store
        self._row = row
        self._tell = tell
        self._start_soon = start_soon
        self._audit = AuditEntry(
            "emergency_stop",
            origin.username,
            origin.role,
            row.vehicle_id,
            row.status,
            {"command_id": row.command_id, "payload": row.payload},
            origin.request_id,
        )
        self._stored = False
        self._audited = False

    async def record(self) -> None:
        """The lane job: one attempt; an outage hands the rest to a retrying task. Then tells
        the control task :class:`StopAnswerDue`, so the sender is answered after the row is
        written when the database is there, and without waiting for it when it is not."""
        try:
            await self._attempt()
        except StorageUnavailableError as exc:
            logger.warning(
                "emergency stop %s not recorded yet, retrying: %s", self._row.command_id, exc
            )
            self._start_soon(self._retry_until_recorded)
        except StorageError as exc:
            logger.error("emergency stop %s refused by the database: %s", self._row.command_id, exc)
        await self._tell(StopAnswerDue(self._row.command_id))

    async def _attempt(self) -> None:
        # An outage (StorageUnavailableError) leaves the step to the next attempt; a refusal
        # of the row's data gives the row up but still audits the stop.
        row = self._row
        if not self._stored:
            try:
                await self._store.insert_command(row)
            except UniqueViolationError:
                logger.error("emergency stop id %s collided", row.command_id)
            except StorageUnavailableError:
                raise
            except StorageError as exc:
                logger.error("emergency stop %s refused by the database: %s", row.command_id, exc)
            else:
                await self._tell(StopRecorded(row.command_id))
            self._stored = True
        if not self._audited:
            await self._store.audit(self._audit)
            self._audited = True

    async def _retry_until_recorded(self) -> None:
        for _ in range(STOP_RECORD_ATTEMPTS):
            await trio.sleep(STOP_RECORD_RETRY)
            try:
                await self._attempt()
                return
            except StorageUnavailableError:
                continue
            except StorageError as exc:
                logger.error(
                    "emergency stop %s refused by the database: %s", self._row.command_id, exc
                )
                return
        logger.error(
            "emergency stop %s could not be recorded in %d s",
            self._row.command_id,
            STOP_RECORD_ATTEMPTS,
        )
