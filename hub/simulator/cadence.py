"""When each periodic report is due, on the vehicle model's own elapsed-time axis."""

from __future__ import annotations

EPSILON = 1e-6
"""Slack for float sums of tick lengths (ten 0.1 s ticks are not exactly one second)."""


class Cadence:
    """A report due every ``interval`` seconds, starting at time 0.

    A report that falls behind by more than one interval is not made up: the next one is due
    one interval after the late one (no bursts after a stall).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0

    def due(self, now: float) -> bool:
        """True (and the next one scheduled) if a report is due at ``now``."""
        if now + EPSILON < self._next:
            return False
        self._next += self.interval
        if self._next <= now + EPSILON:
            self._next = now + self.interval
        return True

    def restart(self, now: float) -> None:
        """A report was just made out of turn: the next periodic one is an interval later."""
        self._next = now + self.interval
