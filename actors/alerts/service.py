"""Alerts after they are raised: fan-out, side channels, escalation, listing and ack (CONTRACT §7).

Alerts are raised (and stored) where the event happens: a report's alerts by the Writer in
the report's transaction, an unconfirmed emergency stop by its VehicleActor. The frame then
comes here through :class:`AlertingSink`. :meth:`AlertService.alert` never blocks: it hands
the frame to the frontend sink (the Router: every admin and operator session) and, for
critical alerts, to each side channel's queue (see :mod:`actors.alerts.channels`), and starts
the escalation timer.

Escalation: an unacknowledged critical alert is re-sent once, through the same path, with
``"escalated": true`` when it is ``escalate_after`` seconds old. Its age is measured on
trio's clock from the moment this process was handed the alert; alerts found in the database
(raised before this process started, or by another hub) are aged from their ``created_at``,
on the database's clock. The ``escalated_at`` column is set by a conditional update, so each
alert is escalated once even with several hubs, and never after its acknowledgement.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import trio

from actors.accounts import storage_guard
from actors.alerts.channels import AlertChannel, ChannelWorker, channels_from_settings
from actors.events import EventSink
from hub import metrics
from hub.clock import format_timestamp
from hub.config import Settings
from hub.contract import ws_events
from hub.errors import bad_request, not_found
from storage.database import Database, Row, StorageError
from storage.queries.alerts import DatabaseAlertStore, OpenCritical

logger = logging.getLogger(__name__)

ESCALATE_AFTER = 300.0
SWEEP_INTERVAL = 60.0
RETRY_INTERVAL = 60.0


class AlertStore(Protocol):
    """Where alerts are kept (the ``alerts`` table; an in-memory fake in unit tests)."""

    async def page(
        self,
        *,
        open_only: bool | None,
        vehicle_id: str | None,
        severity: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Row]:
        """Alerts newest first, after the key ``before`` (see ``storage.queries.alerts``)."""

    async def acknowledge(self, alert_id: str, acknowledged_by: str) -> Row | None:
        """Record the first acknowledgement; the alert as stored, or ``None`` if unknown."""

    async def mark_escalated(self, alert_id: str) -> Row | None:
        """Set ``escalated_at`` if still open; the alert with ``marked``, or ``None``."""

    async def unescalated_critical(self) -> list[OpenCritical]:
        """Open, not yet escalated critical alerts with their age."""


def _timestamp_or_none(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)


def alert_item(row: Row) -> dict[str, Any]:
    """A stored alert as the REST API shows it (timestamps in the contract's form)."""
    details = row["details"]
    return {
        "alert_id": row["alert_id"],
        "vehicle_id": row["vehicle_id"],
        "kind": row["kind"],
        "severity": row["severity"],
        "error_code": row["error_code"],
        "message": row["message"],
        "details": json.loads(details) if isinstance(details, str) else dict(details or {}),
        "backfilled": row["backfilled"],
        "created_at": format_timestamp(row["created_at"]),
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": _timestamp_or_none(row["acknowledged_at"]),
        "escalated_at": _timestamp_or_none(row["escalated_at"]),
    }


def alert_frame(row: Row, *, escalated: bool) -> dict[str, Any]:
    """The socket frame of a stored alert; ``timestamp`` is when it was raised."""
    return ws_events.alert(
        row["alert_id"],
        row["vehicle_id"],
        severity=row["severity"],
        kind=row["kind"],
        message=row["message"],
        timestamp=format_timestamp(row["created_at"]),
        error_code=row["error_code"],
        escalated=escalated,
        backfilled=row["backfilled"],
    )


def encode_cursor(created_at: datetime, alert_id: str) -> str:
    """An opaque cursor just past an alert (full microseconds: ties within a ms are common)."""
    raw = f"{created_at.isoformat()}|{alert_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The key inside a cursor; 400 ``validation_error`` if it was tampered with."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, _, alert_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or not alert_id:
            raise ValueError("incomplete cursor")
        return moment, alert_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_request(
            "validation_error", "Invalid cursor", field="cursor", received_value=cursor
        ) from None


class AlertService:
    """Delivers alerts to sessions and side channels, escalates, lists and acknowledges."""

    def __init__(
        self,
        *,
        sink: EventSink,
        store: AlertStore,
        channels: Sequence[AlertChannel] = (),
        escalate_after: float = ESCALATE_AFTER,
        sweep_interval: float = SWEEP_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
        send_timeout: float = 10.0,
        queue_size: int = 100,
    ) -> None:
        """``sink`` is the frontend fan-out (the Router), never an :class:`AlertingSink`."""
        self._sink = sink
        self._store = store
        self._workers = [
            ChannelWorker(channel, send_timeout=send_timeout, queue_size=queue_size)
            for channel in channels
        ]
        self._escalate_after = escalate_after
        self._sweep_interval = sweep_interval
        self._retry_interval = retry_interval
        self._due: dict[str, float] = {}  # alert id → trio time of its escalation
        self._frames: dict[str, dict[str, Any]] = {}  # frames of alerts raised here
        self._heap: list[tuple[float, str]] = []
        self._changed = trio.Event()
        self.raised: Counter[str] = Counter()
        self.escalated = 0

    # --- raising --------------------------------------------------------------------------

    def alert(self, frame: dict[str, Any]) -> None:
        """Deliver a newly raised alert's frame; never blocks.

        Every alert goes to the frontend sink; critical ones are also queued for each side
        channel and watched for escalation.
        """
        severity = str(frame.get("severity"))
        self.raised[severity] += 1
        if not frame.get("escalated"):
            metrics.alerts_raised.labels(severity).inc()
        self._send(frame)
        alert_id = frame.get("alert_id")
        if (
            frame.get("severity") == "critical"
            and not frame.get("escalated")
            and isinstance(alert_id, str)
            and alert_id not in self._due
        ):
            self._watch(alert_id, trio.current_time() + self._escalate_after, frame)

    def _send(self, frame: dict[str, Any]) -> None:
        try:
            self._sink.alert(frame)
        except Exception:  # the side channels must still get it
            logger.exception("alert %s not delivered to sessions", frame.get("alert_id"))
        if frame.get("severity") == "critical":
            for worker in self._workers:
                worker.offer(dict(frame))

    # --- escalation -----------------------------------------------------------------------

    def _watch(self, alert_id: str, due: float, frame: dict[str, Any] | None) -> None:
        self._due[alert_id] = due
        if frame is not None:
            self._frames[alert_id] = frame
        heapq.heappush(self._heap, (due, alert_id))
        self._changed.set()

    def _forget(self, alert_id: str) -> None:
        self._due.pop(alert_id, None)
        self._frames.pop(alert_id, None)

    def _next_due(self) -> float:
        while self._heap:
            due, alert_id = self._heap[0]
            if self._due.get(alert_id) == due:
                return due
            heapq.heappop(self._heap)  # acknowledged, or rescheduled: a stale entry
        return float("inf")

    def _take_due(self, now: float) -> list[str]:
        taken: list[str] = []
        while self._next_due() <= now:
            _, alert_id = heapq.heappop(self._heap)
            del self._due[alert_id]
            taken.append(alert_id)
        return taken

    async def _serve_escalations(self) -> None:
        next_sweep = trio.current_time()
        while True:
            if trio.current_time() >= next_sweep:
                await self._sweep()
                next_sweep = trio.current_time() + self._sweep_interval
            for alert_id in self._take_due(trio.current_time()):
                await self._escalate(alert_id)
            self._changed = trio.Event()
            with trio.move_on_at(min(next_sweep, self._next_due())):
                await self._changed.wait()

    async def _sweep(self) -> None:
        """Watch stored open critical alerts this process does not know of yet."""
        try:
            found = await self._store.unescalated_critical()
        except StorageError as exc:
            logger.warning("cannot look for alerts to escalate: %s", exc)
            return
        now = trio.current_time()
        for item in found:
            if item.alert_id not in self._due:
                wait = max(0.0, self._escalate_after - item.age_seconds)
                self._watch(item.alert_id, now + wait, None)

    async def _escalate(self, alert_id: str) -> None:
        frame = self._frames.pop(alert_id, None)
        try:
            row = await self._store.mark_escalated(alert_id)
        except StorageError as exc:
            logger.warning(
                "cannot escalate alert %s now, trying again in %.0f s: %s",
                alert_id,
                self._retry_interval,
                exc,
            )
            self._watch(alert_id, trio.current_time() + self._retry_interval, frame)
            return
        if row is None:
            if frame is None:
                return
            # Its row was never written (the database was down when it was raised); nobody
            # can acknowledge it, so it is escalated from what this process holds.
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

    # --- the task -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the side-channel senders and the escalation timer until cancelled.

        Reports started at once; the first look for stored alerts to escalate happens in the
        background. Frames still queued for a side channel when cancelled are not sent.
        """
        async with trio.open_nursery() as alert_nursery:
            for worker in self._workers:
                await alert_nursery.start(worker.run)
            alert_nursery.start_soon(self._serve_escalations)
            task_status.started()

    # --- people ---------------------------------------------------------------------------

    async def acknowledge(self, alert_id: str, username: str) -> dict[str, Any]:
        """Acknowledge an alert (which stops its escalation); 404 ``not_found`` if unknown.

        Acknowledging again answers with the first acknowledgement, unchanged.
        """
        async with storage_guard():
            row = await self._store.acknowledge(alert_id, username)
        if row is None:
            raise not_found("not_found", f"No alert {alert_id}")
        self._forget(alert_id)
        return alert_item(row)

    async def list_alerts(
        self,
        *,
        open_only: bool | None,
        vehicle_id: str | None,
        severity: str | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        """A page of alerts newest first, and the cursor of the next page (or None)."""
        before = decode_cursor(cursor) if cursor else None
        async with storage_guard():
            rows = await self._store.page(
                open_only=open_only,
                vehicle_id=vehicle_id,
                severity=severity,
                before=before,
                limit=limit + 1,
            )
        items = [alert_item(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last["created_at"], last["alert_id"])
        return {"items": items, "next_cursor": next_cursor}

    def stats(self) -> dict[str, Any]:
        """Counters for /metrics and /debug/actors."""
        return {
            "raised": dict(self.raised),
            "escalated": self.escalated,
            "watching": len(self._due),
            "channels": {worker.channel.name: worker.stats() for worker in self._workers},
        }


class AlertingSink:
    """The sink VehicleActors get: events to the Router, alerts through the AlertService."""

    def __init__(self, router: EventSink, alerts: AlertService) -> None:
        self._router = router
        self._alerts = alerts

    def vehicle_event(self, vehicle_id: str, event: dict[str, Any]) -> None:
        """Straight to the Router."""
        self._router.vehicle_event(vehicle_id, event)

    def command_status(
        self, vehicle_id: str, event: dict[str, Any], *, sender_session: str | None
    ) -> None:
        """Straight to the Router."""
        self._router.command_status(vehicle_id, event, sender_session=sender_session)

    def alert(self, event: dict[str, Any]) -> None:
        """Through the AlertService (which hands it to the Router too)."""
        self._alerts.alert(event)


def build_alert_service(
    settings: Settings, database: Database, router: EventSink, **options: Any
) -> AlertService:
    """The hub's AlertService: the database store and the channels the settings enable."""
    return AlertService(
        sink=router,
        store=DatabaseAlertStore(database),
        channels=channels_from_settings(settings),
        escalate_after=settings.alert_escalation_after,
        **options,
    )
