"""Counters and latency samples of one step, kept by each generator worker and merged.

Counter names are prefixed by role (``""`` for the step's main messages, ``"load_"`` for the
REST load under ``estop``): ``sent``, ``answered``, ``errors``, ``timeouts``. Samples are in
milliseconds in compact ``array('d')`` so a worker's result pickles quickly.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Recorder:
    """What one worker saw in one step (picklable, sent back to the orchestrator)."""

    counts: Counter[str] = field(default_factory=Counter)
    error_kinds: Counter[str] = field(default_factory=Counter)
    samples: dict[str, array[float]] = field(default_factory=dict)
    generator_cpu_seconds: float = 0.0

    def count(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        self.counts[name] += amount

    def error(self, prefix: str, kind: str) -> None:
        """Count one error answer of ``kind`` (e.g. ``http_500``, ``connect_failed``)."""
        self.counts[prefix + "errors"] += 1
        self.error_kinds[prefix + kind] += 1

    def sample(self, name: str, milliseconds: float) -> None:
        """Keep one latency sample of series ``name``."""
        series = self.samples.get(name)
        if series is None:
            series = self.samples[name] = array("d")
        series.append(milliseconds)


def merge(parts: Iterable[Recorder]) -> Recorder:
    """One recorder holding the sum of ``parts``' counters and all of their samples."""
    merged = Recorder()
    for part in parts:
        merged.counts.update(part.counts)
        merged.error_kinds.update(part.error_kinds)
        for name, series in part.samples.items():
            merged.samples.setdefault(name, array("d")).extend(series)
        merged.generator_cpu_seconds += part.generator_cpu_seconds
    return merged


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50/p90/p99/max of a series in milliseconds (``None`` when it is empty)."""

    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    count: int


def percentiles(series: Iterable[float]) -> Percentiles:
    """Nearest-rank percentiles of ``series``."""
    ordered = sorted(series)
    if not ordered:
        return Percentiles(None, None, None, None, 0)

    def rank(fraction: float) -> float:
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

    return Percentiles(rank(0.5), rank(0.9), rank(0.99), ordered[-1], len(ordered))
