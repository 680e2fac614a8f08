"""Which vehicle state and docking phase may follow which (CONTRACT §3). Pure functions."""

from __future__ import annotations

from hub.errors import ContractError, InvalidInputError

STATES = ("idle", "navigating", "docking", "charging", "error", "emergency_stop")
ALWAYS_ALLOWED = ("error", "emergency_stop")

_STATE_SUCCESSORS: dict[str, tuple[str, ...]] = {
    "idle": ("navigating", "charging"),
    "navigating": ("docking", "idle", "charging"),
    "docking": ("navigating", "idle", "charging"),
    "charging": ("idle",),
    "error": ("idle",),
    "emergency_stop": ("idle",),
}

PHASES = (
    "approaching",
    "marker_detection",
    "visual_servoing",
    "final_approach",
    "attachment",
    "success",
)
TERMINAL_PHASES = ("success", "failed")


def allowed_states(current: str, *, before_stop: str | None = None) -> list[str]:
    """Every state that may follow ``current``, itself included.

    ``before_stop`` is the state held just before an emergency stop: after ``resume`` the
    vehicle may go straight back to it.
    """
    allowed = [current, *_STATE_SUCCESSORS[current]]
    if current == "emergency_stop" and before_stop is not None:
        allowed.append(before_stop)
    allowed.extend(ALWAYS_ALLOWED)
    return sorted(set(allowed), key=STATES.index)


def check_state_transition(current: str | None, new: str, *, before_stop: str | None) -> None:
    """Raise 400 ``invalid_state_transition`` unless ``new`` may follow ``current``.

    ``current`` is ``None`` when the hub knows no state (new vehicle, or silent for 5 minutes):
    then any state is accepted.
    """
    if current is None:
        return
    allowed = allowed_states(current, before_stop=before_stop)
    if new not in allowed:
        raise _transition_error(
            "invalid_state_transition",
            f"State cannot change from {current} to {new}",
            "state",
            current,
            new,
            allowed,
        )


def allowed_phases(current: str | None) -> list[str]:
    """Every docking phase that may follow ``current`` (``None``: no docking in progress)."""
    if current is None or current in TERMINAL_PHASES:
        allowed = ["approaching", "failed"]
        if current is not None and current not in allowed:
            allowed.append(current)
        return allowed
    position = PHASES.index(current)
    return [*PHASES[position:], "failed"]


def check_phase_transition(current: str | None, new: str) -> None:
    """Raise 400 ``invalid_phase_transition`` unless ``new`` may follow ``current``."""
    allowed = allowed_phases(current)
    if new not in allowed:
        raise _transition_error(
            "invalid_phase_transition",
            f"Docking phase cannot change from {current} to {new}",
            "phase",
            current,
            new,
            allowed,
        )


def _transition_error(
    code: str, message: str, field: str, current: str | None, new: str, allowed: list[str]
) -> ContractError:
    return InvalidInputError(
        code,
        message,
        field=field,
        received_value=new,
        details={"from": current, "to": new, "allowed": allowed},
    )
