"""A battery pack that drains while the vehicle moves and fills while it charges.

Rates are percent per second and deliberately brisk (a full charge lasts about an hour and a
half of driving) so a simulation of a few minutes shows the soc move.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.contract.telemetry import Battery

AMBIENT_CELSIUS = 24.0
THERMAL_TIME_CONSTANT = 120.0
"""Seconds for the pack temperature to close most of the gap to its load's temperature."""


@dataclass(frozen=True, slots=True)
class BatteryParams:
    """How fast the pack drains and charges, in percent of capacity per second."""

    drain_moving_per_second: float = 0.02
    drain_idle_per_second: float = 0.002
    charge_per_second: float = 0.08
    nominal_speed: float = 1.0
    """Speed (m/s) at which the moving drain applies; slower driving drains less."""


class BatteryPack:
    """State of charge, current and temperature; advanced by :meth:`advance`, never blocks."""

    def __init__(
        self, *, soc_percent: float, health_percent: float, params: BatteryParams | None = None
    ) -> None:
        self.params = params or BatteryParams()
        self.soc_percent = min(max(soc_percent, 0.0), 100.0)
        self.health_percent = health_percent
        self.charging = False
        self.current = -1.0
        self.temperature = AMBIENT_CELSIUS

    def advance(self, seconds: float, *, speed: float, charging: bool) -> None:
        """Drain (or charge) for ``seconds`` at ``speed`` m/s."""
        params = self.params
        self.charging = charging
        if charging:
            # Constant current to 80 %, then tapering as a real charger does.
            taper = 1.0 if self.soc_percent < 80.0 else max((100.0 - self.soc_percent) / 20.0, 0.1)
            self.soc_percent += params.charge_per_second * taper * seconds
            self.current = 20.0 * taper
        else:
            load = min(speed / params.nominal_speed, 2.0) if params.nominal_speed > 0 else 0.0
            drain = params.drain_idle_per_second
            drain += (params.drain_moving_per_second - params.drain_idle_per_second) * load
            self.soc_percent -= drain * seconds
            self.current = -(1.2 + 8.0 * load)
        self.soc_percent = min(max(self.soc_percent, 0.0), 100.0)
        target = AMBIENT_CELSIUS + abs(self.current) * 0.4
        blend = min(seconds / THERMAL_TIME_CONSTANT, 1.0)
        self.temperature += (target - self.temperature) * blend

    @property
    def voltage(self) -> float:
        """Terminal voltage of a 48 V pack: higher when full, sagging under load."""
        return 44.0 + 10.0 * self.soc_percent / 100.0 + 0.02 * self.current

    @property
    def runtime_minutes(self) -> int:
        """Minutes of driving left at the moving drain rate."""
        rate = self.params.drain_moving_per_second * 60.0
        return int(self.soc_percent / rate) if rate > 0 else 0

    def reading(self) -> Battery:
        """The reading a battery report carries (validated by the wire model)."""
        return Battery(
            soc_percent=round(self.soc_percent, 2),
            voltage=round(self.voltage, 2),
            current=round(self.current, 2),
            temperature=round(min(max(self.temperature, -20.0), 80.0), 1),
            charging=self.charging,
            estimated_runtime_minutes=self.runtime_minutes,
            health_percent=round(self.health_percent, 1),
        )
