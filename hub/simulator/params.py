"""The knobs of a simulated vehicle, in seconds, percent, metres and m/s."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.simulator.battery import BatteryParams

MAX_WIRE_SPEED = 2.0
"""The contract's upper bound for a location's speed (m/s)."""


@dataclass(frozen=True, slots=True)
class VehicleParams:
    """How a simulated vehicle behaves; rates are probabilities per minute."""

    cruise_speed: float = 1.0
    location_interval: float = 1.0
    battery_interval: float = 5.0
    status_interval: float = 10.0
    docking_interval: float = 1.0
    error_rate_per_minute: float = 0.02
    docking_failure_probability: float = 0.05
    idle_seconds: tuple[float, float] = (10.0, 40.0)
    """How long an idle vehicle waits before its next patrol leg (uniform range)."""
    patrol: bool = True
    """Whether an idle vehicle drives its route on its own between missions."""
    fault_seconds: tuple[float, float] = (20.0, 45.0)
    """How long a critical fault keeps the vehicle in ``error``."""
    pickup_wait_seconds: float = 5.0
    charge_below: float = 30.0
    """An idle vehicle under this soc drives to its charger."""
    charge_after_mission_below: float = 50.0
    """A vehicle finishing a mission under this soc charges at the destination dock."""
    charged_at: float = 95.0
    dispatch_min_soc: float = 20.0
    max_mission_metres: float = 5000.0
    """Longer missions are refused with ``invalid_destination`` (off the site map)."""
    battery: BatteryParams = field(default_factory=BatteryParams)
