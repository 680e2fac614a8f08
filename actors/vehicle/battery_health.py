"""Battery health per vehicle (TVM-API-BAT-003, CONTRACT §3): charge cycles and the
resting-voltage trend, accumulated from battery readings after they are committed.

**Cycles** are *equivalent full cycles*: every 100 percentage points of state of charge
discharged count as one cycle (``cycle_count = floor(discharge_accumulated_percent / 100)``;
``discharge_accumulated_percent`` is the lifetime total). Discharge is the drop in SoC from
one reading to the next, counted when the newer reading is not charging. The reference level
a drop is measured from follows the SoC down always, and up only while charging or on a rise
of at least :data:`SOC_NOISE_PERCENT` — so a gauge that jitters by a few tenths is not
counted as cycling. Missing readings lose nothing: the next reading's drop covers the gap
(only a complete charge hidden inside a gap goes unseen). Readings are taken in timestamp
order; one not newer than the last counted (a resend, or a backlog arriving after newer live
readings) is ignored.

**Resting voltage** is the pack voltage while ``|current| <`` :data:`REST_CURRENT_AMPS` and
not charging, averaged per UTC day over the last :data:`RESTING_WINDOW_DAYS` days with
readings; the trend is the least-squares slope of those daily averages in volts per day
(``None`` until there are two days). A falling trend at rest means the pack is wearing.

``updated_at`` is the timestamp of the newest reading counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from hub.contract.telemetry import BatteryUpdate

CYCLE_PERCENT = 100.0
SOC_NOISE_PERCENT = 1.0
"""A rise in SoC smaller than this while not charging is treated as gauge noise."""
REST_CURRENT_AMPS = 1.0
RESTING_WINDOW_DAYS = 90
SAVE_INTERVAL = 60.0
"""Seconds (trio clock): the longest a changed state stays unsaved while readings arrive."""


@dataclass(slots=True)
class DailyVoltage:
    """The mean resting voltage of one UTC day and how many readings it averages."""

    day: date
    volts: float
    count: int


@dataclass(slots=True)
class BatteryHealthState:
    """One vehicle's accumulators (see the module doc for their meaning)."""

    vehicle_id: str
    discharge_accumulated_percent: float = 0.0
    last_soc: float | None = None
    last_charging: bool | None = None
    resting_voltage: list[DailyVoltage] = field(default_factory=list)
    updated_at: datetime | None = None

    @property
    def cycle_count(self) -> int:
        """Completed equivalent full cycles."""
        return int(self.discharge_accumulated_percent // CYCLE_PERCENT)


def observe(state: BatteryHealthState, record: BatteryUpdate) -> bool:
    """Count one committed battery reading; False (state untouched) if it is not newer than
    the last reading counted.
    """
    if state.updated_at is not None and record.timestamp <= state.updated_at:
        return False
    battery = record.battery
    soc = battery.soc_percent
    reference = state.last_soc
    if reference is None or soc < reference:
        if reference is not None and not battery.charging:
            state.discharge_accumulated_percent += reference - soc
        state.last_soc = soc
    elif soc > reference and (battery.charging or soc - reference >= SOC_NOISE_PERCENT):
        state.last_soc = soc
    state.last_charging = battery.charging
    if not battery.charging and abs(battery.current) < REST_CURRENT_AMPS:
        add_resting_sample(state.resting_voltage, record.timestamp.date(), battery.voltage)
    state.updated_at = record.timestamp
    return True


def add_resting_sample(samples: list[DailyVoltage], day: date, volts: float) -> None:
    """Fold one resting reading into the daily means (ascending by day); drop days that left
    the window.
    """
    if samples and samples[-1].day == day:
        last = samples[-1]
        last.volts += (volts - last.volts) / (last.count + 1)
        last.count += 1
    elif samples and day < samples[-1].day:
        return  # readings arrive in order; an older day can only be a clock glitch
    else:
        samples.append(DailyVoltage(day, volts, 1))
    oldest = samples[-1].day - timedelta(days=RESTING_WINDOW_DAYS - 1)
    while samples[0].day < oldest:
        samples.pop(0)


def voltage_trend(samples: list[DailyVoltage]) -> float | None:
    """Least-squares slope of the daily means in V/day; None with fewer than two days."""
    if len(samples) < 2:
        return None
    xs = [float(sample.day.toordinal()) for sample in samples]
    ys = [sample.volts for sample in samples]
    mean_x = math.fsum(xs) / len(xs)
    mean_y = math.fsum(ys) / len(ys)
    spread = math.fsum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def state_from_row(vehicle_id: str, row: Mapping[str, Any] | None) -> BatteryHealthState:
    """The state a stored row describes (a fresh one for no row)."""
    if row is None:
        return BatteryHealthState(vehicle_id)
    samples = json.loads(row["resting_voltage_samples"]) if row["resting_voltage_samples"] else []
    return BatteryHealthState(
        vehicle_id=vehicle_id,
        discharge_accumulated_percent=float(row["discharge_accumulated_percent"]),
        last_soc=row["last_soc"],
        last_charging=row["last_charging"],
        resting_voltage=[
            DailyVoltage(date.fromisoformat(item["date"]), float(item["volts"]), int(item["count"]))
            for item in samples
        ],
        updated_at=row["updated_at"],
    )


def copy_state(state: BatteryHealthState) -> BatteryHealthState:
    """A copy that shares nothing with ``state`` (to answer with, outside the lane)."""
    return BatteryHealthState(
        vehicle_id=state.vehicle_id,
        discharge_accumulated_percent=state.discharge_accumulated_percent,
        last_soc=state.last_soc,
        last_charging=state.last_charging,
        resting_voltage=[
            DailyVoltage(sample.day, sample.volts, sample.count) for sample in state.resting_voltage
        ],
        updated_at=state.updated_at,
    )


def stored_samples(state: BatteryHealthState) -> list[dict[str, Any]]:
    """The resting-voltage samples as the ``battery_health`` row keeps them."""
    return [
        {"date": sample.day.isoformat(), "volts": sample.volts, "count": sample.count}
        for sample in state.resting_voltage
    ]


@dataclass(slots=True)
class SaveSchedule:
    """When one vehicle's changed accumulators are saved: at once when a cycle completes or
    a new resting-voltage day starts, else at most every ``interval`` seconds (trio clock).
    A state lost in a crash costs little: the next reading's SoC drop is measured from the
    last saved level.
    """

    interval: float = SAVE_INTERVAL
    saved_at: float = -math.inf
    unsaved: bool = False

    def observed(
        self,
        *,
        cycles_before: int,
        last_day_before: date | None,
        state: BatteryHealthState,
        now: float,
    ) -> bool:
        """Note a counted reading; True when the state should be saved now."""
        self.unsaved = True
        last_day = state.resting_voltage[-1].day if state.resting_voltage else None
        new_day = last_day is not None and last_day != last_day_before
        return state.cycle_count != cycles_before or new_day or now - self.saved_at >= self.interval

    def saved(self, now: float) -> None:
        """The state was stored at ``now``."""
        self.unsaved = False
        self.saved_at = now
