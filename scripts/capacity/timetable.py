"""The open-loop generator's schedule: who sends when, and which messages are measured.

Vehicle ``i`` of a step with ``population`` vehicles sends at ``start + phase(i) + k`` seconds
for ``k = 0, 1, …``, where the phases are spread uniformly over one period. The schedule never
waits for answers: :func:`run_schedule` fires each message at its intended time whether or not
earlier ones were answered, and latency is measured from the intended time, so a stall of the
generator or of the hub shows up in the figures instead of silently thinning the load.
All times are whole milliseconds (ints) so wire timestamps carry them exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from scripts.capacity.clock import BenchClock

PERIOD_MS = 1000


@dataclass(frozen=True, slots=True)
class Window:
    """The measured part of a step, ``[start, end)`` in epoch milliseconds."""

    start_ms: int
    end_ms: int

    def counts(self, intended_ms: int) -> bool:
        """True if a message intended at ``intended_ms`` is measured (not warm-up)."""
        return self.start_ms <= intended_ms < self.end_ms

    @property
    def seconds(self) -> float:
        """The window's length in seconds."""
        return (self.end_ms - self.start_ms) / 1000


@dataclass(frozen=True, slots=True)
class Timetable:
    """Fixed send times: ``start_ms + phase(index) + k * period_ms`` until ``end_ms``."""

    start_ms: int
    end_ms: int
    population: int
    period_ms: int = PERIOD_MS

    def phase_ms(self, index: int) -> int:
        """Vehicle ``index``'s offset in the period (uniform spread over all vehicles)."""
        return index * self.period_ms // max(1, self.population)

    def events(self, indices: Sequence[int]) -> Iterator[tuple[int, int]]:
        """``(intended_ms, position)`` in time order for the vehicles at ``indices``.

        ``position`` is the place in ``indices``; ``indices`` must be sorted ascending so that
        phases are too. Bounded: at most ``len(indices) * rounds`` events.
        """
        phases = [self.phase_ms(index) for index in indices]
        rounds = (self.end_ms - self.start_ms) // self.period_ms + 1
        for round_number in range(rounds):
            base = self.start_ms + round_number * self.period_ms
            for position, phase in enumerate(phases):
                moment = base + phase
                if moment >= self.end_ms:
                    return
                yield moment, position


def spread_ms(start_ms: int, span_ms: int, index: int, population: int) -> int:
    """The ``index``-th of ``population`` moments spread uniformly over ``span_ms``."""
    return start_ms + index * span_ms // max(1, population)


async def run_schedule(
    clock: BenchClock,
    events: Iterator[tuple[int, int]],
    fire: Callable[[int, int], None],
) -> None:
    """Call ``fire(intended_ms, position)`` at each event's intended time, in order.

    Blocks until the last event has fired. ``fire`` must not block (start a task); when the
    generator runs late, every overdue event fires at once, keeping its intended time.
    """
    for moment_ms, position in events:
        if moment_ms / 1000 > clock.now():
            await clock.sleep_until(moment_ms / 1000)
        fire(moment_ms, position)
