"""A docking manoeuvre: the contract's phases in order, with a retry after a failed attempt."""

from __future__ import annotations

import random
from typing import Any

from hub.contract.telemetry import DockingPhase

PHASE_ORDER: tuple[DockingPhase, ...] = (
    "approaching",
    "marker_detection",
    "visual_servoing",
    "final_approach",
    "attachment",
    "success",
)

PHASE_SECONDS: dict[DockingPhase, float] = {
    "approaching": 3.0,
    "marker_detection": 2.0,
    "visual_servoing": 3.0,
    "final_approach": 2.0,
    "attachment": 2.0,
    "failed": 2.0,
}
"""How long each phase lasts; ``success`` is final."""

TOTAL_SECONDS = sum(PHASE_SECONDS[phase] for phase in PHASE_ORDER[:-1])
"""Duration of a docking that succeeds at the first attempt."""

# Distance to the marker (metres) at the start of each phase; it shrinks linearly within one.
_DISTANCE_AT_START: dict[DockingPhase, float] = {
    "approaching": 3.0,
    "marker_detection": 1.5,
    "visual_servoing": 1.2,
    "final_approach": 0.4,
    "attachment": 0.05,
    "success": 0.0,
}
_MOVING_PHASES = frozenset(PHASE_ORDER[:4])
MAX_ATTEMPTS = 3
_BACKED_OFF = 2.0
"""Metres from the marker after backing off from a failed attempt."""
APPROACH_SPEED = 0.25
"""m/s while docking (reported as the location's speed)."""


class Docking:
    """Progress through the docking phases; advanced by :meth:`advance`, never blocks.

    An attempt may fail at the end of ``marker_detection`` (with ``failure_probability``),
    after which the vehicle backs off and starts again at ``approaching``; the third attempt
    always succeeds.
    """

    def __init__(
        self, *, marker_id: int, rng: random.Random, failure_probability: float = 0.0
    ) -> None:
        self.marker_id = marker_id
        self.phase: DockingPhase = "approaching"
        self.attempts = 1
        self._rng = rng
        self._failure_probability = failure_probability
        self._in_phase = 0.0
        self._alignment_start = rng.uniform(4.0, 12.0)

    @property
    def done(self) -> bool:
        """True once the vehicle is attached."""
        return self.phase == "success"

    @property
    def moving(self) -> bool:
        """True while the vehicle creeps towards the marker."""
        return self.phase in _MOVING_PHASES

    def advance(self, seconds: float) -> list[DockingPhase]:
        """Spend ``seconds``; return the phases entered meanwhile, in order."""
        entered: list[DockingPhase] = []
        self._in_phase += seconds
        while not self.done and self._in_phase >= PHASE_SECONDS[self.phase]:
            self._in_phase -= PHASE_SECONDS[self.phase]
            self.phase = self._next_phase()
            if self.phase == "approaching":
                self.attempts += 1
            entered.append(self.phase)
        if self.done:
            self._in_phase = 0.0
        return entered

    def _next_phase(self) -> DockingPhase:
        if self.phase == "failed":
            return "approaching"
        if (
            self.phase == "marker_detection"
            and self.attempts < MAX_ATTEMPTS
            and self._rng.random() < self._failure_probability
        ):
            return "failed"
        return PHASE_ORDER[PHASE_ORDER.index(self.phase) + 1]

    def _fraction(self) -> float:
        seconds = PHASE_SECONDS.get(self.phase)
        return min(self._in_phase / seconds, 1.0) if seconds else 1.0

    def distance_to_marker(self) -> float:
        """Metres left to the marker."""
        if self.phase == "failed":
            return _BACKED_OFF
        start = _DISTANCE_AT_START[self.phase]
        index = PHASE_ORDER.index(self.phase)
        end = _DISTANCE_AT_START[PHASE_ORDER[index + 1]] if index + 1 < len(PHASE_ORDER) else 0.0
        return start + (end - start) * self._fraction()

    def report_fields(self, phase: DockingPhase | None = None) -> dict[str, Any]:
        """The docking report's fields (without ``timestamp``).

        ``phase`` names a phase passed through during the last :meth:`advance` (several can
        be when a step is long); its report shows the vehicle as it entered that phase.
        """
        if phase is None or phase == self.phase:
            phase, distance = self.phase, self.distance_to_marker()
        else:
            distance = _BACKED_OFF if phase == "failed" else _DISTANCE_AT_START[phase]
        success = phase == "success"
        visible = phase not in ("approaching", "failed")
        alignment = 0.0 if success else self._alignment_start * min(distance / 3.0, 1.0) + 0.3
        return {
            "phase": phase,
            "marker_id": self.marker_id,
            "distance_to_marker_meters": round(distance, 3),
            "alignment_error_degrees": round(alignment, 2),
            "docking_success": success,
            "attempts": self.attempts,
            "details": {
                "marker_visible": visible,
                "confidence": round(0.97 if visible else self._rng.uniform(0.2, 0.5), 2),
            },
        }
