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
import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import trio

from hub.clock import format_timestamp
from hub.contract.telemetry import BatteryUpdate
from storage.database import Database, Row, StorageError
from storage.queries import battery_health as health_queries

logger = logging.getLogger(__name__)

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


def health_body(vehicle_id: str, state: BatteryHealthState | None) -> dict[str, Any]:
    """The body of ``GET /api/v1/vehicle/{id}/battery/health``."""
    if state is None:
        state = BatteryHealthState(vehicle_id)
    trend = voltage_trend(state.resting_voltage)
    return {
        "vehicle_id": vehicle_id,
        "cycle_count": state.cycle_count,
        "discharge_accumulated_percent": round(state.discharge_accumulated_percent, 3),
        "resting_voltage": {
            "samples": [
                {"date": sample.day.isoformat(), "volts": round(sample.volts, 3)}
                for sample in state.resting_voltage
            ],
            "trend_volts_per_day": None if trend is None else round(trend, 6),
        },
        "updated_at": None if state.updated_at is None else format_timestamp(state.updated_at),
    }


def state_from_row(vehicle_id: str, row: Row | None) -> BatteryHealthState:
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


async def persist(database: Database, state: BatteryHealthState) -> None:
    """Store the state (no-op for a state that never counted a reading)."""
    if state.updated_at is None:
        return
    await health_queries.save(
        database,
        vehicle_id=state.vehicle_id,
        cycle_count=state.cycle_count,
        last_charging=state.last_charging,
        last_soc=state.last_soc,
        discharge_accumulated_percent=state.discharge_accumulated_percent,
        resting_voltage_samples=[
            {"date": sample.day.isoformat(), "volts": sample.volts, "count": sample.count}
            for sample in state.resting_voltage
        ],
        updated_at=state.updated_at,
    )


class BatteryHealthService:
    """Keeps each vehicle's accumulators in memory, saves them to ``battery_health``, answers
    the health endpoint.

    :meth:`observe` must be called in the vehicle's report order (from its telemetry lane or
    under its lock). It saves at once when a cycle completes or a new resting-voltage day
    starts, else at most every :data:`SAVE_INTERVAL` seconds; :meth:`flush` saves the rest at
    shutdown. A state lost in a crash costs little: the next reading's SoC drop is measured
    from the last saved level.
    """

    def __init__(self, database: Database, *, save_interval: float = SAVE_INTERVAL) -> None:
        self._database = database
        self._save_interval = save_interval
        self._states: dict[str, BatteryHealthState] = {}
        self._saved_at: dict[str, float] = {}
        self._unsaved: set[str] = set()

    async def state_of(self, vehicle_id: str) -> BatteryHealthState:
        """The vehicle's state, loaded from the database the first time (may raise
        StorageError).
        """
        state = self._states.get(vehicle_id)
        if state is None:
            row = await health_queries.load(self._database, vehicle_id)
            loaded = state_from_row(vehicle_id, row)
            state = self._states.setdefault(vehicle_id, loaded)  # a concurrent load may have won
        return state

    async def observe(self, vehicle_id: str, record: BatteryUpdate) -> None:
        """Count a committed battery reading and save when due. Never raises StorageError:
        a reading that cannot be counted now is covered by the next one's SoC drop.
        """
        try:
            state = await self.state_of(vehicle_id)
        except StorageError as exc:
            logger.warning("battery health of %s not loaded: %s", vehicle_id, exc)
            return
        cycles, days = state.cycle_count, len(state.resting_voltage)
        last_day = state.resting_voltage[-1].day if days else None
        if not observe(state, record):
            return
        self._unsaved.add(vehicle_id)
        new_day = bool(state.resting_voltage) and state.resting_voltage[-1].day != last_day
        overdue = trio.current_time() - self._saved_at.get(vehicle_id, -math.inf)
        if state.cycle_count != cycles or new_day or overdue >= self._save_interval:
            await self.save(vehicle_id)

    async def save(self, vehicle_id: str) -> None:
        """Save one vehicle's state now if it changed; a storage error is logged and the
        state stays marked unsaved.
        """
        state = self._states.get(vehicle_id)
        if state is None or vehicle_id not in self._unsaved:
            return
        try:
            await persist(self._database, state)
        except StorageError as exc:
            logger.warning("battery health of %s not saved: %s", vehicle_id, exc)
            return
        self._unsaved.discard(vehicle_id)
        self._saved_at[vehicle_id] = trio.current_time()

    async def flush(self) -> None:
        """Save every changed state (at shutdown)."""
        for vehicle_id in sorted(self._unsaved):
            await self.save(vehicle_id)

    async def health(self, vehicle_id: str) -> dict[str, Any]:
        """The health body of a vehicle the caller knows exists (may raise StorageError)."""
        return health_body(vehicle_id, await self.state_of(vehicle_id))
