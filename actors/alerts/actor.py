"""The Alerts actor: fan-out, side channels and escalation of raised alerts (CONTRACT §7).

Alerts are raised (and stored) where the event happens: a report's alerts by the Writer in
the report's transaction, an unconfirmed emergency stop by its VehicleActor. Their frames
come here as :class:`RaiseAlert`. The actor hands each to the frontend fan-out (the Router:
every admin and operator session) and, for critical ones, to each side channel's queue (see
:mod:`actors.alerts.channels`), and watches it for escalation — all without blocking.

Escalation: an unacknowledged critical alert is re-sent once, through the same path, with
``"escalated": true`` when it is ``escalate_after`` seconds old. Its age is measured on
trio's clock from the moment this actor was handed the alert; alerts found in the database
(raised before this process started, by another hub, or before a restart of this actor) are
aged from their ``created_at``, on the database's clock. ``escalated_at`` is set by a
conditional update, so each alert is escalated once even with several hubs, and never after
its acknowledgement (:class:`AlertAcknowledged` stops watching at once).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from actors.alerts.channels import AlertChannel, ChannelWorker
from actors.alerts.escalation import EscalationWatch
from actors.alerts.store import AlertStore, alert_frame
from hub import metrics
from hub.logs import reset_log_context
from hub.runtime import Inbox
from storage.database import StorageError

logger = logging.getLogger(__name__)

ALERTS_KIND = "alerts"
ALERTS_KEY = "main"
ALERTS_MAILBOX = 10_000
ESCALATE_AFTER = 300.0
SWEEP_INTERVAL = 60.0
RETRY_INTERVAL = 60.0


class StaffFanOut(Protocol):
    """Where alert frames go to frontends (the Router)."""

    def alert(self, event: dict[str, Any]) -> None:
        """To every admin and operator session and the vehicle's subscribers; never blocks."""
        ...


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    """A newly raised (and stored) alert's frame."""

    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertAcknowledged:
    """Someone acknowledged the alert: stop watching it."""

    alert_id: str


AlertsMessage = RaiseAlert | AlertAcknowledged


class AlertsActor:
    """Delivers alerts to sessions and side channels and escalates the critical ones."""

    def __init__(
        self,
        *,
        fan_out: StaffFanOut,
        store: AlertStore,
        channels: Sequence[AlertChannel] = (),
        escalate_after: float = ESCALATE_AFTER,
        sweep_interval: float = SWEEP_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
        send_timeout: float = 10.0,
        queue_size: int = 100,
    ) -> None:
        self._fan_out = fan_out
        self._store = store
        self._workers = [
            ChannelWorker(channel, send_timeout=send_timeout, queue_size=queue_size)
            for channel in channels
        ]
        self._escalate_after = escalate_after
        self._sweep_interval = sweep_interval
        self._retry_interval = retry_interval
        self._watch = EscalationWatch()
        self.raised: Counter[str] = Counter()
        self.escalated = 0

    async def run(self, inbox: Inbox[AlertsMessage], *, task_status: trio.TaskStatus[None]) -> None:
        """Run the side-channel senders; handle alerts and escalate on time, until cancelled.

        The first look for stored alerts to escalate happens once started. Frames still
        queued for a side channel when cancelled are not sent.
        """
        reset_log_context()
        async with trio.open_nursery() as channel_nursery:
            for worker in self._workers:
                await channel_nursery.start(worker.run)
            task_status.started()
            next_sweep = trio.current_time()
            while True:
                now = trio.current_time()
                if now >= next_sweep:
                    await self._sweep()
                    next_sweep = trio.current_time() + self._sweep_interval
                for alert_id in self._watch.take_due(trio.current_time()):
                    await self._escalate(alert_id)
                with trio.move_on_at(min(next_sweep, self._watch.next_due())):
                    try:
                        message = await inbox.receive()
                    except trio.ClosedResourceError:
                        return
                    self.handle(message)

    def handle(self, message: AlertsMessage) -> None:
        """Apply one message; never blocks."""
        match message:
            case RaiseAlert(frame):
                self._raise(frame)
            case AlertAcknowledged(alert_id):
                self._watch.forget(alert_id)

    def _raise(self, frame: dict[str, Any]) -> None:
        severity = str(frame.get("severity"))
        self.raised[severity] += 1
        metrics.alerts_raised.labels(severity).inc()
        self._send(frame)
        alert_id = frame.get("alert_id")
        if (
            severity == "critical"
            and isinstance(alert_id, str)
            and not self._watch.watching(alert_id)
        ):
            self._watch.watch(alert_id, trio.current_time() + self._escalate_after, frame)

    def _send(self, frame: dict[str, Any]) -> None:
        try:
            self._fan_out.alert(frame)
        except Exception:  # the side channels must still get it
            logger.exception("alert %s not delivered to sessions", frame.get("alert_id"))
        if frame.get("severity") == "critical":
            for worker in self._workers:
                worker.offer(dict(frame))

    async def _sweep(self) -> None:
        """Watch stored open critical alerts this actor does not know of yet."""
        try:
            found = await self._store.unescalated_critical()
        except StorageError as exc:
            logger.warning("cannot look for alerts to escalate: %s", exc)
            return
        now = trio.current_time()
        for item in found:
            if not self._watch.watching(item.alert_id):
                wait = max(0.0, self._escalate_after - item.age_seconds)
                self._watch.watch(item.alert_id, now + wait, None)

    async def _escalate(self, alert_id: str) -> None:
        frame = self._watch.frame_of(alert_id)
        try:
            row = await self._store.mark_escalated(alert_id)
        except StorageError as exc:
            logger.warning(
                "cannot escalate alert %s now, trying again in %.0f s: %s",
                alert_id,
                self._retry_interval,
                exc,
            )
            self._watch.watch(alert_id, trio.current_time() + self._retry_interval, frame)
            return
        if row is None:
            if frame is None:
                return
            # Its row was never written (the database was down when it was raised); nobody
            # can acknowledge it, so it is escalated from what this actor holds.
            logger.warning("alert %s is not stored; escalating it from memory", alert_id)
            escalated = {key: value for key, value in frame.items() if key != "seq"}
            escalated["escalated"] = True
        elif not row["marked"]:
            return  # acknowledged, or escalated by another hub
        else:
            escalated = alert_frame(row, escalated=True)
        self.escalated += 1
        logger.info("alert %s not acknowledged: escalated", alert_id)
        self._send(escalated)

    def describe(self) -> dict[str, Any]:
        """Counters for /debug/actors."""
        return {
            "raised": dict(self.raised),
            "escalated": self.escalated,
            "watching": self._watch.count(),
            "channels": {worker.channel.name: worker.stats() for worker in self._workers},
        }
