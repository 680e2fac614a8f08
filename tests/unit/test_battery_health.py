"""Battery health accumulators (TVM-API-BAT-003): equivalent full cycles and the
resting-voltage trend, and when the service saves them (on ``autojump_clock``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import trio
import trio.testing

from actors.vehicle.battery_health import (
    BatteryHealthService,
    BatteryHealthState,
    DailyVoltage,
    health_body,
    observe,
    state_from_row,
    voltage_trend,
)
from hub.contract.telemetry import Battery, BatteryUpdate
from storage.database import StorageUnavailableError
from storage.queries import battery_health as health_queries

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
    body = health_body("wheelchair_001", state)
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
    row = {
        "discharge_accumulated_percent": state.discharge_accumulated_percent,
        "last_soc": state.last_soc,
        "last_charging": state.last_charging,
        "resting_voltage_samples": json.dumps(
            [
                {"date": sample.day.isoformat(), "volts": sample.volts, "count": sample.count}
                for sample in state.resting_voltage
            ]
        ),
        "updated_at": state.updated_at,
    }
    assert state_from_row("wheelchair_001", row) == state


def test_a_vehicle_without_readings_has_an_empty_health() -> None:
    assert health_body("wheelchair_009", None) == {
        "vehicle_id": "wheelchair_009",
        "cycle_count": 0,
        "discharge_accumulated_percent": 0.0,
        "resting_voltage": {"samples": [], "trend_volts_per_day": None},
        "updated_at": None,
    }


class FakeHealthTable:
    """Stands in for storage.queries.battery_health: records saves, can fail."""

    def __init__(self) -> None:
        self.saves: list[tuple[float, dict[str, Any]]] = []
        self.fail = False

    async def load(self, database: object, vehicle_id: str) -> None:
        return None

    async def save(self, database: object, **values: Any) -> bool:
        if self.fail:
            raise StorageUnavailableError("connection refused")
        self.saves.append((trio.current_time(), values))
        return True


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> FakeHealthTable:
    fake = FakeHealthTable()
    monkeypatch.setattr(health_queries, "load", fake.load)
    monkeypatch.setattr(health_queries, "save", fake.save)
    return fake


async def test_service_saves_at_most_once_a_minute_and_at_once_on_a_new_cycle(
    autojump_clock: trio.testing.MockClock, table: FakeHealthTable
) -> None:
    database: Any = None
    service = BatteryHealthService(database, save_interval=60.0)
    begin = trio.current_time()
    with trio.fail_after(HANG_GUARD):
        await service.observe("v1", reading(0, 100.0))  # first reading: saved at once
        for step in range(1, 24):  # one reading every 5 s, 1 % each
            await trio.sleep(5)
            await service.observe("v1", reading(step / 12, 100.0 - step))
        await trio.sleep(5)
        await service.observe("v1", reading(2, 0.0))  # completes a cycle: saved at once
        await service.observe("v1", reading(2.01, 0.0))  # unchanged level: waits
        await service.flush()
    times = [moment - begin for moment, _ in table.saves]
    assert times == [0.0, 60.0, 120.0, 120.0]
    assert [values["cycle_count"] for _, values in table.saves] == [0, 0, 1, 1]
    assert table.saves[-1][1]["updated_at"] == START + timedelta(minutes=2.01)


async def test_service_survives_a_database_outage(
    autojump_clock: trio.testing.MockClock, table: FakeHealthTable
) -> None:
    database: Any = None
    service = BatteryHealthService(database, save_interval=60.0)
    with trio.fail_after(HANG_GUARD):
        table.fail = True
        await service.observe("v1", reading(0, 90.0))  # save fails: logged, not raised
        await service.observe("v1", reading(1, 80.0))
        table.fail = False
        await service.flush()
    assert len(table.saves) == 1
    assert table.saves[0][1]["discharge_accumulated_percent"] == pytest.approx(10.0)
    assert (await service.health("v1"))["discharge_accumulated_percent"] == 10.0
