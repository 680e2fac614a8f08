"""Battery health accumulators (TVM-API-BAT-003): equivalent full cycles and the
resting-voltage trend, and when a vehicle's telemetry lane saves them (on ``autojump_clock``,
with an in-memory store).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import trio
import trio.testing

from actors.rate_limit import Decision
from actors.vehicle.battery_health import (
    BatteryHealthState,
    DailyVoltage,
    SaveSchedule,
    observe,
    state_from_row,
    stored_samples,
    voltage_trend,
)
from actors.vehicle.messages import ReportAccepted, StateSeen
from actors.vehicle.telemetry import LaneFlush, LaneHealth, LaneJob, LaneReport, TelemetryLane
from api.bodies.reads import battery_health_body
from hub.contract.telemetry import Battery, BatteryUpdate
from hub.runtime import Reply
from storage.database import StorageUnavailableError
from tests.unit.fakes import MemoryVehicleStore, RecordingPublisher

START = datetime(2025, 12, 16, 8, 0, tzinfo=UTC)
HANG_GUARD = 3600.0  # virtual seconds


def reading(
    minutes: float,
    soc: float,
    *,
    charging: bool = False,
    current: float = -8.0,
    voltage: float = 52.0,
) -> BatteryUpdate:
    return BatteryUpdate(
        timestamp=START + timedelta(minutes=minutes),
        battery=Battery(
            soc_percent=soc,
            voltage=voltage,
            current=current,
            temperature=30.0,
            charging=charging,
        ),
    )


def feed(state: BatteryHealthState, readings: list[BatteryUpdate]) -> None:
    for item in readings:
        observe(state, item)


def test_a_full_discharge_is_one_cycle() -> None:
    state = BatteryHealthState("wheelchair_001")
    feed(state, [reading(minute, 100.0 - minute) for minute in range(101)])
    assert state.discharge_accumulated_percent == pytest.approx(100.0)
    assert state.cycle_count == 1


def test_partial_discharges_between_charges_add_up_to_cycles() -> None:
    state = BatteryHealthState("wheelchair_001")
    minute = 0.0
    for _ in range(5):  # five days of 90 → 30 %, then a charge back to 90 %
        for soc in (90.0, 70.0, 50.0, 30.0):
            feed(state, [reading(minute, soc)])
            minute += 10
        for soc in (40.0, 60.0, 80.0, 90.0):
            feed(state, [reading(minute, soc, charging=True, current=20.0)])
            minute += 10
    assert state.discharge_accumulated_percent == pytest.approx(300.0)
    assert state.cycle_count == 3
    assert state.last_charging is True


def test_charging_and_a_dip_while_plugged_in_are_not_discharge() -> None:
    state = BatteryHealthState("wheelchair_001")
    feed(
        state,
        [
            reading(0, 50.0, charging=True, current=10.0),
            reading(1, 49.0, charging=True, current=-2.0),  # load above the charger's output
            reading(2, 70.0, charging=True, current=10.0),
            reading(3, 65.0),
        ],
    )
    assert state.discharge_accumulated_percent == pytest.approx(5.0)


def test_gauge_jitter_is_not_counted_as_cycling() -> None:
    state = BatteryHealthState("wheelchair_001")
    readings = [reading(minute, 79.6 if minute % 2 else 80.0) for minute in range(200)]
    feed(state, readings)
    # 200 readings bouncing by 0.4 %: only the first dip counts, not 100 of them.
    assert state.discharge_accumulated_percent == pytest.approx(0.4)


def test_missing_readings_lose_no_discharge() -> None:
    every_minute = BatteryHealthState("a")
    feed(every_minute, [reading(minute, 90.0 - minute) for minute in range(51)])
    sparse = BatteryHealthState("b")
    feed(sparse, [reading(0, 90.0), reading(7, 83.0), reading(50, 40.0)])
    assert sparse.discharge_accumulated_percent == pytest.approx(50.0)
    assert every_minute.discharge_accumulated_percent == pytest.approx(50.0)


def test_resends_and_older_readings_change_nothing() -> None:
    state = BatteryHealthState("wheelchair_001")
    assert observe(state, reading(10, 80.0)) is True
    assert observe(state, reading(20, 70.0)) is True
    before = (state.discharge_accumulated_percent, state.last_soc, state.updated_at)
    assert observe(state, reading(20, 70.0)) is False  # a resend
    assert observe(state, reading(15, 20.0)) is False  # a backlog older than what counted
    assert (state.discharge_accumulated_percent, state.last_soc, state.updated_at) == before
    assert state.updated_at == START + timedelta(minutes=20)


def test_resting_voltage_is_sampled_only_at_rest_and_averaged_per_day() -> None:
    state = BatteryHealthState("wheelchair_001")
    feed(
        state,
        [
            reading(0, 90.0, current=-0.5, voltage=52.0),  # at rest
            reading(1, 90.0, current=0.9, voltage=52.4),  # at rest
            reading(2, 89.0, current=-8.0, voltage=50.0),  # driving: ignored
            reading(3, 89.0, current=0.2, voltage=53.5, charging=True),  # charging: ignored
            reading(24 * 60, 88.0, current=0.0, voltage=51.9),  # next day
        ],
    )
    first, second = state.resting_voltage
    assert (first.day, first.count) == (date(2025, 12, 16), 2)
    assert first.volts == pytest.approx(52.2)
    assert second == DailyVoltage(date(2025, 12, 17), 51.9, 1)


def test_trend_is_the_least_squares_slope_in_volts_per_day() -> None:
    samples = [
        DailyVoltage(date(2025, 1, 1) + timedelta(days=day), 52.0 - 0.01 * day, 3)
        for day in (0, 1, 2, 5, 9)  # days without rest readings are simply missing
    ]
    assert voltage_trend(samples) == pytest.approx(-0.01)
    assert voltage_trend(samples[:1]) is None
    assert voltage_trend([]) is None


def test_only_the_last_90_days_of_resting_voltage_are_kept() -> None:
    state = BatteryHealthState("wheelchair_001")
    for day in range(120):
        observe(state, reading(day * 24 * 60, 80.0, current=0.0, voltage=52.0))
    days = [sample.day for sample in state.resting_voltage]
    assert len(days) == 90
    assert days[-1] - days[0] == timedelta(days=89)
    assert days[-1] == (START + timedelta(days=119)).date()


def test_health_body_and_row_round_trip() -> None:
    state = BatteryHealthState("wheelchair_001")
    feed(
        state,
        [
            reading(0, 100.0, current=0.0, voltage=52.6),
            reading(60, 0.0),
            reading(120, 100.0, charging=True, current=30.0),
            reading(24 * 60, 75.0, current=0.5, voltage=52.5),
        ],
    )
    body = battery_health_body(state)
    assert body == {
        "vehicle_id": "wheelchair_001",
        "cycle_count": 1,
        "discharge_accumulated_percent": 125.0,
        "resting_voltage": {
            "samples": [
                {"date": "2025-12-16", "volts": 52.6},
                {"date": "2025-12-17", "volts": 52.5},
            ],
            "trend_volts_per_day": pytest.approx(-0.1),
        },
        "updated_at": "2025-12-17T08:00:00.000Z",
    }
    samples = stored_samples(state)
    assert samples == [
        {"date": sample.day.isoformat(), "volts": sample.volts, "count": sample.count}
        for sample in state.resting_voltage
    ]
    row = {
        "discharge_accumulated_percent": state.discharge_accumulated_percent,
        "last_soc": state.last_soc,
        "last_charging": state.last_charging,
        "resting_voltage_samples": json.dumps(samples),
        "updated_at": state.updated_at,
    }
    assert state_from_row("wheelchair_001", row) == state


def test_a_vehicle_without_readings_has_an_empty_health() -> None:
    assert state_from_row("wheelchair_009", None) == BatteryHealthState("wheelchair_009")
    assert battery_health_body(BatteryHealthState("wheelchair_009")) == {
        "vehicle_id": "wheelchair_009",
        "cycle_count": 0,
        "discharge_accumulated_percent": 0.0,
        "resting_voltage": {"samples": [], "trend_volts_per_day": None},
        "updated_at": None,
    }


QUOTA = Decision(allowed=True, limit=2, remaining=1, reset_epoch=0, retry_after=1)


@dataclass
class Lane:
    """A vehicle's telemetry lane serving jobs as its actor hands them over."""

    lane: TelemetryLane
    store: MemoryVehicleStore
    jobs: trio.MemorySendChannel[LaneJob]
    start: float

    async def report(self, record: BatteryUpdate) -> ReportAccepted:
        reply: Reply[ReportAccepted] = Reply()
        await self.jobs.send(LaneReport(record, QUOTA, None, reply))
        return await reply.wait()

    async def flush(self) -> None:
        reply: Reply[None] = Reply()
        await self.jobs.send(LaneFlush(reply))
        await reply.wait()

    async def health(self) -> BatteryHealthState:
        reply: Reply[BatteryHealthState] = Reply()
        await self.jobs.send(LaneHealth(reply))
        return await reply.wait()

    def save_times(self) -> list[float]:
        return [saved.at - self.start for saved in self.store.battery_saves]


