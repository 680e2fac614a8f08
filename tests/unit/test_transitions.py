"""Which state and docking phase may follow which (CONTRACT §3), and forgetting a stale state."""

from __future__ import annotations

import pytest

from actors.vehicle.state import STATE_MEMORY, VehicleState
from actors.vehicle.transitions import (
    PHASES,
    STATES,
    allowed_phases,
    allowed_states,
    check_phase_transition,
    check_state_transition,
)
from api.errors import answer_for
from hub.errors import InvalidInputError

# The contract's table: from → allowed to, besides itself, error and emergency_stop.
CONTRACT_SUCCESSORS = {
    "idle": {"navigating", "charging"},
    "navigating": {"docking", "idle", "charging"},
    "docking": {"navigating", "idle", "charging"},
    "charging": {"idle"},
    "error": {"idle"},
    "emergency_stop": {"idle"},
}
ALWAYS = {"error", "emergency_stop"}


def refused(current: str | None, new: str, before_stop: str | None = None) -> InvalidInputError:
    """The refusal of a state transition: a 400, nothing stored."""
    with pytest.raises(InvalidInputError) as caught:
        check_state_transition(current, new, before_stop=before_stop)
    assert answer_for(caught.value).status == 400
    return caught.value


def refused_phase(current: str | None, new: str) -> InvalidInputError:
    """The refusal of a docking phase transition: a 400, nothing stored."""
    with pytest.raises(InvalidInputError) as caught:
        check_phase_transition(current, new)
    assert answer_for(caught.value).status == 400
    return caught.value


# --- vehicle states -------------------------------------------------------------------


@pytest.mark.parametrize("current", STATES)
def test_allowed_states_follow_the_contract_table(current: str) -> None:
    expected = {current} | CONTRACT_SUCCESSORS[current] | ALWAYS
    assert set(allowed_states(current)) == expected
    # Listed once each, in the contract's state order, so a vehicle can show them as is.
    allowed = allowed_states(current)
    assert allowed == sorted(set(allowed), key=STATES.index)


@pytest.mark.parametrize("current", STATES)
@pytest.mark.parametrize("new", STATES)
def test_every_pair_is_accepted_or_refused_as_the_table_says(current: str, new: str) -> None:
    permitted = new == current or new in CONTRACT_SUCCESSORS[current] or new in ALWAYS
    if permitted:
        check_state_transition(current, new, before_stop=None)
        return
    error = refused(current, new)
    assert error.error == "invalid_state_transition"
    assert error.field == "state"
    assert error.received_value == new
    assert error.details == {"from": current, "to": new, "allowed": allowed_states(current)}


@pytest.mark.parametrize("new", STATES)
def test_no_known_state_accepts_any_state(new: str) -> None:
    check_state_transition(None, new, before_stop=None)


@pytest.mark.parametrize("before", ["idle", "navigating", "docking", "charging", "error"])
def test_emergency_stop_may_resume_to_the_state_before_it(before: str) -> None:
    check_state_transition("emergency_stop", before, before_stop=before)
    check_state_transition("emergency_stop", "idle", before_stop=before)
    assert before in allowed_states("emergency_stop", before_stop=before)


def test_emergency_stop_refuses_states_other_than_idle_and_the_one_before() -> None:
    for new in ("docking", "charging"):
        error = refused("emergency_stop", new, before_stop="navigating")
        assert error.details is not None
        assert error.details["allowed"] == ["idle", "navigating", "error", "emergency_stop"]
    # Without a state before the stop (the vehicle's first report was the stop) only idle.
    refused("emergency_stop", "navigating", before_stop=None)


def test_before_stop_only_matters_while_stopped() -> None:
    error = refused("charging", "navigating", before_stop="navigating")
    assert error.details is not None
    assert "navigating" not in error.details["allowed"]


# --- docking phases -------------------------------------------------------------------


@pytest.mark.parametrize("position", range(len(PHASES) - 1))
def test_phase_may_stay_step_or_skip_forward(position: int) -> None:
    current = PHASES[position]
    for new in PHASES[position:]:
        check_phase_transition(current, new)


@pytest.mark.parametrize("current", [*PHASES, None])
def test_failed_may_follow_any_phase(current: str | None) -> None:
    check_phase_transition(current, "failed")


@pytest.mark.parametrize("current", ["success", "failed", None])
def test_approaching_starts_a_new_docking(current: str | None) -> None:
    check_phase_transition(current, "approaching")


@pytest.mark.parametrize("position", range(1, len(PHASES) - 1))
def test_backward_phase_is_refused(position: int) -> None:
    current = PHASES[position]
    for new in PHASES[:position]:
        error = refused_phase(current, new)
        assert error.error == "invalid_phase_transition"
        assert error.field == "phase"
        assert error.details == {
            "from": current,
            "to": new,
            "allowed": [*PHASES[position:], "failed"],
        }


@pytest.mark.parametrize("terminal", ["success", "failed"])
def test_after_the_end_only_a_new_approach(terminal: str) -> None:
    for new in ("marker_detection", "visual_servoing", "final_approach", "attachment"):
        refused_phase(terminal, new)
    allowed = allowed_phases(terminal)
    assert set(allowed) == {"approaching", "failed", terminal}
    assert len(allowed) == len(set(allowed)), "each allowed phase is listed once"


def test_first_phase_must_be_approaching() -> None:
    error = refused_phase(None, "visual_servoing")
    assert error.details == {
        "from": None,
        "to": "visual_servoing",
        "allowed": ["approaching", "failed"],
    }


# --- forgetting a stale state (5 minutes) ---------------------------------------------


def test_state_memory_is_five_minutes() -> None:
    assert STATE_MEMORY == 300.0


def test_known_state_is_forgotten_after_five_minutes() -> None:
    vehicle = VehicleState("wheelchair_001", state="charging", state_accepted_at=1000.0)
    assert vehicle.known_state(1000.0) == "charging"
    assert vehicle.known_state(1000.0 + 299.999) == "charging"
    assert vehicle.known_state(1000.0 + 300.0) == "charging"
    assert vehicle.known_state(1000.0 + 300.001) is None


def test_a_vehicle_that_never_reported_has_no_known_state() -> None:
    assert VehicleState("wheelchair_001").known_state(0.0) is None
    assert VehicleState("wheelchair_001").known_state(1e9) is None


def test_forgotten_state_lets_any_state_through() -> None:
    vehicle = VehicleState("wheelchair_001", state="charging", state_accepted_at=0.0)
    # charging → navigating is refused while the hub remembers the charging report…
    with pytest.raises(InvalidInputError):
        check_state_transition(vehicle.known_state(60.0), "navigating", before_stop=None)
    # …and accepted once the vehicle has been silent for more than five minutes.
    check_state_transition(vehicle.known_state(301.0), "navigating", before_stop=None)
