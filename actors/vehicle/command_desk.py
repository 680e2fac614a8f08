"""One vehicle's commands from acceptance to their last status (CONTRACT §6.3).

:class:`CommandDesk` belongs to a VehicleActor and is touched only by that actor's tasks.
It sends commands on the vehicle's link, or queues them while the vehicle is away; waits
5 s for each acknowledgement and resends (same ``command_id``) up to 3 sends, then reports
``timeout``; and publishes every status change as ``command_status``. Storage writes are
handed to the actor's persistence lane so they never delay a send.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import trio

from actors.alerts import rules as alert_rules
from actors.events import EventSink
from actors.sockets.outbound import OutboundLink
from actors.vehicle.offline_queue import OfflineQueue, QueuedCommand
from hub import metrics
from hub.clock import now_timestamp, utc_now
from hub.contract import ws_events
from hub.contract.command_acks import CommandAck

logger = logging.getLogger(__name__)

ACK_TIMEOUT = 5.0
MAX_SENDS = 3
SETTLED = frozenset(
    {"accepted", "rejected", "executed", "applied", "timeout", "dropped", "expired"}
)
ACK_STATUSES = frozenset({"accepted", "rejected", "executed", "applied"})

PersistJob = Callable[[], Awaitable[None]]


@dataclass(eq=False)
class PendingCommand:
    """A command the hub is responsible for until the vehicle answers or it gives up."""

    queued: QueuedCommand
    origin_session: str | None
    status: str = "queued"
    sends: int = 0
    ack: dict[str, Any] | None = None
    acked: trio.Event = field(default_factory=trio.Event)
    settled: trio.Event = field(default_factory=trio.Event)
    absorbed: list[PendingCommand] = field(default_factory=list)
    """Older queued configures merged into this one: they end with its status."""
    first_sent_at: float | None = None
    """trio time of the first send on the current connection (for the latency metric)."""

    @property
    def command_id(self) -> str:
        """The command's id."""
        return self.queued.command_id

    async def outcome(self) -> str:
        """Wait for the first settled status (an ack, timeout, dropped or expired)."""
        await self.settled.wait()
        return self.status


class StatusStore:
    """What the desk needs written; implemented over storage by the VehicleActor."""

    async def set_status(
        self,
        command_ids: list[str],
        status: str,
        *,
        sends: int | None = None,
        ack: dict[str, Any] | None = None,
        sent: bool = False,
    ) -> None:
        """Record a status change."""
        raise NotImplementedError

    async def raise_alert(
        self, vehicle_id: str, draft: alert_rules.AlertDraft, alert_id: str
    ) -> None:
        """Store an alert."""
        raise NotImplementedError

    async def mission_status(self, mission_id: str, status: str) -> None:
        """Move a mission along."""
        raise NotImplementedError

    async def stop_result(self, command_id: str, status: str, ack: dict[str, Any] | None) -> None:
        """Record in the audit log how an emergency stop ended."""
        raise NotImplementedError


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


