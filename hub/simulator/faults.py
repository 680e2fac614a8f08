"""Faults a simulated vehicle reports: random ones by state, and a critically low battery.

Codes come from the contract's seeded list; severities are mostly ``warning`` and rarely
``critical``. A critical random fault also puts the vehicle in ``error`` for a while (the
model's business); the battery report does not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hub.contract.telemetry import Severity, Subsystem, VehicleState


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """A fault a vehicle can report, with the states it can happen in."""

    code: str
    subsystem: Subsystem
    description: str
    recovery_action: str
    states: frozenset[VehicleState] = frozenset()


_MOVING: frozenset[VehicleState] = frozenset({"navigating"})
_DOCKING: frozenset[VehicleState] = frozenset({"docking"})
_ANY: frozenset[VehicleState] = frozenset({"idle", "navigating", "docking", "charging"})

ERROR_KINDS: tuple[ErrorKind, ...] = (
    ErrorKind("NAV_OBSTACLE_BLOCKED", "navigation", "Path blocked", "rerouting", _MOVING),
    ErrorKind("NAV_LOCALIZATION_LOST", "navigation", "Localization weak", "relocalize", _MOVING),
    ErrorKind("NAV_PATH_NOT_FOUND", "navigation", "No path to goal", "replanning", _MOVING),
    ErrorKind("DOCK_ALIGNMENT_FAILED", "docking", "Alignment off", "realign", _DOCKING),
    ErrorKind("DOCK_MARKER_NOT_FOUND", "docking", "Docking marker not visible", "search", _DOCKING),
    ErrorKind("DOCK_ATTACHMENT_FAILED", "docking", "Latch did not engage", "retry_latch", _DOCKING),
    ErrorKind("SAFE_COLLISION_DETECTED", "safety", "Bumper contact", "stop_and_check", _MOVING),
    ErrorKind("SENSOR_LIDAR_FAILURE", "hardware", "Lidar frames dropped", "sensor_restart", _ANY),
    ErrorKind("SENSOR_CAMERA_FAILURE", "perception", "Camera timeout", "sensor_restart", _ANY),
    ErrorKind("SENSOR_IMU_FAILURE", "hardware", "IMU drift detected", "recalibrate", _ANY),
)
"""Random faults (POWER_BATTERY_CRITICAL is reported from the soc instead)."""

BATTERY_CRITICAL = ErrorKind(
    "POWER_BATTERY_CRITICAL", "power", "Battery critically low", "return_to_base"
)
BATTERY_CRITICAL_BELOW = 10.0
BATTERY_CRITICAL_CLEARED_ABOVE = 15.0

SEVERITY_WEIGHTS: dict[Severity, float] = {
    "info": 0.12,
    "warning": 0.78,
    "error": 0.07,
    "critical": 0.03,
}


def chance(rate_per_minute: float, seconds: float) -> float:
    """Probability that an event with probability ``rate_per_minute`` per minute occurs in
    ``seconds``."""
    if rate_per_minute <= 0 or seconds <= 0:
        return 0.0
    miss: float = (1.0 - min(rate_per_minute, 1.0)) ** (seconds / 60.0)
    return 1.0 - miss


def error_fields(kind: ErrorKind, severity: Severity, location: dict[str, float]) -> dict[str, Any]:
    """An error report's fields (without ``timestamp``)."""
    return {
        "error_code": kind.code,
        "severity": severity,
        "subsystem": kind.subsystem,
        "location": location,
        "description": kind.description,
        "recovery_action": kind.recovery_action,
        "user_action_required": severity == "critical",
    }


class FaultSource:
    """Decides, step by step, which error reports a vehicle makes; never blocks."""

    def __init__(self, rng: random.Random, rate_per_minute: float) -> None:
        self.rate_per_minute = rate_per_minute
        self._rng = rng
        self._battery_reported = False

    def check(
        self,
        seconds: float,
        *,
        state: VehicleState,
        soc_percent: float,
        charging: bool,
        location: dict[str, float],
    ) -> tuple[list[dict[str, Any]], bool]:
        """The error reports for the last ``seconds``, and whether a critical fault occurred."""
        found: list[dict[str, Any]] = []
        if soc_percent > BATTERY_CRITICAL_CLEARED_ABOVE:
            self._battery_reported = False
        elif soc_percent < BATTERY_CRITICAL_BELOW and not charging and not self._battery_reported:
            self._battery_reported = True
            found.append(error_fields(BATTERY_CRITICAL, "critical", location))
        if state in ("error", "emergency_stop"):
            return found, False
        if self._rng.random() >= chance(self.rate_per_minute, seconds):
            return found, False
        candidates = [kind for kind in ERROR_KINDS if state in kind.states]
        if not candidates:
            return found, False
        kind = self._rng.choice(candidates)
        severities = list(SEVERITY_WEIGHTS)
        severity = self._rng.choices(severities, weights=list(SEVERITY_WEIGHTS.values()))[0]
        found.append(error_fields(kind, severity, location))
        return found, severity == "critical"
