"""When a report raises an alert (CONTRACT §7): state changes, error reports, low battery."""

from __future__ import annotations

import re

import pytest

from actors.alerts.rules import (
    battery_band,
    for_battery,
    for_error_report,
    for_state_change,
    new_alert_id,
)

# --- states ---------------------------------------------------------------------------


@pytest.mark.parametrize("previous", [None, "idle", "navigating", "docking", "charging"])
def test_entering_error_raises_an_error_alert(previous: str | None) -> None:
    draft = for_state_change(previous, "error")
    assert draft is not None
    assert draft.severity == "error"


@pytest.mark.parametrize("previous", [None, "idle", "navigating", "error"])
def test_entering_emergency_stop_raises_a_critical_alert(previous: str | None) -> None:
    draft = for_state_change(previous, "emergency_stop")
    assert draft is not None
    assert draft.severity == "critical"


@pytest.mark.parametrize("state", ["error", "emergency_stop"])
def test_staying_in_error_or_stop_raises_nothing_more(state: str) -> None:
    assert for_state_change(state, state) is None


@pytest.mark.parametrize("new", ["idle", "navigating", "docking", "charging"])
def test_ordinary_states_raise_nothing(new: str) -> None:
    assert for_state_change("error", new) is None
    assert for_state_change(None, new) is None


# --- error reports --------------------------------------------------------------------


@pytest.mark.parametrize("severity", ["error", "critical"])
def test_serious_error_reports_raise_an_alert_of_their_severity(severity: str) -> None:
    draft = for_error_report("DOCK_ATTACHMENT_FAILED", severity, "Could not attach")
    assert draft is not None
    assert draft.severity == severity
    assert draft.error_code == "DOCK_ATTACHMENT_FAILED"
    assert draft.message == "Could not attach"


def test_error_report_without_description_names_its_code() -> None:
    draft = for_error_report("FOO_BAR", "critical", None)
    assert draft is not None
    assert draft.message == "FOO_BAR"


@pytest.mark.parametrize("severity", ["info", "warning"])
def test_minor_error_reports_are_only_logged(severity: str) -> None:
    assert for_error_report("NAV_OBSTACLE_BLOCKED", severity, "blocked") is None


# --- battery --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soc", "band"),
    [(100.0, 0), (20.0, 0), (19.99, 1), (10.0, 1), (9.99, 2), (0.0, 2)],
)
def test_battery_bands_split_at_20_and_10_percent(soc: float, band: int) -> None:
    assert battery_band(soc) == band


def test_low_battery_alerts_once_per_downward_crossing() -> None:
    readings = [50.0, 25.0, 19.0, 18.0, 15.0, 9.5, 8.0, 5.0]
    band: int | None = None
    raised = []
    for soc in readings:
        draft = for_battery(band, soc)
        if draft is not None:
            raised.append((soc, draft.severity))
        band = battery_band(soc)
    assert raised == [(19.0, "warning"), (9.5, "critical")]


def test_recharging_and_falling_again_alerts_again() -> None:
    assert for_battery(battery_band(15.0), 50.0) is None
    draft = for_battery(battery_band(50.0), 19.0)
    assert draft is not None
    assert draft.severity == "warning"


def test_falling_straight_below_10_percent_raises_one_critical_alert() -> None:
    draft = for_battery(battery_band(40.0), 7.0)
    assert draft is not None
    assert draft.severity == "critical"


def test_climbing_from_critical_to_low_raises_nothing() -> None:
    assert for_battery(battery_band(5.0), 15.0) is None


def test_first_reading_below_a_threshold_alerts() -> None:
    low = for_battery(None, 15.0)
    critical = for_battery(None, 5.0)
    assert low is not None and low.severity == "warning"
    assert critical is not None and critical.severity == "critical"
    assert for_battery(None, 80.0) is None


# --- ids ------------------------------------------------------------------------------


def test_alert_ids_are_prefixed_and_unique() -> None:
    ids = {new_alert_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"alert_[0-9a-f]+", alert_id) for alert_id in ids)
