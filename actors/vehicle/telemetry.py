"""Accepting vehicle reports: order per vehicle, transition rules, alerts, durable commit.

:class:`TelemetryService` is called from each VehicleActor's telemetry lane, whatever the
report came by (REST or the vehicle socket). That lane takes one report at a time, so
per-vehicle order is the order of arrival and a transition is always checked against the
previous accepted report (the vehicle state's lock, still taken, is never contended).
A report answers only after its row is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import trio

from actors.alerts import rules as alert_rules
from actors.rate_limit import Decision, RateLimiter
from actors.vehicle import rows as telemetry_rows
from actors.vehicle.battery_health import BatteryHealthService
from actors.vehicle.registry import VehicleRegistry, VehicleState
from actors.vehicle.rows import TelemetryRecord
from actors.vehicle.transitions import check_phase_transition, check_state_transition
from hub import metrics
from hub.clock import format_timestamp, now_timestamp, utc_now
from hub.contract import ws_events
from hub.contract.bulk import BulkItem, ParsedBulk
from hub.contract.telemetry import (
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    StatusUpdate,
)
from hub.errors import RateLimitedError, service_unavailable
from storage.database import Database, StorageUnavailableError
from storage.queries import vehicles as vehicle_queries
from storage.writer import AlertRow, TelemetryRow, Writer, WriteRequest, WriteResult

LOW_BATTERY_ADVICE = 30.0


@dataclass(frozen=True, slots=True)
class Accepted:
    """A committed report: the answer, its rate-limit headers, and what frontends should see.

    ``events`` are the telemetry events of newly stored live records (none for duplicates or
    bulk history); ``alerts`` the alert frames raised. Both carry ``seq`` 0 until the Router
    numbers them.
    """

    body: dict[str, Any]
    headers: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Plan:
    """What accepting one record means: its row, the alerts it raises, the state change."""

    row: TelemetryRow
    alerts: list[alert_rules.AlertDraft]
    apply: Callable[[], None]


class TelemetryService:
    """Validated records in, committed rows and answers out."""

    def __init__(
        self,
        *,
        registry: VehicleRegistry,
        writer: Writer,
        database: Database,
        limiter: RateLimiter,
        known_error_codes: set[str],
        battery_health: BatteryHealthService | None = None,
        staff_online: Callable[[], bool] = lambda: False,
    ) -> None:
        self._battery_health = battery_health
        self._staff_online = staff_online
        self._registry = registry
        self._writer = writer
        self._database = database
        self._limiter = limiter
        self.known_error_codes = known_error_codes

    def current_state(self, vehicle_id: str) -> str | None:
        """The vehicle's last accepted state if the hub holds one (no database access)."""
        state = self._registry.peek(vehicle_id)
        return None if state is None else state.known_state(trio.current_time())

    def admit(self, vehicle_id: str, kind: str) -> Decision:
        """Check the vehicle exists (404) and spend a token of ``kind`` (429)."""
        self._registry.require(vehicle_id)
        decision = self._limiter.take(kind, vehicle_id)
        if not decision.allowed:
            raise RateLimitedError(decision.retry_after, decision.headers())
        return decision

    async def report(
        self, vehicle_id: str, record: TelemetryRecord, decision: Decision
    ) -> Accepted:
        """Check, commit and answer one live report.

        Blocks until committed; raises ContractError (400 transition errors, 503 when the
        database stays unreachable through the retries).
        """
        state = await self._registry.state_of(vehicle_id)
        async with state.lock:
            plan = self._plan(state, record, backfilled=False)
            alert_id = alert_rules.new_alert_id() if plan.alerts else None
            if isinstance(record, ErrorReport):
                plan.row.values["alert_id"] = alert_id
            request = self._request([(plan, alert_id)])
            result = await self._commit(request)
            inserted = result.inserted[0]
            # A duplicate of the newest record still moves the live state: its first copy may
            # have committed after its sender was told 503 (a database outage mid-batch).
            plan.apply()
            if inserted and isinstance(record, BatteryUpdate) and self._battery_health is not None:
                await self._battery_health.observe(vehicle_id, record)
        self._count(record.kind, inserted)
        body = await self._answer(vehicle_id, record, inserted, alert_id)
        if not inserted:
            return Accepted(body, decision.headers())
        event = ws_events.telemetry_event(
            record.kind,
            vehicle_id,
            format_timestamp(record.timestamp),
            record.model_dump(mode="json", exclude={"timestamp"}),
            seq=0,
        )
        return Accepted(body, decision.headers(), [event], _alert_frames(request.alerts))

    async def bulk(self, vehicle_id: str, parsed: ParsedBulk, decision: Decision) -> Accepted:
        """Commit a whole offline backlog in one transaction; skip what is already stored.

        Transition rules are not applied to history; the live state moves only for records
        newer than what the hub holds. Error reports of severity error/critical raise
        alerts marked backfilled.
        """
        state = await self._registry.state_of(vehicle_id)
        async with state.lock:
            plans = [self._bulk_plan(state, item) for item in parsed.messages]
            request = self._request(plans)
            result = await self._commit(request)
            for (plan, _), inserted in zip(plans, result.inserted, strict=True):
                if inserted:
                    plan.apply()
            if self._battery_health is not None:
                readings = sorted(
                    (
                        item.record
                        for item, inserted in zip(parsed.messages, result.inserted, strict=True)
                        if inserted and isinstance(item.record, BatteryUpdate)
                    ),
                    key=lambda reading: reading.timestamp,
                )
                for reading in readings:
                    await self._battery_health.observe(vehicle_id, reading)
        for item, inserted in zip(parsed.messages, result.inserted, strict=True):
            self._count(item.kind, inserted)
        raised = [alert for alert in request.alerts if result.inserted[alert.source]]
        body = {
            "status": "ok",
            "messages_received": len(parsed.messages),
            "messages_processed": len(parsed.messages),
            "inserted": result.inserted_count,
            "skipped_duplicates": len(parsed.messages) - result.inserted_count,
            "offline_duration_seconds": parsed.offline_duration_seconds,
        }
        return Accepted(body, decision.headers(), [], _alert_frames(raised))

    def _count(self, kind: str, inserted: bool) -> None:
        (metrics.telemetry_ingested if inserted else metrics.telemetry_duplicates).labels(
            kind
        ).inc()

    def _bulk_plan(self, state: VehicleState, item: BulkItem) -> tuple[_Plan, str | None]:
        plan = self._plan(state, item.record, backfilled=True)
        alert_id = alert_rules.new_alert_id() if plan.alerts else None
        if isinstance(item.record, ErrorReport):
            plan.row.values["alert_id"] = alert_id
        return plan, alert_id

    def _request(self, plans: list[tuple[_Plan, str | None]]) -> WriteRequest:
        request = WriteRequest(rows=[plan.row for plan, _ in plans])
        for index, (plan, alert_id) in enumerate(plans):
            for position, draft in enumerate(plan.alerts):
                row = plan.row
                request.alerts.append(
                    AlertRow(
                        alert_id=alert_id
                        if position == 0 and alert_id
                        else alert_rules.new_alert_id(),
                        vehicle_id=row.vehicle_id,
                        kind=draft.kind,
                        severity=draft.severity,
                        error_code=draft.error_code,
                        message=draft.message,
                        details={"timestamp": format_timestamp(row.timestamp)},
                        backfilled=bool(row.values.get("backfilled", False)),
                        source=index,
                    )
                )
        return request

    async def _commit(self, request: WriteRequest) -> WriteResult:
        try:
            return await self._writer.write(request)
        except StorageUnavailableError:
            raise service_unavailable() from None

    # --- per-kind rules -------------------------------------------------------------

    def _plan(self, state: VehicleState, record: TelemetryRecord, *, backfilled: bool) -> _Plan:
        vehicle_id = state.vehicle_id
        match record:
            case LocationUpdate():
                return _Plan(telemetry_rows.location_row(vehicle_id, record), [], _nothing)
            case StatusUpdate():
                return self._status_plan(state, record, backfilled=backfilled)
            case BatteryUpdate():
                return self._battery_plan(state, record, backfilled=backfilled)
            case ErrorReport():
                draft = alert_rules.for_error_report(
                    record.error_code, record.severity, record.description
                )
                row = telemetry_rows.error_row(
                    vehicle_id, record, alert_id=None, backfilled=backfilled
                )
                return _Plan(row, [draft] if draft else [], _nothing)
            case DockingUpdate():
                return self._docking_plan(state, record, backfilled=backfilled)
        raise AssertionError(f"unknown record {record!r}")

    def _status_plan(self, state: VehicleState, record: StatusUpdate, *, backfilled: bool) -> _Plan:
        now = trio.current_time()
        is_newest = state.state_timestamp is None or record.timestamp > state.state_timestamp
        current = state.known_state(now)
        if not backfilled and is_newest:
            check_state_transition(current, record.state, before_stop=state.state_before_stop)
        drafts: list[alert_rules.AlertDraft] = []
        if is_newest and not backfilled:
            draft = alert_rules.for_state_change(current, record.state)
            if draft:
                drafts.append(draft)

        def apply() -> None:
            # Re-checked here: an earlier record of the same bulk may have moved the state on.
            if state.state_timestamp is not None and record.timestamp <= state.state_timestamp:
                return
            if record.state == "emergency_stop" and state.state != "emergency_stop":
                state.state_before_stop = state.state
            elif record.state != "emergency_stop":
                state.state_before_stop = None
            state.state = record.state
            state.state_timestamp = record.timestamp
            state.state_accepted_at = _accepted_at(record.timestamp) if backfilled else now
            state.mission_id = record.mission_id

        return _Plan(telemetry_rows.status_row(state.vehicle_id, record), drafts, apply)

    def _battery_plan(
        self, state: VehicleState, record: BatteryUpdate, *, backfilled: bool
    ) -> _Plan:
        is_newest = state.battery_timestamp is None or record.timestamp > state.battery_timestamp
        soc = record.battery.soc_percent
        drafts: list[alert_rules.AlertDraft] = []
        if is_newest and not backfilled:
            draft = alert_rules.for_battery(state.battery_band, soc)
            if draft:
                drafts.append(draft)

        def apply() -> None:
            if state.battery_timestamp is None or record.timestamp > state.battery_timestamp:
                state.battery_band = alert_rules.battery_band(soc)
                state.battery_timestamp = record.timestamp

        return _Plan(telemetry_rows.battery_row(state.vehicle_id, record), drafts, apply)

    def _docking_plan(
        self, state: VehicleState, record: DockingUpdate, *, backfilled: bool
    ) -> _Plan:
        is_newest = state.docking_timestamp is None or record.timestamp > state.docking_timestamp
        if is_newest and not backfilled:
            check_phase_transition(state.docking_phase, record.phase)

        def apply() -> None:
            if state.docking_timestamp is None or record.timestamp > state.docking_timestamp:
                state.docking_phase = record.phase
                state.docking_timestamp = record.timestamp

        row = telemetry_rows.docking_row(state.vehicle_id, record, mission_id=state.mission_id)
        return _Plan(row, [], apply)

    # --- answers --------------------------------------------------------------------

    async def _answer(
        self, vehicle_id: str, record: TelemetryRecord, inserted: bool, alert_id: str | None
    ) -> dict[str, Any]:
        received_at = now_timestamp()
        if isinstance(record, ErrorReport):
            if not inserted:
                alert_id = await self._stored_alert(vehicle_id, record.timestamp)
            body: dict[str, Any] = {
                "status": "acknowledged",
                "received_at": received_at,
                "alert_id": alert_id,
                "action": "alert_staff" if alert_id else "logged",
                "staff_notified": alert_id is not None and self._staff_online(),
            }
            if record.error_code not in self.known_error_codes:
                body["warning"] = "unknown_error_code"
        else:
            body = {"status": "ok", "received_at": received_at}
        if isinstance(record, BatteryUpdate):
            battery = record.battery
            if battery.soc_percent < LOW_BATTERY_ADVICE and not battery.charging:
                body["warning"] = "low_battery"
                body["message"] = (
                    f"Battery at {battery.soc_percent:.1f} %, below {LOW_BATTERY_ADVICE:.0f} %"
                )
                body["recommended_action"] = "return_to_base"
            else:
                body["warning"] = None
        if not inserted:
            body["duplicate"] = True
        return body

    async def _stored_alert(self, vehicle_id: str, timestamp: datetime) -> str | None:
        try:
            return await vehicle_queries.alert_for_error(self._database, vehicle_id, timestamp)
        except StorageUnavailableError:
            raise service_unavailable() from None


def _alert_frames(alerts: list[AlertRow]) -> list[dict[str, Any]]:
    return [
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
        for alert in alerts
    ]


def _nothing() -> None:
    return None


def _accepted_at(timestamp: datetime) -> float:
    """The trio time at which a record with this wall-clock timestamp was current."""
    age = (utc_now() - timestamp) / timedelta(seconds=1)
    return trio.current_time() - max(0.0, age)