@asynccontextmanager
async def open_lane(
    store: MemoryVehicleStore, *, save_interval: float = 60.0
) -> AsyncIterator[Lane]:
    async def tell_control(message: StateSeen) -> None:
        raise AssertionError(f"a battery reading told the control task {message}")

    lane = TelemetryLane(
        "v1",
        store=store,
        publisher=RecordingPublisher(),
        known_error_codes=(),
        tell_control=tell_control,
        save_interval=save_interval,
    )
    send, receive = trio.open_memory_channel[LaneJob](10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lane.serve, receive)
        yield Lane(lane, store, send, trio.current_time())
        nursery.cancel_scope.cancel()


async def test_the_lane_saves_at_most_once_a_minute_and_at_once_on_a_new_cycle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryVehicleStore()
    with trio.fail_after(HANG_GUARD):
        async with open_lane(store) as lane:
            await lane.report(reading(0, 100.0))  # first reading: saved at once
            for step in range(1, 24):  # one reading every 5 s, 1 % each
                await trio.sleep(5)
                await lane.report(reading(step / 12, 100.0 - step))
            await trio.sleep(5)
            await lane.report(reading(2, 0.0))  # completes a cycle: saved at once
            await lane.report(reading(2.01, 0.0))  # unchanged level: waits
            await lane.flush()
    assert lane.save_times() == [0.0, 60.0, 120.0, 120.0]
    assert [saved.value.cycle_count for saved in store.battery_saves] == [0, 0, 1, 1]
    assert store.battery_saves[-1].value.updated_at == START + timedelta(minutes=2.01)


