"""Which alerts wait to be escalated, and when: a timetable with no I/O and no clock of its own."""

from __future__ import annotations

import heapq
from typing import Any


class EscalationWatch:
    """Alert ids by the trio time they are due, with the frame of those raised here.

    Rescheduling or forgetting an alert leaves a stale heap entry, skipped when it surfaces.
    """

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._frames: dict[str, dict[str, Any]] = {}
        self._heap: list[tuple[float, str]] = []

    def watching(self, alert_id: str) -> bool:
        """Whether the alert is waiting to be escalated."""
        return alert_id in self._due

    def count(self) -> int:
        """How many alerts are waiting."""
        return len(self._due)

    def watch(self, alert_id: str, due: float, frame: dict[str, Any] | None) -> None:
        """Escalate the alert at ``due`` (``frame``: its frame, if it was raised here)."""
        self._due[alert_id] = due
        if frame is not None:
            self._frames[alert_id] = frame
        heapq.heappush(self._heap, (due, alert_id))

    def forget(self, alert_id: str) -> None:
        """Do not escalate the alert (it was acknowledged)."""
        self._due.pop(alert_id, None)
        self._frames.pop(alert_id, None)

    def frame_of(self, alert_id: str) -> dict[str, Any] | None:
        """Take the frame kept for an alert that is being escalated now."""
        return self._frames.pop(alert_id, None)

    def next_due(self) -> float:
        """The trio time of the next escalation (``inf`` when none waits)."""
        while self._heap:
            due, alert_id = self._heap[0]
            if self._due.get(alert_id) == due:
                return due
            heapq.heappop(self._heap)
        return float("inf")

    def take_due(self, now: float) -> list[str]:
        """The alerts due at ``now``, no longer watched (their frames stay until taken)."""
        taken: list[str] = []
        while self.next_due() <= now:
            _, alert_id = heapq.heappop(self._heap)
            del self._due[alert_id]
            taken.append(alert_id)
        return taken
