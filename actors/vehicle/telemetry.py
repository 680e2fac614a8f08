"""The telemetry lane of one VehicleActor: its reports checked and committed in arrival order.

:class:`TelemetryLane` runs as a task inside the vehicle's actor and is the only owner of the
vehicle's live state (:class:`~actors.vehicle.state.VehicleState`) and battery-health
accumulators. It takes one job at a time, so per-vehicle order is the order of arrival and a
transition is always checked against the previous accepted report. A report is answered
only after its row is committed; then its event is published and, for a status, the state
the resume rule needs is told to the actor's control task.

With rate limits shared through Redis, the lane also takes each report's token (the control
task never awaits Redis): a report the shared bucket refuses is answered 429 before anything
is checked or stored.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import trio

from actors.rate_limit import Decision, SharedRateLimiter
from actors.vehicle import battery_health, rules
from actors.vehicle.battery_health import BatteryHealthState, SaveSchedule
from actors.vehicle.messages import BulkAccepted, ReportAccepted, StateSeen
from actors.vehicle.ports import Publisher, Restored, VehicleStore
from actors.vehicle.state import VehicleState, restored_state
from hub import metrics
from hub.clock import format_timestamp, now_timestamp, utc_now
from hub.contract import ws_events
from hub.contract.bulk import ParsedBulk
from hub.contract.telemetry import BatteryUpdate, ErrorReport, StatusUpdate, TelemetryRecord
from hub.errors import ContractError, InternalError, UnavailableError
from hub.logs import log_context
from hub.runtime import Reply
from storage.database import StorageError, StorageUnavailableError
from storage.writer import AlertRow, WriteRequest, WriteResult

logger = logging.getLogger(__name__)

LANE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class LaneReport:
    """A live record, admitted by the control task, to check and commit.

    ``quota`` is None when the shared buckets decide: the lane takes the token first.
    """

    record: TelemetryRecord
    quota: Decision | None
    request_id: str | None
    reply: Reply[ReportAccepted]


@dataclass(frozen=True, slots=True)
class LaneBulk:
    """An admitted offline backlog to commit in one transaction (``quota``: as LaneReport)."""

    parsed: ParsedBulk
    quota: Decision | None
    request_id: str | None
    reply: Reply[BulkAccepted]


@dataclass(frozen=True, slots=True)
class LaneHealth:
    """Answer with a copy of the battery-health accumulators."""

    reply: Reply[BatteryHealthState]


@dataclass(frozen=True, slots=True)
class LaneFlush:
    """Save what is unsaved, then answer (shutdown)."""

    reply: Reply[None]


LaneJob = LaneReport | LaneBulk | LaneHealth | LaneFlush


class TelemetryLane:
    """Checks, commits, answers and publishes one vehicle's reports, one at a time."""

    def __init__(
        self,
        vehicle_id: str,
        *,
        store: VehicleStore,
        publisher: Publisher,
        known_error_codes: Collection[str],
        tell_control: Callable[[StateSeen], Awaitable[None]],
        save_interval: float = battery_health.SAVE_INTERVAL,
        shared_limits: SharedRateLimiter | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self._shared_limits = shared_limits
        self._store = store
        self._publisher = publisher
        self._known_error_codes = known_error_codes
        self._tell_control = tell_control
        self.state = VehicleState(vehicle_id)
        self.battery = BatteryHealthState(vehicle_id)
        self._battery_saves = SaveSchedule(interval=save_interval)

    def restore(self, restored: Restored) -> None:
        """Start from what storage holds (called before the lane serves)."""
        self.state = restored_state(
            self.vehicle_id, restored.latest, wall_now=utc_now(), now=trio.current_time()
        )
        self.battery = battery_health.state_from_row(self.vehicle_id, restored.battery_health)

    async def serve(self, jobs: trio.MemoryReceiveChannel[LaneJob]) -> None:
        """Handle jobs in order until the channel closes or the task is cancelled.

        Every job's reply is answered; a bug costs one report (a logged 500), not the lane.
        """
        async for job in jobs:
            try:
                await self._handle(job)
            except Exception as exc:  # a bug must cost one report, not the vehicle's lane
                logger.exception("telemetry job of %s failed", self.vehicle_id)
                job.reply.fail(InternalError(f"Report failed: {type(exc).__name__}"))

    async def _handle(self, job: LaneJob) -> None:
        match job:
            case LaneReport(record, quota, request_id, reply):
                with log_context(request_id=request_id, vehicle_id=self.vehicle_id):
                    await self._answer(reply, self.report(record, quota))
            case LaneBulk(parsed, quota, request_id, reply):
                with log_context(request_id=request_id, vehicle_id=self.vehicle_id):
                    await self._answer(reply, self.bulk(parsed, quota))
            case LaneHealth(reply):
                reply.send(battery_health.copy_state(self.battery))
            case LaneFlush(reply):
                await self._save_battery()
                reply.send(None)

    async def _answer(self, reply: Reply[Any], work: Awaitable[Any]) -> None:
        try:
            answer = await work
        except ContractError as error:
            reply.fail(error)
            return
        reply.send(answer)

    # --- live reports ---------------------------------------------------------------------

    async def report(self, record: TelemetryRecord, quota: Decision | None) -> ReportAccepted:
        """Check, commit and publish one live record; return the answer.

        Blocks until committed; raises RateLimitedError when the shared bucket is dry (nothing
        stored), InvalidInputError for a forbidden transition (nothing stored),
        UnavailableError when the database stays unreachable through the retries,
        InternalError when it refuses the data.
        """
        quota = await self._admitted(record.kind, quota)
        at = rules.Moment(utc_now(), trio.current_time())
        plan = rules.plan(self.state, record, backfilled=False, at=at)
        request = rules.write_request([plan])
        result = await self._commit(request)
        inserted = result.inserted[0]
        before = self.state.state
        # A duplicate of the newest record still moves the live state: its first copy may
        # have committed after its sender was told 503 (a database outage mid-batch).
        plan.apply()
        seen = self.state.state
        if isinstance(record, StatusUpdate) and seen is not None and (seen != before or inserted):
            await self._tell_control(StateSeen(seen, self.state.state_accepted_at))
        if inserted and isinstance(record, BatteryUpdate):
            await self._observe_battery(record)
        _count(record.kind, inserted)
        answer = await self._accepted(record, inserted, plan.alert_id, quota)
        if inserted:
            body = record.model_dump(mode="json", exclude={"timestamp"})
            event = ws_events.telemetry_event(
                record.kind, self.vehicle_id, format_timestamp(record.timestamp), body, seq=0
            )
            self._publisher.vehicle_event(self.vehicle_id, event)
            self._publish_alerts(request.alerts)
        return answer

    async def _accepted(
        self, record: TelemetryRecord, inserted: bool, alert_id: str | None, quota: Decision
    ) -> ReportAccepted:
        if isinstance(record, ErrorReport):
            if not inserted:
                alert_id = await self._stored_alert(record)
            return ReportAccepted(
                record.kind,
                record.timestamp,
                utc_now(),
                duplicate=not inserted,
                quota=quota,
                alert_id=alert_id,
                staff_notified=alert_id is not None and await self._publisher.staff_online(),
                unknown_error_code=record.error_code not in self._known_error_codes,
            )
        low_soc = rules.low_battery_soc(record) if isinstance(record, BatteryUpdate) else None
        return ReportAccepted(
            record.kind,
            record.timestamp,
            utc_now(),
            duplicate=not inserted,
            quota=quota,
            low_battery_soc=low_soc,
        )

    async def _stored_alert(self, record: ErrorReport) -> str | None:
        try:
            return await self._store.alert_of_error_report(self.vehicle_id, record.timestamp)
        except StorageUnavailableError:
            raise UnavailableError() from None
        except StorageError as exc:
            raise _refused_by_storage(exc) from exc

    # --- bulk -----------------------------------------------------------------------------

    async def bulk(self, parsed: ParsedBulk, quota: Decision | None) -> BulkAccepted:
        """Commit a whole offline backlog in one transaction; skip what is already stored.

        Raises RateLimitedError when the shared bucket is dry (nothing stored).

        Transition rules are not applied to history; the live state moves only for records
        newer than what the hub holds. Error reports of severity error/critical raise
        alerts marked backfilled.
        """
        quota = await self._admitted("bulk", quota)
        at = rules.Moment(utc_now(), trio.current_time())
        plans = [
            rules.plan(self.state, item.record, backfilled=True, at=at) for item in parsed.messages
        ]
        request = rules.write_request(plans)
        result = await self._commit(request)
        before = (self.state.state, self.state.state_accepted_at)
        for made, inserted in zip(plans, result.inserted, strict=True):
            if inserted:
                made.apply()
        if (
            self.state.state is not None
            and (self.state.state, self.state.state_accepted_at) != before
        ):
            await self._tell_control(StateSeen(self.state.state, self.state.state_accepted_at))
        readings = sorted(
            (
                made.record
                for made, inserted in zip(plans, result.inserted, strict=True)
                if inserted and isinstance(made.record, BatteryUpdate)
            ),
            key=lambda reading: reading.timestamp,
        )
        for reading in readings:
            assert isinstance(reading, BatteryUpdate)
            await self._observe_battery(reading)
        tally = Counter(
            (item.kind, inserted)
            for item, inserted in zip(parsed.messages, result.inserted, strict=True)
        )
        for (kind, inserted), count in tally.items():  # one metric update per kind, not 1,000
            _count(kind, inserted, count)
        self._publish_alerts([alert for alert in request.alerts if result.inserted[alert.source]])
        return BulkAccepted(
            received=len(parsed.messages),
            inserted=result.inserted_count,
            offline_duration_seconds=parsed.offline_duration_seconds,
            quota=quota,
        )

    # --- shared ---------------------------------------------------------------------------

    async def _admitted(self, kind: str, quota: Decision | None) -> Decision:
        """The control task's decision, or — None: the buckets are shared — the shared
        bucket's, taken now (blocks for one Redis round trip, at most 250 ms). Raises the 429
        if that bucket is dry."""
        if quota is not None:
            return quota
        assert self._shared_limits is not None, "no quota and no shared buckets"
        decided = await self._shared_limits.take(kind, self.vehicle_id)
        if not decided.allowed:
            raise decided.refusal()
        return decided

    async def _commit(self, request: WriteRequest) -> WriteResult:
        try:
            return await self._store.commit(request)
        except StorageUnavailableError:
            raise UnavailableError() from None
        except StorageError as exc:
            raise _refused_by_storage(exc) from exc

    def _publish_alerts(self, alerts: list[AlertRow]) -> None:
        for alert in alerts:
            self._publisher.alert(
                ws_events.alert(
                    alert.alert_id,
                    alert.vehicle_id,
                    severity=alert.severity,
                    kind=alert.kind,
                    message=alert.message,
                    timestamp=now_timestamp(),
                    error_code=alert.error_code,
                    backfilled=alert.backfilled,
                )
            )

    async def _observe_battery(self, record: BatteryUpdate) -> None:
        state = self.battery
        cycles = state.cycle_count
        last_day = state.resting_voltage[-1].day if state.resting_voltage else None
        if not battery_health.observe(state, record):
            return
        if self._battery_saves.observed(
            cycles_before=cycles, last_day_before=last_day, state=state, now=trio.current_time()
        ):
            await self._save_battery()

    async def _save_battery(self) -> None:
        """Store the battery accumulators if they changed; a failure is logged and kept unsaved
        (the next reading's SoC drop covers what was not counted)."""
        if not self._battery_saves.unsaved:
            return
        try:
            await self._store.save_battery_health(self.battery)
        except StorageError as exc:
            logger.warning("battery health of %s not saved: %s", self.vehicle_id, exc)
            return
        self._battery_saves.saved(trio.current_time())


def _refused_by_storage(exc: StorageError) -> InternalError:
    """A storage error that is not an outage: the data was refused — a bug, logged as one."""
    logger.error("the database refused a validated report: %s", exc)
    return InternalError("The report could not be stored; quote the request id to support")


def _count(kind: str, inserted: bool, count: int = 1) -> None:
    counter = metrics.telemetry_ingested if inserted else metrics.telemetry_duplicates
    counter.labels(kind).inc(count)
