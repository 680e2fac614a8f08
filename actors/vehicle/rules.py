"""What accepting one telemetry record means (CONTRACT §3, §7): pure functions, no I/O.

:func:`plan` checks a record against the vehicle's :class:`~actors.vehicle.state.VehicleState`
(transition rules for live status and docking reports), and returns a :class:`Plan`: the row
to store, the alerts the record raises, and how the state moves once the row is committed.
Nothing changes until the caller applies the plan after the commit, so a report refused by
the database leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from actors.alerts import rules as alert_rules
from actors.vehicle import rows
from actors.vehicle.state import VehicleState, accepted_at
from actors.vehicle.transitions import check_phase_transition, check_state_transition
from hub.clock import format_timestamp
from hub.contract.telemetry import (
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    StatusUpdate,
    TelemetryRecord,
)
from storage.writer import AlertRow, TelemetryRow, WriteRequest

LOW_BATTERY_ADVICE = 30.0
"""Below this state of charge, while not charging, the answer advises returning to base."""


@dataclass(frozen=True, slots=True)
class Moment:
    """The two clocks a plan reads: the wall clock (record ages) and trio's (state memory)."""

    wall: datetime
    trio: float


@dataclass(slots=True)
class Plan:
    """One record's row, the alerts it raises (first: ``alert_id``), and the state change."""

    record: TelemetryRecord
    row: TelemetryRow
    alerts: list[alert_rules.AlertDraft]
    apply: Callable[[], None]
    alert_id: str | None = None
    alert_ids: list[str] = field(default_factory=list)


def plan(state: VehicleState, record: TelemetryRecord, *, backfilled: bool, at: Moment) -> Plan:
    """The plan for one record; raises InvalidInputError for a forbidden live transition.

    Bulk records (``backfilled``) skip the transition rules and raise only error-report alerts.
    """
    match record:
        case LocationUpdate():
            made = Plan(record, rows.location_row(state.vehicle_id, record), [], _nothing)
        case StatusUpdate():
            made = _status_plan(state, record, backfilled=backfilled, at=at)
        case BatteryUpdate():
            made = _battery_plan(state, record, backfilled=backfilled)
        case ErrorReport():
            draft = alert_rules.for_error_report(
                record.error_code, record.severity, record.description
            )
            row = rows.error_row(state.vehicle_id, record, alert_id=None, backfilled=backfilled)
            made = Plan(record, row, [draft] if draft else [], _nothing)
        case DockingUpdate():
            made = _docking_plan(state, record, backfilled=backfilled)
    made.alert_ids = [alert_rules.new_alert_id() for _ in made.alerts]
    made.alert_id = made.alert_ids[0] if made.alert_ids else None
    if isinstance(record, ErrorReport):
        made.row.values["alert_id"] = made.alert_id
    return made


def write_request(plans: Sequence[Plan]) -> WriteRequest:
    """The rows of ``plans`` and the alerts they raise, to commit together."""
    request = WriteRequest(rows=[made.row for made in plans])
    for index, made in enumerate(plans):
        row = made.row
        for draft, alert_id in zip(made.alerts, made.alert_ids, strict=True):
            request.alerts.append(
                AlertRow(
                    alert_id=alert_id,
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


def low_battery_soc(record: BatteryUpdate) -> float | None:
    """The state of charge when it is low enough to advise returning to base, else None."""
    battery = record.battery
    if battery.soc_percent < LOW_BATTERY_ADVICE and not battery.charging:
        return battery.soc_percent
    return None


def _status_plan(
    state: VehicleState, record: StatusUpdate, *, backfilled: bool, at: Moment
) -> Plan:
    is_newest = state.state_timestamp is None or record.timestamp > state.state_timestamp
    current = state.known_state(at.trio)
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
        state.state_accepted_at = (
            accepted_at(record.timestamp, wall_now=at.wall, now=at.trio) if backfilled else at.trio
        )
        state.mission_id = record.mission_id

    return Plan(record, rows.status_row(state.vehicle_id, record), drafts, apply)


def _battery_plan(state: VehicleState, record: BatteryUpdate, *, backfilled: bool) -> Plan:
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

    return Plan(record, rows.battery_row(state.vehicle_id, record), drafts, apply)


def _docking_plan(state: VehicleState, record: DockingUpdate, *, backfilled: bool) -> Plan:
    is_newest = state.docking_timestamp is None or record.timestamp > state.docking_timestamp
    if is_newest and not backfilled:
        check_phase_transition(state.docking_phase, record.phase)

    def apply() -> None:
        if state.docking_timestamp is None or record.timestamp > state.docking_timestamp:
            state.docking_phase = record.phase
            state.docking_timestamp = record.timestamp

    row = rows.docking_row(state.vehicle_id, record, mission_id=state.mission_id)
    return Plan(record, row, [], apply)


def _nothing() -> None:
    return None
