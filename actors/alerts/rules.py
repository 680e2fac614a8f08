"""When a report raises an alert (CONTRACT §7). Pure functions of the report and the state."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

LOW_BATTERY_WARNING = 20.0
LOW_BATTERY_CRITICAL = 10.0


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert to store: what it is about and how serious."""

    kind: str
    severity: str
    message: str
    error_code: str | None = None


def new_alert_id() -> str:
    """A fresh ``alert_…`` id."""
    return "alert_" + secrets.token_hex(8)


def for_state_change(previous: str | None, new: str) -> AlertDraft | None:
    """Entering ``error`` (severity error) or ``emergency_stop`` (critical)."""
    if new == previous:
        return None
    if new == "error":
        return AlertDraft("state_error", "error", "Vehicle entered error state")
    if new == "emergency_stop":
        return AlertDraft("emergency_stop", "critical", "Vehicle entered emergency stop")
    return None


def for_error_report(error_code: str, severity: str, description: str | None) -> AlertDraft | None:
    """Error reports of severity ``error`` or ``critical`` raise an alert of that severity."""
    if severity not in ("error", "critical"):
        return None
    return AlertDraft("error_report", severity, description or error_code, error_code)


def battery_band(soc_percent: float) -> int:
    """0 above 20 %, 1 below 20 %, 2 below 10 %."""
    if soc_percent < LOW_BATTERY_CRITICAL:
        return 2
    if soc_percent < LOW_BATTERY_WARNING:
        return 1
    return 0


def for_battery(previous_band: int | None, soc_percent: float) -> AlertDraft | None:
    """Once per downward crossing of 20 % (warning) and 10 % (critical)."""
    band = battery_band(soc_percent)
    if band == 0 or (previous_band is not None and band <= previous_band):
        return None
    if band == 2:
        return AlertDraft("battery_critical", "critical", f"Battery at {soc_percent:.1f} %")
    return AlertDraft("battery_low", "warning", f"Battery at {soc_percent:.1f} %")
