"""How a vehicle's actor takes commands in: checks, rows first, emergency stops at once.

:class:`CommandIntake` is part of the vehicle actor's control task and runs only there; it
never awaits. It decides what becomes of a command a sender hands over
(:meth:`CommandIntake.accept`): a reused id or a resume without a stop is refused; an
emergency stop goes to the vehicle's :class:`~actors.vehicle.command_desk.CommandDesk` at
once and its row is written meanwhile; any other command waits for its row
(:meth:`~CommandIntake.stored`) and is dropped if a stop overtook it. It also takes in the
commands queued in storage: at the actor's start and when another hub queued some.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import trio

from actors.vehicle.command_desk import CommandDesk, PendingCommand, PersistJob
from actors.vehicle.command_rows import (
    STOP_ANSWER_GRACE,
    StopRecorder,
    duplicate_command,
    new_row,
    row_writer,
)
from actors.vehicle.messages import (
    CommandOrigin,
    CommandStatus,
    StopAnswerDue,
    VehicleMessage,
)
from actors.vehicle.offline_queue import QueuedCommand
from actors.vehicle.ports import StoredCommand, VehicleStore
from actors.vehicle.recent_ids import RecentIds
from hub.clock import utc_now
from hub.contract.commands import AnyCommand, vehicle_payload, with_defaults
from hub.errors import ConflictError, ContractError
from hub.runtime import Reply

logger = logging.getLogger(__name__)

SEEN_COMMANDS = 10_000  # command ids an actor remembers having taken itself


def resume_allowed(last_state: str | None, last_delivered: str | None) -> bool:
    """CONTRACT §6.3: resume only after an emergency stop (state or last delivered command)."""
    return last_state == "emergency_stop" or last_delivered == "emergency_stop"


class Persist(Protocol):
    """Queue a write in the actor's persistence lane (``must_run``: even when it is full)."""

    def __call__(self, job: PersistJob, *, must_run: bool = False) -> None: ...


@dataclass(slots=True)
class _AwaitingRow:
    """An ordinary command whose row is being written; it is delivered once that is done."""

    pending: PendingCommand
    reply: Reply[CommandStatus]
    stop_epoch: int


