"""VehicleActor: everything about one vehicle, touched only by this actor's tasks.

Three lanes keep a slow database from ever delaying a command:

- the **control lane** (the mailbox loop) handles sockets, commands and acks and never
  awaits storage — an emergency stop goes out the moment it arrives;
- the **telemetry lane** checks and commits reports one at a time, in arrival order, then
  publishes each new record to the Router;
- the **persistence lane** writes command rows, statuses and audit records in order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import trio

from actors.events import EventSink
from actors.sockets.outbound import OutboundLink
from actors.vehicle.command_desk import CommandDesk, PendingCommand, PersistJob
from actors.vehicle.messages import (
    AckReceived,
    BulkReport,
    CommandOrigin,
    Connect,
    Disconnect,
    Report,
    SendCommand,
    StorageStatusStore,
    VehicleMessage,
)
from actors.vehicle.offline_queue import QueuedCommand
from actors.vehicle.telemetry import Accepted, TelemetryService
from hub.clock import now_timestamp, utc_now
from hub.contract import ws_events
from hub.contract.commands import AnyCommand, vehicle_payload, with_defaults
from hub.errors import ContractError, service_unavailable
from hub.runtime import Inbox, Reply
from storage.database import Database, StorageError, UniqueViolationError
from storage.queries import accounts as account_queries
from storage.queries import commands as command_queries
from storage.queries import missions as mission_queries

logger = logging.getLogger(__name__)

PERSIST_LANE_SIZE = 10_000
STOP_RECORD_RETRY = 1.0  # seconds between attempts to record an emergency stop
STOP_RECORD_ATTEMPTS = 300
TELEMETRY_LANE_SIZE = 1_000


def resume_allowed(last_state: str | None, last_delivered: str | None) -> bool:
    """CONTRACT §6.3: resume only after an emergency stop (state or last delivered command)."""
    return last_state == "emergency_stop" or last_delivered == "emergency_stop"


class VehicleActor:
    """One vehicle: its reports, its socket, its commands."""

    def __init__(
        self,
        vehicle_id: str,
        *,
        database: Database,
        telemetry: TelemetryService,
        sink: EventSink,
        command_ttl: timedelta = timedelta(minutes=10),
        ack_timeout: float = 5.0,
        ping_interval: float = 30.0,
    ) -> None:
        self.vehicle_id = vehicle_id
        self._database = database
        self._telemetry = telemetry
        self._sink = sink
        self._persist_send, self._persist_receive = trio.open_memory_channel[PersistJob](
            PERSIST_LANE_SIZE
        )
        self._telemetry_send, self._telemetry_receive = trio.open_memory_channel[
            Report | BulkReport
        ](TELEMETRY_LANE_SIZE)
        self.desk = CommandDesk(
            vehicle_id,
            sink=sink,
            store=StorageStatusStore(database, vehicle_id),
            persist=self._persist,
            ttl=command_ttl,
            ack_timeout=ack_timeout,
        )
        self._queue_position = 0
        self._ping_interval = ping_interval
        self._persist_queued = 0
        self._stop_epoch = 0  # emergency stops accepted so far
        self._lanes: trio.Nursery | None = None
        self._persisted = 0
        self._lane_progress = trio.Event()

    # --- life -----------------------------------------------------------------------------

    async def run(
        self, inbox: Inbox[VehicleMessage], *, task_status: trio.TaskStatus[None]
    ) -> None:
        """Restore queued commands, start the lanes, then handle messages until cancelled.

        If this incarnation ends for any reason, the vehicle's socket is closed with it
        (1001 at shutdown, 1011 after a crash): the restarted actor knows no socket, and the
        vehicle must reconnect to it rather than stay silently cut off from commands.
        """
        await self._restore_queue()
        try:
            async with trio.open_nursery() as lanes:
                self._lanes = lanes
                self.desk.bind(lanes)
                lanes.start_soon(self._telemetry_lane)
                lanes.start_soon(self._persistence_lane)
                task_status.started()
                async for message in inbox:
                    self._handle(message)
        except BaseException as exc:
            link = self.desk.link
            if link is not None and not link.closed:
                stopping = isinstance(exc, trio.Cancelled)
                link.close(
                    1001 if stopping else 1011,
                    "server going away" if stopping else "internal error",
                )
            raise

    def _handle(self, message: VehicleMessage) -> None:
        match message:
            case Report() | BulkReport():
                try:
                    self._telemetry_send.send_nowait(message)
                except trio.WouldBlock:
                    message.reply.fail(service_unavailable("Vehicle backlog full, retry later"))
            case Connect(link, reply):
                self._connect(link)
                reply.send(None)
            case Disconnect(link_id):
                if self.desk.link is not None and self.desk.link.link_id == link_id:
                    self.desk.disconnected()
                    self._connection_event(connected=False)
            case AckReceived(ack):
                if not self.desk.acknowledged(ack):
                    logger.info(
                        "ack for unknown command %s from %s", ack.command_id, self.vehicle_id
                    )
            case SendCommand(command, origin, reply):
                self._accept_command(command, origin, reply)

    def describe(self) -> dict[str, Any]:
        """Fields for /debug/actors."""
        link = self.desk.link
        return {
            **self.desk.describe(),
            "connection": "connected" if link is not None else "disconnected",
            "last_heartbeat": None if link is None else round(link.last_received, 3),
            "telemetry_backlog": self._telemetry_receive.statistics().current_buffer_used,
            "persistence_backlog": self._persist_receive.statistics().current_buffer_used,
        }

    # --- telemetry ------------------------------------------------------------------------

    async def _telemetry_lane(self) -> None:
        async for message in self._telemetry_receive:
            try:
                if isinstance(message, Report):
                    accepted = await self._telemetry.report(
                        self.vehicle_id, message.record, message.decision
                    )
                else:
                    accepted = await self._telemetry.bulk(
                        self.vehicle_id, message.parsed, message.decision
                    )
            except ContractError as error:
                message.reply.fail(error)
                continue
            except Exception as exc:  # a bug must cost one report, not the vehicle's actor
                logger.exception("report of %s failed", self.vehicle_id)
                message.reply.fail(
                    ContractError(500, "internal_error", f"Report failed: {type(exc).__name__}")
                )
                continue
            self._publish(accepted)
            message.reply.send(accepted)

    def _publish(self, accepted: Accepted) -> None:
        for event in accepted.events:
            self._sink.vehicle_event(self.vehicle_id, event)
        for alert in accepted.alerts:
            self._sink.alert(alert)

    # --- sockets --------------------------------------------------------------------------

    def _connect(self, link: OutboundLink) -> None:
        old = self.desk.link
        if old is not None:
            old.close(4009, "replaced")
            self.desk.disconnected()
        welcome = ws_events.welcome(
            self.vehicle_id, now_timestamp(), ping_interval_seconds=self._ping_interval
        )
        link.send_nowait(welcome, urgent=True)  # first, even before queued emergency stops
        self.desk.connected(link)
        self._connection_event(connected=True)

    def _connection_event(self, *, connected: bool) -> None:
        event = ws_events.vehicle_connection(self.vehicle_id, connected, now_timestamp(), seq=0)
        self._sink.vehicle_event(self.vehicle_id, event)

    # --- commands -------------------------------------------------------------------------

    def _accept_command(
        self, command: AnyCommand, origin: CommandOrigin, reply: Reply[PendingCommand]
    ) -> None:
        command = with_defaults(command, utc_now())
        assert command.command_id is not None and command.timestamp is not None
        if self.desk.knows(command.command_id):
            reply.fail(_duplicate(command.command_id))
            return
        if command.type == "resume" and not resume_allowed(
            self._telemetry.current_state(self.vehicle_id), self.desk.last_delivered_type
        ):
            reply.fail(
                ContractError(
                    409,
                    "invalid_command_state",
                    "resume is only valid while the vehicle is in emergency_stop",
                    field="type",
                    received_value="resume",
                )
            )
            return
        self._queue_position += 1
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
        if command.type == "emergency_stop":
            # The row is written first in the lane, but the stop goes out now: no validation
            # delay, no queueing behind others.
            self._stop_epoch += 1
            self._persist(lambda: self._record_stop(command, pending, origin), must_run=True)
            self.desk.deliver(pending)
            reply.send(pending)
            return
        epoch = self._stop_epoch
        self._persist(lambda: self._record(command, pending, origin, reply=reply, epoch=epoch))

    async def _store_command(
        self, command: AnyCommand, pending: PendingCommand, origin: CommandOrigin
    ) -> None:
        """Insert the command's row (and its mission, for a dispatch)."""
        assert command.command_id is not None
        position = (
            -self._queue_position if command.type == "emergency_stop" else self._queue_position
        )
        await command_queries.insert_command(
            self._database,
            command_id=command.command_id,
            vehicle_id=self.vehicle_id,
            command_type=command.type,
            payload=pending.queued.payload,
            status=pending.status,
            priority=getattr(command, "priority", "normal"),
            sender=origin.username,
            created_at=pending.queued.created_at,
            queue_position=position,
        )
        if command.type == "dispatch":
            mission = command.mission
            await command_queries.upsert_mission(
                self._database,
                mission_id=mission.mission_id,
                vehicle_id=self.vehicle_id,
                status="dispatched",
                priority=command.priority,
                pickup=mission.pickup.model_dump(mode="json"),
                destination=mission.destination.model_dump(mode="json"),
                scheduled_time=mission.scheduled_time,
            )
            await mission_queries.link_reservation(self._database, mission.mission_id)

    async def _record(
        self,
        command: AnyCommand,
        pending: PendingCommand,
        origin: CommandOrigin,
        *,
        reply: Reply[PendingCommand],
        epoch: int,
    ) -> None:
        """Store an ordinary command, then deliver it — unless a stop overtook it meanwhile."""
        assert command.command_id is not None
        try:
            await self._store_command(command, pending, origin)
        except UniqueViolationError:
            reply.fail(_duplicate(command.command_id))
            return
        except StorageError:
            reply.fail(service_unavailable())
            return
        if epoch != self._stop_epoch:
            # An emergency stop was accepted while this command waited for its row: sending it
            # now would reach the vehicle after the stop and could undo it.
            with trio.move_on_after(STOP_RECORD_RETRY):
                try:
                    await command_queries.set_status(
                        self._database, [command.command_id], "dropped"
                    )
                except StorageError as exc:
                    logger.warning("could not mark %s dropped: %s", command.command_id, exc)
            reply.fail(
                ContractError(
                    409,
                    "invalid_command_state",
                    "An emergency stop was issued after this command; send it again after resume",
                    field="command_id",
                    received_value=command.command_id,
                )
            )
            return
        self.desk.deliver(pending)
        reply.send(pending)

    async def _record_stop(
        self, command: AnyCommand, pending: PendingCommand, origin: CommandOrigin
    ) -> None:
        """Store an emergency stop and its audit record, retrying every second while the
        database is away (for up to five minutes): a stop is never only in memory if it can
        be helped, and every stop is audited.
        """
        assert command.command_id is not None
        stored = audited = False
        for attempt in range(STOP_RECORD_ATTEMPTS):
            try:
                if not stored:
                    try:
                        await self._store_command(command, pending, origin)
                    except UniqueViolationError:
                        logger.error("emergency stop id %s collided", command.command_id)
                    stored = True
                if not audited:
                    await account_queries.write_audit(
                        self._database,
                        action="emergency_stop",
                        actor=origin.username,
                        actor_role=origin.role,
                        vehicle_id=self.vehicle_id,
                        outcome=pending.status,
                        details={
                            "command_id": command.command_id,
                            "payload": pending.queued.payload,
                        },
                        request_id=origin.request_id,
                    )
                    audited = True
                return
            except StorageError as exc:
                if attempt == 0:
                    logger.warning(
                        "emergency stop %s not recorded yet, retrying: %s", command.command_id, exc
                    )
                await trio.sleep(STOP_RECORD_RETRY)
        logger.error(
            "emergency stop %s could not be recorded in %d s",
            command.command_id,
            STOP_RECORD_ATTEMPTS,
        )

    # --- persistence ----------------------------------------------------------------------

    def _persist(self, job: PersistJob, *, must_run: bool = False) -> None:
        try:
            self._persist_send.send_nowait(job)
            self._persist_queued += 1
        except trio.WouldBlock:
            if must_run and self._lanes is not None:
                self._lanes.start_soon(job)  # out of order, but an emergency stop is recorded
                return
            logger.error("persistence lane of %s full; a status write was skipped", self.vehicle_id)

    async def _persistence_lane(self) -> None:
        async for job in self._persist_receive:
            try:
                await job()
            except StorageError as exc:
                logger.error("storage write for %s failed: %s", self.vehicle_id, exc)
            except Exception:  # a bug in one write must not take the vehicle's actor down
                logger.exception("storage job for %s failed", self.vehicle_id)
            finally:
                self._persisted += 1
                self._lane_progress.set()
                self._lane_progress = trio.Event()

    async def drain(self) -> None:
        """Wait until every storage write queued so far is done (used at shutdown)."""
        target = self._persist_queued
        while self._persisted < target:
            await self._lane_progress.wait()

    async def _restore_queue(self) -> None:
        rows = await command_queries.queued_commands(self._database, self.vehicle_id)
        ordered = sorted(
            rows, key=lambda row: (row["type"] != "emergency_stop", row["queue_position"] or 0)
        )
        for row in ordered:
            queued = QueuedCommand(
                row["command_id"],
                row["type"],
                json.loads(row["payload"]),
                row["created_at"],
                row["sender"],
            )
            self.desk.restore(PendingCommand(queued, None))
            self._queue_position = max(self._queue_position, abs(row["queue_position"] or 0))


def _duplicate(command_id: str) -> ContractError:
    return ContractError(
        409,
        "duplicate_command",
        f"command_id {command_id} was already used",
        field="command_id",
        received_value=command_id,
    )


def factory(vehicle_id: str, **dependencies: Any) -> Callable[[], VehicleActor]:
    """A supervisor factory: a fresh VehicleActor for each (re)start."""
    return lambda: VehicleActor(vehicle_id, **dependencies)