class CommandDesk:
    """Sends, queues, times out and reports the commands of one vehicle."""

    def __init__(
        self,
        vehicle_id: str,
        *,
        sink: EventSink,
        store: StatusStore,
        persist: Callable[[PersistJob], None],
        ack_timeout: float = ACK_TIMEOUT,
        max_sends: int = MAX_SENDS,
        ttl: timedelta = timedelta(minutes=10),
        capacity: int = 100,
    ) -> None:
        self.vehicle_id = vehicle_id
        self._sink = sink
        self._store = store
        self._persist = persist
        self._ack_timeout = ack_timeout
        self._max_sends = max_sends
        self._ttl = ttl
        self.queue = OfflineQueue(capacity)
        self.pending: dict[str, PendingCommand] = {}
        self.link: OutboundLink | None = None
        self.last_delivered_type: str | None = None
        self._nursery: trio.Nursery | None = None

    def bind(self, nursery: trio.Nursery) -> None:
        """Give the desk the actor's nursery for its ack timers."""
        self._nursery = nursery

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

    def deliver(self, pending: PendingCommand) -> None:
        """Send now if the vehicle is connected, else queue (reporting what that pushed out)."""
        for command_id in pending.queued.all_ids:
            self.pending[command_id] = pending
        if self.link is not None and not self.link.closed:
            self._send(pending)
            return
        self._enqueue(pending)
        self._report(pending, "queued", None)
        self._persist(lambda: self._store.set_status(pending.queued.all_ids, "queued"))

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

    def connected(self, link: OutboundLink) -> None:
        """A vehicle socket is up: deliver the queue in order (expired ones are reported)."""
        self.link = link
        deliver, expired = self.queue.take_all(utc_now(), self._ttl)
        for queued in expired:
            self._settle(self.pending[queued.command_id], "expired", None)
        for queued in deliver:
            self._send(self.pending[queued.command_id])

    def disconnected(self) -> None:
        """The socket is gone: unacknowledged sends go back to the head of the queue."""
        self.link = None
        waiting = {
            id(p): p for p in self.pending.values() if p.status == "sent" and not p.acked.is_set()
        }
        in_flight = sorted(waiting.values(), key=lambda p: p.queued.created_at)
        self.queue.requeue_front([p.queued for p in in_flight])
        for pending in in_flight:
            pending.status = "queued"
            pending.sends = 0
            self._report(pending, "queued", None)
            self._persist(partial(self._store.set_status, pending.queued.all_ids, "queued"))

    def _send(self, pending: PendingCommand) -> None:
        assert self.link is not None and self._nursery is not None
        urgent = pending.queued.is_emergency_stop
        self.link.send_nowait(pending.queued.payload, urgent=urgent)
        pending.sends = 1
        pending.status = "sent"
        pending.first_sent_at = trio.current_time()
        self.last_delivered_type = pending.queued.type
        self._report(pending, "sent", None)
        self._persist(
            lambda: self._store.set_status(pending.queued.all_ids, "sent", sends=1, sent=True)
        )
        self._nursery.start_soon(self._await_ack, pending, self.link)

    async def _await_ack(self, pending: PendingCommand, link: OutboundLink) -> None:
        """Resend every ``ack_timeout`` seconds until acknowledged, at most ``max_sends``."""
        while True:
            with trio.move_on_after(self._ack_timeout):
                await pending.acked.wait()
                return
            if self.link is not link or link.closed or pending.status != "sent":
                return  # requeued on disconnect; the next connection sends it again
            if pending.sends >= self._max_sends:
                self._settle(pending, "timeout", None)
                if pending.queued.is_emergency_stop:
                    self._emergency_stop_unconfirmed(pending)
                return
            pending.sends += 1
            link.send_nowait(pending.queued.payload, urgent=pending.queued.is_emergency_stop)
            # Bind the count now: the job runs later, after more sends may have happened.
            self._persist(
                partial(self._store.set_status, pending.queued.all_ids, "sent", sends=pending.sends)
            )

    # --- answers ------------------------------------------------------------------------

    def acknowledged(self, ack: CommandAck) -> bool:
        """Apply a vehicle's ack; False for an unknown command. Repeats change nothing."""
        pending = self.pending.get(ack.command_id)
        if pending is None:
            return False
        body = ack.model_dump(mode="json", exclude_none=True)
        if not pending.acked.is_set() and pending.first_sent_at is not None:
            latency = trio.current_time() - pending.first_sent_at
            metrics.command_latency.labels(pending.queued.type).observe(latency)
        pending.acked.set()
        if pending.status == ack.status:
            return True
        self._settle(pending, ack.status, body)
        return True

    def _settle(self, pending: PendingCommand, status: str, ack: dict[str, Any] | None) -> None:
        settling = (pending, *_absorbed(pending))
        if status in SETTLED:
            metrics.commands_finished.labels(pending.queued.type, status).inc(len(settling))
        for command in settling:
            command.status = status
            command.ack = ack
        self._report(pending, status, ack)

        async def record() -> None:
            # ``settled`` waits for the write, so whoever waits on it (REST) can read the
            # status back at once; a failed write still releases them.
            try:
                await self._store.set_status(pending.queued.all_ids, status, ack=ack)
                if pending.queued.is_emergency_stop:
                    await self._store.stop_result(pending.command_id, status, ack)
            finally:
                if status in SETTLED:
                    for command in settling:
                        command.settled.set()

        self._persist(record)
        mission_id = pending.queued.payload.get("mission", {}).get("mission_id") or (
            pending.queued.payload.get("mission_id")
        )
        mission_status = _MISSION_STATUS.get((pending.queued.type, status))
        if mission_id and mission_status:
            self._persist(lambda: self._store.mission_status(mission_id, mission_status))
        if status in ("rejected", "executed", "applied", "timeout", "dropped", "expired"):
            for command_id in pending.queued.all_ids:
                self.pending.pop(command_id, None)

    def _report(self, pending: PendingCommand, status: str, ack: dict[str, Any] | None) -> None:
        # A merged configure's ids are reported to whoever sent each of them.
        senders = {older.command_id: older.origin_session for older in _absorbed(pending)}
        for command_id in pending.queued.all_ids:
            event = ws_events.command_status(command_id, self.vehicle_id, status, ack)
            sender = senders.get(command_id, pending.origin_session)
            self._sink.command_status(self.vehicle_id, event, sender_session=sender)

    def _emergency_stop_unconfirmed(self, pending: PendingCommand) -> None:
        draft = alert_rules.AlertDraft(
            "emergency_stop_unconfirmed",
            "critical",
            f"Emergency stop {pending.command_id} not confirmed after {self._max_sends} sends",
        )
        alert_id = alert_rules.new_alert_id()
        self._persist(lambda: self._store.raise_alert(self.vehicle_id, draft, alert_id))
        self._sink.alert(
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