class CommandIntake:
    """The commands one vehicle's actor takes in (its control task's part; never awaits).

    ``persist`` queues a write in the actor's persistence lane, ``tell_control`` is how a
    write reports back through the mailbox, and ``start_soon`` starts a task beside the
    lanes (the stop's answer after its grace, a stop's write retried).
    """

    def __init__(
        self,
        vehicle_id: str,
        *,
        desk: CommandDesk,
        store: VehicleStore,
        persist: Persist,
        tell_control: Callable[[VehicleMessage], Awaitable[None]],
        start_soon: Callable[[Callable[[], Awaitable[None]]], None],
    ) -> None:
        self.vehicle_id = vehicle_id
        self._desk = desk
        self._store = store
        self._persist = persist
        self._tell_control = tell_control
        self._start_soon = start_soon
        self._awaiting_rows: dict[str, _AwaitingRow] = {}
        self._seen_here = RecentIds(SEEN_COMMANDS)  # commands this actor took itself
        self._stop_replies: dict[str, Reply[CommandStatus]] = {}  # stops sent, rows pending
        self._queue_position = 0
        self._stop_epoch = 0  # emergency stops accepted so far

    def restore(self, queued: Iterable[StoredCommand]) -> None:
        """Take the commands queued in storage, at the actor's start (stops first)."""
        for stored in sorted(queued, key=_delivery_order):
            self._restore_command(stored)
            self._seen_here.remember(stored.command_id)

    def status_now(self, command_id: str) -> CommandStatus:
        """What is known of a command here: the desk's status, queued, or unknown."""
        status = self._desk.status_of(command_id)
        if status is not None:
            return status
        awaiting = self._awaiting_rows.get(command_id)
        state = "queued" if awaiting is not None else "unknown"
        return CommandStatus(command_id, self.vehicle_id, state, None, False)

    def accept(
        self,
        command: AnyCommand,
        origin: CommandOrigin,
        reply: Reply[CommandStatus],
        now: float,
        *,
        known_state: str | None,
    ) -> None:
        """Take a sender's command: ``reply`` fails for a reused id (409) or a resume the
        vehicle's ``known_state`` and last delivered command do not allow (409). A stop goes
        out now and is answered once its row is written (or after its grace); any other
        command is answered once its row is written and it is sent or queued."""
        command = with_defaults(command, utc_now())
        assert command.command_id is not None and command.timestamp is not None
        desk = self._desk
        if desk.knows(command.command_id) or command.command_id in self._awaiting_rows:
            reply.fail(duplicate_command(command.command_id))
            return
        if command.type == "resume" and not resume_allowed(known_state, desk.last_delivered_type):
            reply.fail(
                ConflictError(
                    "invalid_command_state",
                    "resume is only valid while the vehicle is in emergency_stop",
                    field="type",
                    received_value="resume",
                )
            )
            return
        self._queue_position += 1
        self._seen_here.remember(command.command_id)
        is_stop = command.type == "emergency_stop"
        pending = PendingCommand(
            QueuedCommand(
                command.command_id,
                command.type,
                vehicle_payload(command),
                command.timestamp,
                origin.username,
            ),
            origin.session_id,
        )
        link = desk.link
        row = new_row(
            self.vehicle_id,
            command,
            pending,
            origin,
            queue_position=-self._queue_position if is_stop else self._queue_position,
            will_send=is_stop and link is not None and not link.closed,
        )
        if is_stop:
            # The stop goes out now: no validation delay, no queueing behind others, never
            # refused for its storage. Its row is written in the lane meanwhile, and the
            # sender is answered once that first attempt ends, so an answer means the stop
            # is stored, unless the database was away or slower than STOP_ANSWER_GRACE.
            self._stop_epoch += 1
            recorder = StopRecorder(self._store, row, origin, self._tell_control, self._start_soon)
            self._persist(recorder.record, must_run=True)
            desk.deliver(pending, now)
            self._stop_replies[command.command_id] = reply
            self._start_soon(partial(self._answer_stop_after_grace, command.command_id))
            return
        self._awaiting_rows[command.command_id] = _AwaitingRow(pending, reply, self._stop_epoch)
        self._persist(row_writer(self._store, row, self._tell_control))

    def stored(self, command_id: str, error: ContractError | None, now: float) -> None:
        """An ordinary command's row is written (or failed with ``error``): send or queue
        it, unless an emergency stop was accepted meanwhile (then it is dropped, 409)."""
        awaiting = self._awaiting_rows.pop(command_id, None)
        if awaiting is None:
            return
        if error is not None:
            awaiting.reply.fail(error)
            return
        if awaiting.stop_epoch != self._stop_epoch:
            # An emergency stop was accepted while this command waited for its row: sending it
            # now would reach the vehicle after the stop and could undo it.
            ids = [command_id]
            self._persist(lambda: self._store.set_command_status(ids, "dropped"))
            awaiting.reply.fail(
                ConflictError(
                    "invalid_command_state",
                    "An emergency stop was issued after this command; send it again after resume",
                    field="command_id",
                    received_value=command_id,
                )
            )
            return
        self._desk.deliver(awaiting.pending, now)
        awaiting.reply.send(self.status_now(command_id))

    def stop_answer_due(self, command_id: str) -> None:
        """Answer the sender of a stop whose row took longer than its grace, if not yet."""
        reply = self._stop_replies.pop(command_id, None)
        if reply is not None:
            reply.send(self.status_now(command_id))

    def stop_recorded(self, command_id: str) -> None:
        """The stop's row exists now: write what happened to the stop meanwhile (the writes
        made before the row existed changed nothing): its status, sends, send time and ack."""
        pending = self._desk.pending.get(command_id)
        status = self._desk.status_of(command_id)
        if status is None:
            return
        ids = [command_id]
        sends = None if pending is None else pending.sends or None
        sent_at = None if pending is None else pending.sent_wall
        self._persist(
            lambda: self._store.set_command_status(
                ids, status.status, sends=sends, ack=status.ack, sent_at=sent_at
            )
        )

    def queued_elsewhere(self, commands: tuple[StoredCommand, ...], now: float) -> None:
        """Deliver the queued commands another hub wrote that this one does not know yet
        (emergency stops first, then in queue order)."""
        desk = self._desk
        for stored in sorted(commands, key=_delivery_order):
            if stored.command_id in self._seen_here or desk.knows(stored.command_id):
                continue  # this hub took it: it is delivering, delivered or refused it
            logger.info("delivering %s, queued on another hub", stored.command_id)
            self._restore_command(stored)
            self._seen_here.remember(stored.command_id)
        link = desk.link
        if link is not None and not link.closed:
            desk.connected(link, now)  # sends what is queued, in order

    async def _answer_stop_after_grace(self, command_id: str) -> None:
        await trio.sleep(STOP_ANSWER_GRACE)
        await self._tell_control(StopAnswerDue(command_id))

    def _restore_command(self, stored: StoredCommand) -> None:
        queued = QueuedCommand(
            stored.command_id, stored.type, stored.payload, stored.created_at, stored.sender
        )
        self._desk.restore(PendingCommand(queued, None))
        self._queue_position = max(self._queue_position, abs(stored.queue_position))


def _delivery_order(stored: StoredCommand) -> tuple[bool, int]:
    return (stored.type != "emergency_stop", stored.queue_position)