async def test_the_lane_saves_a_completed_cycle_before_the_minute_is_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryVehicleStore()
    with trio.fail_after(HANG_GUARD):
        async with open_lane(store) as lane:
            await lane.report(reading(0, 100.0))
            await trio.sleep(10)
            await lane.report(reading(1, 50.0))  # half a cycle, 10 s after a save: waits
            await trio.sleep(10)
            await lane.report(reading(2, 0.0))  # the cycle completes at 20 s: saved now
            await trio.sleep(10)
            await lane.report(reading(3, 0.0))  # nothing new but the time: waits
    assert lane.save_times() == [0.0, 20.0]
    assert [saved.value.cycle_count for saved in store.battery_saves] == [0, 1]


async def test_the_lane_survives_a_database_outage(autojump_clock: trio.testing.MockClock) -> None:
    store = MemoryVehicleStore()
    store.fail_next("save_battery_health", 2, StorageUnavailableError("connection refused"))
    with trio.fail_after(HANG_GUARD):
        async with open_lane(store) as lane:
            await lane.report(reading(0, 90.0))  # save fails: logged, the report still answered
            await lane.report(reading(1, 80.0))  # fails again
            await lane.flush()
            health = await lane.health()
    assert len(store.calls_of("save_battery_health")) == 3
    [saved] = store.battery_saves
    assert saved.value.discharge_accumulated_percent == pytest.approx(10.0)
    assert battery_health_body(health)["discharge_accumulated_percent"] == 10.0


async def test_a_resent_reading_is_not_counted_twice_by_the_lane(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryVehicleStore()
    with trio.fail_after(HANG_GUARD):
        async with open_lane(store) as lane:
            await lane.report(reading(0, 90.0))
            first = await lane.report(reading(1, 80.0))
            again = await lane.report(reading(1, 80.0))
            health = await lane.health()
    assert (first.duplicate, again.duplicate) == (False, True)
    assert health.discharge_accumulated_percent == pytest.approx(10.0)


# --- SaveSchedule: when a changed state is saved ------------------------------------------


def counted(
    state: BatteryHealthState, schedule: SaveSchedule, item: BatteryUpdate, now: float
) -> bool:
    """Count a reading as the lane does; whether the schedule says to save now."""
    cycles = state.cycle_count
    last_day = state.resting_voltage[-1].day if state.resting_voltage else None
    assert observe(state, item)
    return schedule.observed(cycles_before=cycles, last_day_before=last_day, state=state, now=now)


def test_a_state_never_saved_is_saved_at_once() -> None:
    schedule = SaveSchedule(interval=60.0)
    assert (schedule.saved_at, schedule.unsaved) == (-math.inf, False)
    assert counted(BatteryHealthState("v1"), schedule, reading(0, 90.0), now=5.0)
    assert schedule.unsaved


@pytest.mark.parametrize(("seconds", "due"), [(59.999, False), (60.0, True), (61.0, True)])
def test_a_changed_state_waits_until_the_interval_is_up(seconds: float, due: bool) -> None:
    state, schedule = BatteryHealthState("v1"), SaveSchedule(interval=60.0)
    counted(state, schedule, reading(0, 90.0), now=0.0)
    schedule.saved(0.0)
    assert not schedule.unsaved
    assert counted(state, schedule, reading(1, 89.0), now=seconds) is due
    assert schedule.unsaved


def test_a_completed_cycle_or_a_new_resting_day_is_saved_at_once() -> None:
    state, schedule = BatteryHealthState("v1"), SaveSchedule(interval=60.0)
    counted(state, schedule, reading(0, 100.0, current=0.0), now=0.0)  # day 1 at rest
    schedule.saved(0.0)
    assert counted(state, schedule, reading(1, 60.0), now=1.0) is False
    assert counted(state, schedule, reading(2, 0.0), now=2.0) is True  # cycle 1 completes
    schedule.saved(2.0)
    assert counted(state, schedule, reading(3, 0.0, current=0.0), now=3.0) is False  # same day
    assert counted(state, schedule, reading(24 * 60, 0.0, current=0.0), now=4.0) is True
