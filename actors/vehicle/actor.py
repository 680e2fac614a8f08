"""VehicleActor: everything about one vehicle, owned by this actor and nobody else.

Three tasks, each the only one to touch its part, so a slow database never delays a command:

- the **control task** (the mailbox loop) owns the socket, the commands (taken in by its
  :class:`~actors.vehicle.command_intake.CommandIntake`, sent by its
  :class:`~actors.vehicle.command_desk.CommandDesk`, driven by its deadlines), the rate
  buckets and the state the resume rule reads. It never awaits storage (nor Redis): an
  emergency stop goes out the moment it arrives. With rate limits shared through Redis
  (``VehicleOptions.shared_limits``) the telemetry lane takes the tokens instead;
- the **telemetry lane** (:class:`~actors.vehicle.telemetry.TelemetryLane`) owns the live
  state and battery health, and checks and commits reports one at a time, in arrival order;
- the **persistence lane** writes command rows, statuses and audit records in order.

The lanes tell the control task what it needs to know by message (:class:`StateSeen`,
:class:`CommandStored`, :class:`StatusWritten`, :class:`StopRecorded`), through the mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import trio

from actors.rate_limit import Decision, RateLimiter, SharedRateLimiter
from actors.sockets.outbound import OutboundLink
from actors.vehicle.command_desk import CommandDesk, PersistJob
from actors.vehicle.command_intake import CommandIntake
from actors.vehicle.messages import (
    AckReceived,
    AwaitOutcome,
    BatteryHealthNow,
    BulkReport,
    CommandNow,
    CommandStored,
    Connect,
    ConnectedElsewhere,
    Disconnect,
    Drain,
    GoingAway,
    QueuedCommandsRead,
    QueuedElsewhere,
    Report,
    SendCommand,
    StateSeen,
    StatusWritten,
    StopAnswerDue,
    StopRecorded,
    VehicleMessage,
)
from actors.vehicle.ports import (
    NoPresence,
    Publisher,
    SocketPresence,
    VehicleStore,
)
from actors.vehicle.state import STATE_MEMORY
from actors.vehicle.telemetry import (
    LANE_SIZE,
    LaneBulk,
    LaneFlush,
    LaneHealth,
    LaneJob,
    LaneReport,
    TelemetryLane,
)
from hub import metrics
from hub.clock import format_timestamp, now_timestamp, utc_now
from hub.config import RateLimit
from hub.contract import ws_events
from hub.contract.validation import check_live_timestamp
from hub.errors import ContractError, UnavailableError
from hub.logs import log_context, reset_log_context
from hub.runtime import Inbox, Reply, ended_by_cancellation
from storage.database import StorageError

logger = logging.getLogger(__name__)

PERSIST_LANE_SIZE = 10_000
DRAIN_FLUSH_TIMEOUT = 5.0
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
REPLACED = 4009


@dataclass(frozen=True, slots=True)
class VehicleOptions:
    """The timers and limits every VehicleActor gets from the settings."""

    rate_limits: dict[str, RateLimit]
    rate_limit_enabled: bool = True
    # Buckets shared by every hub (Redis): the telemetry lane takes the tokens, since the
    # control task must not await; None keeps them in this actor, taken by the control task.
    shared_limits: SharedRateLimiter | None = None
    command_ttl: timedelta = timedelta(minutes=10)
    ack_timeout: float = 5.0
    ping_interval: float = 30.0


class VehicleActor:
    """One vehicle: its reports, its socket, its commands (kind ``"vehicle"``)."""

    def __init__(
        self,
        vehicle_id: str,
        *,
        store: VehicleStore,
        publisher: Publisher,
        known_error_codes: Collection[str],
        options: VehicleOptions,
        presence: SocketPresence | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self._store = store
        self._publisher = publisher
        self._options = options
        self._presence = presence or NoPresence()
        self._limits = RateLimiter(options.rate_limits, enabled=options.rate_limit_enabled)
        self._lane_send, self._lane_receive = trio.open_memory_channel[LaneJob](LANE_SIZE)
        self._persist_send, self._persist_receive = trio.open_memory_channel[
            tuple[str | None, PersistJob]
        ](PERSIST_LANE_SIZE)
        self.lane = TelemetryLane(
            vehicle_id,
            store=store,
            publisher=publisher,
            known_error_codes=known_error_codes,
            tell_control=self._tell_self,
            shared_limits=options.shared_limits,
        )
        self.desk = CommandDesk(
            vehicle_id,
            publisher=publisher,
            store=store,
            persist=self._persist,
            notify=self._status_written,
            ttl=options.command_ttl,
            ack_timeout=options.ack_timeout,
        )
        self.intake = CommandIntake(
            vehicle_id,
            desk=self.desk,
            store=store,
            persist=self._persist,
            tell_control=self._tell_self,
            start_soon=self._start_soon,
        )
        self._last_state: StateSeen | None = None
        self._request_id: str | None = None
        self._lanes: trio.Nursery | None = None
        self._inbox: Inbox[VehicleMessage] | None = None
        self.skipped_writes = 0

    # --- life -----------------------------------------------------------------------------

    async def run(
        self, inbox: Inbox[VehicleMessage], *, task_status: trio.TaskStatus[None]
    ) -> None:
        """Restore from storage, start the lanes, then handle messages until cancelled.

        If this incarnation ends for any reason, the vehicle's socket is closed with it
        (1001 when the actor is stopped, 1011 after a crash): the restarted actor knows no
        socket, and the vehicle must reconnect to it rather than stay cut off from commands.
        Raises the storage error family if the restore fails (the actor does not start).
        """
        reset_log_context()
        restored = await self._store.restore(self.vehicle_id)
        self.lane.restore(restored)
        self.intake.restore(restored.queued)
        self._inbox = inbox
        try:
            async with trio.open_nursery() as lanes:
                self._lanes = lanes
                lanes.start_soon(self.lane.serve, self._lane_receive)
                lanes.start_soon(self._persistence_lane)
                task_status.started()
                await self._control(inbox)
                lanes.cancel_scope.cancel()
        except BaseException as exc:
            link = self.desk.link
            if link is not None and not link.closed:
                stopping = ended_by_cancellation(exc)
                link.close(
                    GOING_AWAY if stopping else INTERNAL_ERROR,
                    "server going away" if stopping else "internal error",
                )
            raise

    async def _control(self, inbox: Inbox[VehicleMessage]) -> None:
        """The mailbox loop: handle each message; in between, the desk's resends and timeouts."""
        while True:
            with trio.move_on_at(self.desk.next_deadline()):
                try:
                    message = await inbox.receive()
                except trio.ClosedResourceError:
                    return
                self._handle(message)
                continue
            self.desk.tick(trio.current_time())

    async def _tell_self(self, message: VehicleMessage) -> None:
        """How a lane reports to the control task: through the mailbox, behind what waits."""
        assert self._inbox is not None
        await self._inbox.tell_self(message)

    async def _status_written(self, command_id: str, status: str) -> None:
        await self._tell_self(StatusWritten(command_id, status))

    def _handle(self, message: VehicleMessage) -> None:
        self._request_id = getattr(message, "request_id", None)
        with log_context(request_id=self._request_id, vehicle_id=self.vehicle_id):
            try:
                self._dispatch(message)
            finally:
                self._request_id = None

    def _dispatch(self, message: VehicleMessage) -> None:
        now = trio.current_time()
        match message:
            case Report():
                self._admit_report(message, now)
            case BulkReport(parsed, request_id, reply):
                quota = self._local_take("bulk")
                if quota is not None and not quota.allowed:
                    reply.fail(quota.refusal())
                    return
                self._to_lane(LaneBulk(parsed, quota, request_id, reply), reply)
            case Connect(link, reply):
                self._connect(link, now)
                reply.send(None)
            case Disconnect(link_id):
                if self.desk.link is not None and self.desk.link.link_id == link_id:
                    self.desk.disconnected()
                    self._presence.release(self.vehicle_id, link_id)
                    self._connection_event(connected=False)
            case QueuedElsewhere():
                if self.desk.link is not None:
                    self._persist(self._read_queued)
            case QueuedCommandsRead(commands):
                self.intake.queued_elsewhere(commands, now)
            case ConnectedElsewhere(hub_id):
                if self.desk.link is not None:  # no "disconnected" event: it is connected
                    logger.info("vehicle connected on hub %s: closing this socket", hub_id)
                    self.desk.link.close(REPLACED, "replaced")
                    self.desk.disconnected()
            case AckReceived(ack, _):
                if not self.desk.acknowledged(ack, now):
                    logger.info("ack for unknown command %s", ack.command_id)
            case SendCommand(command, origin, reply):
                self._request_id = origin.request_id
                with log_context(request_id=origin.request_id):
                    self.intake.accept(
                        command, origin, reply, now, known_state=self._known_state(now)
                    )
            case AwaitOutcome(command_id, reply):
                self.desk.await_outcome(command_id, reply)
            case CommandNow(command_id, reply):
                reply.send(self.intake.status_now(command_id))
            case BatteryHealthNow(reply):
                self._to_lane(LaneHealth(reply), reply)
            case GoingAway():
                if self.desk.link is not None:
                    self.desk.link.close(GOING_AWAY, "server going away")
            case Drain(reply):
                self._drain(reply)
            case StateSeen():
                self._last_state = message
            case CommandStored(command_id, error):
                self.intake.stored(command_id, error, now)
            case StatusWritten(command_id, status):
                self.desk.status_written(command_id, status)
            case StopRecorded(command_id):
                self.intake.stop_recorded(command_id)
            case StopAnswerDue(command_id):
                self.intake.stop_answer_due(command_id)

    def describe(self) -> dict[str, Any]:
        """Fields for /debug/actors."""
        link = self.desk.link
        return {
            **self.desk.describe(),
            "connection": "connected" if link is not None else "disconnected",
            "last_heartbeat": None if link is None else round(link.last_received, 3),
            "telemetry_backlog": self._lane_receive.statistics().current_buffer_used,
            "persistence_backlog": self._persist_receive.statistics().current_buffer_used,
            "skipped_writes": self.skipped_writes,
        }

    # --- telemetry ------------------------------------------------------------------------

    def _admit_report(self, message: Report, now: float) -> None:
        """The one admission step of every live report, REST or socket: rate limit, window."""
        record, reply = message.record, message.reply
        quota = self._local_take(record.kind)
        if quota is not None and not quota.allowed:
            reply.fail(quota.refusal())
            return
        try:
            check_live_timestamp(
                record.timestamp, utc_now(), raw=format_timestamp(record.timestamp)
            )
        except ContractError as error:
            reply.fail(error)
            return
        self._to_lane(LaneReport(record, quota, message.request_id, reply), reply)

    def _local_take(self, kind: str) -> Decision | None:
        """A token from this actor's bucket; None when the buckets are shared through Redis
        (the telemetry lane takes it then, and answers the 429: the control task never
        awaits, and a refused report still stores nothing). A report refused here for its
        timestamp then costs no shared token."""
        if self._options.shared_limits is not None:
            return None
        return self._limits.take(kind, self.vehicle_id)

    def _to_lane(self, job: LaneJob, reply: Reply[Any]) -> None:
        try:
            self._lane_send.send_nowait(job)
        except trio.WouldBlock:
            reply.fail(UnavailableError("Vehicle backlog full, retry later", retry_after=1))

    # --- sockets --------------------------------------------------------------------------

    def _connect(self, link: OutboundLink, now: float) -> None:
        old = self.desk.link
        if old is not None:
            old.close(REPLACED, "replaced")
            self.desk.disconnected()
        welcome = ws_events.welcome(
            self.vehicle_id, now_timestamp(), ping_interval_seconds=self._options.ping_interval
        )
        link.send_nowait(welcome, urgent=True)  # first, even before queued emergency stops
        self.desk.connected(link, now)
        self._presence.claim(self.vehicle_id, link.link_id)
        self._connection_event(connected=True)

    def _connection_event(self, *, connected: bool) -> None:
        event = ws_events.vehicle_connection(self.vehicle_id, connected, now_timestamp(), seq=0)
        self._publisher.vehicle_event(self.vehicle_id, event)

    # --- commands -------------------------------------------------------------------------

    def _known_state(self, now: float) -> str | None:
        seen = self._last_state
        if seen is None or now - seen.accepted_at > STATE_MEMORY:
            return None
        return seen.state

    def _start_soon(self, task: Callable[[], Awaitable[None]]) -> None:
        assert self._lanes is not None
        self._lanes.start_soon(task)

    async def _read_queued(self) -> None:
        """(Persistence lane.) Read the queued commands and tell the control task."""
        restored = await self._store.restore(self.vehicle_id)
        await self._tell_self(QueuedCommandsRead(tuple(restored.queued)))

    # --- persistence ----------------------------------------------------------------------

    def _persist(self, job: PersistJob, *, must_run: bool = False) -> None:
        try:
            self._persist_send.send_nowait((self._request_id, job))
        except trio.WouldBlock:
            if must_run and self._lanes is not None:
                self._lanes.start_soon(job)  # out of order, but an emergency stop is recorded
                return
            self.skipped_writes += 1
            metrics.writes_skipped.inc()
            logger.error("persistence lane full; a status write was skipped")

    async def _persistence_lane(self) -> None:
        async for request_id, job in self._persist_receive:
            with log_context(request_id=request_id, vehicle_id=self.vehicle_id):
                try:
                    await job()
                except StorageError as exc:
                    logger.error("storage write failed: %s", exc)
                except Exception:  # a bug in one write must not take the vehicle's actor down
                    logger.exception("storage job failed")

    def _drain(self, reply: Reply[None]) -> None:
        """Answer once the writes queued so far and the battery accumulators are stored."""
        flushed: Reply[None] = Reply()
        try:
            self._lane_send.send_nowait(LaneFlush(flushed))
        except trio.WouldBlock:
            flushed.send(None)

        async def answer() -> None:
            with trio.move_on_after(DRAIN_FLUSH_TIMEOUT):
                await flushed.wait()
            reply.send(None)

        try:
            self._persist_send.send_nowait((None, answer))
        except trio.WouldBlock:
            reply.send(None)
