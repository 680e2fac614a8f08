"""One vehicle's commands from acceptance to their last status (CONTRACT §6.3).

:class:`CommandDesk` is a state machine owned by the VehicleActor's control task, and only
that task calls it: no timers of its own, no events, no awaits. It sends commands on the
vehicle's link or queues them while the vehicle is away; each send waits ``ack_timeout``
seconds for its acknowledgement and is repeated (same ``command_id``) up to ``max_sends``
times, then the command ends ``timeout``. The actor asks :meth:`CommandDesk.next_deadline`
when it next has to look, and calls :meth:`CommandDesk.tick` then.

Every status change is published at once as ``command_status`` and handed to the
persistence lane to be written; the lane tells the actor when a settled status is written
(:meth:`CommandDesk.status_written`), and only then are the callers waiting for that outcome
answered, so a caller that reads the command back right after sees it stored.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from actors.alerts import rules as alert_rules
from actors.sockets.outbound import OutboundLink
from actors.vehicle.messages import CommandStatus
from actors.vehicle.offline_queue import OfflineQueue, QueuedCommand
from actors.vehicle.ports import AuditEntry, Publisher, VehicleStore
from hub import metrics
from hub.clock import now_timestamp, utc_now
from hub.contract import ws_events
from hub.contract.command_acks import CommandAck
from hub.runtime import Reply

logger = logging.getLogger(__name__)

ACK_TIMEOUT = 5.0
MAX_SENDS = 3
SETTLED = frozenset(
    {"accepted", "rejected", "executed", "applied", "timeout", "dropped", "expired"}
)
"""Statuses that answer a caller waiting for the outcome."""
FINAL = frozenset({"rejected", "executed", "applied", "timeout", "dropped", "expired"})
"""Statuses after which the desk forgets the command (an ``accepted`` one may still end)."""
RECENT_OUTCOMES = 200
"""Finished commands whose outcome the desk still answers with (late waiters)."""

PersistJob = Callable[[], Awaitable[None]]

_MISSION_STATUS = {
    ("dispatch", "accepted"): "accepted",
    ("dispatch", "rejected"): "rejected",
    ("dispatch", "executed"): "completed",
    ("dispatch", "timeout"): "failed",
    ("dispatch", "dropped"): "failed",
    ("dispatch", "expired"): "failed",
    ("cancel", "accepted"): "cancelled",
    ("cancel", "executed"): "cancelled",
}


@dataclass(eq=False)
class PendingCommand:
    """A command the hub is responsible for until the vehicle answers or it gives up."""

    queued: QueuedCommand
    origin_session: str | None
    status: str = "queued"
    sends: int = 0
    ack: dict[str, Any] | None = None
    acked: bool = False
    resend_at: float | None = None
    """trio time of the next resend (or the timeout), while a send waits for its ack."""
    link: OutboundLink | None = None
    """The link of the current send."""
    first_sent_at: float | None = None
    """trio time of the first send on the current connection (for the latency metric)."""
    sent_wall: datetime | None = None
    """Wall-clock time of the first send on the current connection (the row's ``sent_at``)."""
    absorbed: list[PendingCommand] = field(default_factory=list)
    """Older queued configures merged into this one: they end with its status."""
    waiters: list[Reply[CommandStatus]] = field(default_factory=list)
    written: str | None = None
    """The last settled status the persistence lane has written."""

    @property
    def command_id(self) -> str:
        """The command's id."""
        return self.queued.command_id


class CommandDesk:
    """Sends, queues, times out and reports the commands of one vehicle."""

    def __init__(
        self,
        vehicle_id: str,
        *,
        publisher: Publisher,
        store: VehicleStore,
        persist: Callable[[PersistJob], None],
        notify: Callable[[str, str], Awaitable[None]],
        ack_timeout: float = ACK_TIMEOUT,
        max_sends: int = MAX_SENDS,
        ttl: timedelta = timedelta(minutes=10),
        capacity: int = 100,
    ) -> None:
        self.vehicle_id = vehicle_id
        self._publisher = publisher
        self._store = store
        self._persist = persist
        self._notify = notify
        self._ack_timeout = ack_timeout
        self._max_sends = max_sends
        self._ttl = ttl
        self.queue = OfflineQueue(capacity)
        self.pending: dict[str, PendingCommand] = {}
        self._recent: OrderedDict[str, CommandStatus] = OrderedDict()
        self.link: OutboundLink | None = None
        self.last_delivered_type: str | None = None

    def knows(self, command_id: str) -> bool:
        """Whether a command with this id is still in the hub's hands."""
        return command_id in self.pending

    # --- arrival ------------------------------------------------------------------------

    def restore(self, pending: PendingCommand) -> None:
        """Take back a command that was queued before a hub restart (in stored order).

        Restoring goes through the queue's own rules, so configures merged before the
        restart are merged again (the rows keep their own payloads).
        """
        self._enqueue(pending)

    def deliver(self, pending: PendingCommand, now: float) -> None:
        """Send now if the vehicle is connected, else queue (reporting what that pushed out)."""
        for command_id in pending.queued.all_ids:
            self.pending[command_id] = pending
        if self.link is not None and not self.link.closed:
            self._send(pending, now)
            return
        self._enqueue(pending)
        self._report(pending, "queued", None)
        self._write_status(pending, "queued")

    def _enqueue(self, pending: PendingCommand) -> None:
        for command_id in pending.queued.all_ids:
            self.pending[command_id] = pending
        outcome = self.queue.push(pending.queued)
        for dropped in outcome.dropped:
            self._settle(self.pending[dropped.command_id], "dropped", None)
        if outcome.merged is not None:
            older = self.pending.get(outcome.merged.command_id)
            for command_id in pending.queued.all_ids:
                self.pending[command_id] = pending
            if older is not None:
                pending.absorbed.append(older)

    # --- the link -----------------------------------------------------------------------

    def connected(self, link: OutboundLink, now: float) -> None:
        """A vehicle socket is up: deliver the queue in order (expired ones are reported)."""
        self.link = link
        deliver, expired = self.queue.take_all(utc_now(), self._ttl)
        for queued in expired:
            self._settle(self.pending[queued.command_id], "expired", None)
        for queued in deliver:
            self._send(self.pending[queued.command_id], now)

    def disconnected(self) -> None:
        """The socket is gone: unacknowledged sends go back to the head of the queue."""
        self.link = None
        waiting = {id(p): p for p in self.pending.values() if p.status == "sent" and not p.acked}
        in_flight = sorted(waiting.values(), key=lambda p: p.queued.created_at)
        self.queue.requeue_front([p.queued for p in in_flight])
        for pending in in_flight:
            pending.status = "queued"
            pending.sends = 0
            pending.resend_at = None
            pending.link = None
            self._report(pending, "queued", None)
            self._write_status(pending, "queued")

    def _send(self, pending: PendingCommand, now: float) -> None:
        assert self.link is not None
        urgent = pending.queued.is_emergency_stop
        self.link.send_nowait(pending.queued.payload, urgent=urgent)
        pending.sends = 1
        pending.status = "sent"
        pending.acked = False
        pending.link = self.link
        pending.first_sent_at = now
        pending.sent_wall = utc_now()
        pending.resend_at = now + self._ack_timeout
        self.last_delivered_type = pending.queued.type
        self._report(pending, "sent", None)
        self._write_status(pending, "sent", sends=1, sent=True)

    # --- time ---------------------------------------------------------------------------

    def next_deadline(self) -> float:
        """trio time of the next resend or timeout (``inf`` when nothing waits for an ack)."""
        deadlines = [p.resend_at for p in self.pending.values() if p.resend_at is not None]
        return min(deadlines, default=float("inf"))

    def tick(self, now: float) -> None:
        """Resend every send whose ack is overdue; end ``timeout`` those sent ``max_sends``."""
        due = {id(p): p for p in self.pending.values() if p.resend_at is not None}
        for pending in due.values():
            if pending.resend_at is not None and pending.resend_at <= now:
                self._ack_overdue(pending, now)

    def _ack_overdue(self, pending: PendingCommand, now: float) -> None:
        link = pending.link
        if link is None or link is not self.link or link.closed or pending.status != "sent":
            pending.resend_at = None  # requeued on disconnect; the next connection sends it
            return
        if pending.sends >= self._max_sends:
            pending.resend_at = None
            self._settle(pending, "timeout", None)
            if pending.queued.is_emergency_stop:
                self._emergency_stop_unconfirmed(pending)
            return
        pending.sends += 1
        pending.resend_at = now + self._ack_timeout
        link.send_nowait(pending.queued.payload, urgent=pending.queued.is_emergency_stop)
        self._write_status(pending, "sent", sends=pending.sends)

    # --- answers ------------------------------------------------------------------------

    def acknowledged(self, ack: CommandAck, now: float) -> bool:
        """Apply a vehicle's ack; False for an unknown command. Repeats change nothing."""
        pending = self.pending.get(ack.command_id)
        if pending is None:
            return False
        body = ack.model_dump(mode="json", exclude_none=True)
        if not pending.acked and pending.first_sent_at is not None:
            metrics.command_latency.labels(pending.queued.type).observe(now - pending.first_sent_at)
        pending.acked = True
        pending.resend_at = None
        if pending.status == ack.status:
            return True
        self._settle(pending, ack.status, body)
        return True

    def status_of(self, command_id: str) -> CommandStatus | None:
        """The command's status now (a finished one while it is among the recent ones)."""
        pending = self.pending.get(command_id)
        if pending is None:
            return self._recent.get(command_id)
        return self._status(command_id, pending, settled=pending.written in SETTLED)

    def await_outcome(self, command_id: str, reply: Reply[CommandStatus]) -> None:
        """Answer ``reply`` once the command's outcome is written (at once if it is)."""
        pending = self.pending.get(command_id)
        if pending is None or pending.written in SETTLED:
            status = self.status_of(command_id)
            if status is None:
                reply.send(CommandStatus(command_id, self.vehicle_id, "unknown", None, True))
            else:
                reply.send(status)
            return
        pending.waiters.append(reply)

    def status_written(self, command_id: str, status: str) -> None:
        """The persistence lane wrote a settled ``status``: answer whoever waits for it."""
        pending = self.pending.get(command_id)
        if pending is None or status not in SETTLED:
            return
        commands = [pending, *_absorbed(pending)]
        for command in commands:
            command.written = status
        for command in commands:
            outcome = self._status(command.command_id, command, settled=True)
            for waiter in command.waiters:
                waiter.send(outcome)
            command.waiters.clear()
        if status in FINAL:
            for command_id_done in pending.queued.all_ids:
                self.pending.pop(command_id_done, None)
                self._remember(self._status(command_id_done, pending, settled=True))

    def _status(self, command_id: str, pending: PendingCommand, *, settled: bool) -> CommandStatus:
        return CommandStatus(command_id, self.vehicle_id, pending.status, pending.ack, settled)

    def _remember(self, status: CommandStatus) -> None:
        self._recent[status.command_id] = status
        while len(self._recent) > RECENT_OUTCOMES:
            self._recent.popitem(last=False)

    def _settle(self, pending: PendingCommand, status: str, ack: dict[str, Any] | None) -> None:
        settling = (pending, *_absorbed(pending))
        if status in SETTLED:
            metrics.commands_finished.labels(pending.queued.type, status).inc(len(settling))
        for command in settling:
            command.status = status
            command.ack = ack
            command.resend_at = None
        self._report(pending, status, ack)
        ids = list(pending.queued.all_ids)
        store, notify = self._store, self._notify
        stop_id = pending.command_id if pending.queued.is_emergency_stop else None
        vehicle_id = self.vehicle_id

        async def record() -> None:
            # The waiters are answered once this is written (or failed: they must not hang).
            try:
                await store.set_command_status(ids, status, ack=ack)
                if stop_id is not None:
                    await store.audit(
                        AuditEntry(
                            "emergency_stop_result",
                            None,
                            None,
                            vehicle_id,
                            status,
                            {"command_id": stop_id, "ack": ack},
                        )
                    )
            finally:
                await notify(ids[0], status)

        self._persist(record)
        mission_id = pending.queued.payload.get("mission", {}).get("mission_id") or (
            pending.queued.payload.get("mission_id")
        )
        mission_status = _MISSION_STATUS.get((pending.queued.type, status))
        if mission_id and mission_status:
            self._persist(lambda: store.set_mission_status(mission_id, mission_status))

    def _write_status(
        self, pending: PendingCommand, status: str, *, sends: int | None = None, sent: bool = False
    ) -> None:
        ids = list(pending.queued.all_ids)  # bound now: the job runs later
        store = self._store
        self._persist(lambda: store.set_command_status(ids, status, sends=sends, sent=sent))

    def _report(self, pending: PendingCommand, status: str, ack: dict[str, Any] | None) -> None:
        # A merged configure's ids are reported to whoever sent each of them.
        senders = {older.command_id: older.origin_session for older in _absorbed(pending)}
        for command_id in pending.queued.all_ids:
            event = ws_events.command_status(command_id, self.vehicle_id, status, ack)
            sender = senders.get(command_id, pending.origin_session)
            self._publisher.command_status(self.vehicle_id, event, sender_session=sender)

    def _emergency_stop_unconfirmed(self, pending: PendingCommand) -> None:
        draft = alert_rules.AlertDraft(
            "emergency_stop_unconfirmed",
            "critical",
            f"Emergency stop {pending.command_id} not confirmed after {self._max_sends} sends",
        )
        alert_id = alert_rules.new_alert_id()
        store, vehicle_id = self._store, self.vehicle_id
        self._persist(lambda: store.insert_alert(vehicle_id, alert_id, draft))
        self._publisher.alert(
            ws_events.alert(
                alert_id,
                self.vehicle_id,
                severity=draft.severity,
                kind=draft.kind,
                message=draft.message,
                timestamp=now_timestamp(),
            )
        )

    def describe(self) -> dict[str, Any]:
        """Queue and in-flight counts for /debug/actors."""
        in_flight = {id(p) for p in self.pending.values() if p.status == "sent"}
        return {"queue_depth": len(self.queue), "commands_in_flight": len(in_flight)}


def _absorbed(pending: PendingCommand) -> list[PendingCommand]:
    """Every older command merged into ``pending``, however many merges deep."""
    found: list[PendingCommand] = []
    for older in pending.absorbed:
        found.extend((older, *_absorbed(older)))
    return found
