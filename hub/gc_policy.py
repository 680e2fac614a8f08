"""How the hub's process runs Python's cyclic garbage collector, and timing each run.

The collector stops the event loop while it runs, and a full (generation 2) collection walks
every tracked object: with a few hundred connected vehicles that is a million objects and a
stall of 150–500 ms on a small machine — every report in flight meanwhile waits, which is
what a latency p99 shows. Almost everything the hub allocates is freed by reference counting
the moment it is done with, so the collector has little to find; it may therefore run far
less often than CPython's defaults (700, 10, 10):

- generation 0 is collected after :data:`THRESHOLDS`\\ ``[0]`` more allocations than
  deallocations instead of 700, so objects that live for one commit (a few milliseconds) are
  gone by then instead of being promoted to older generations;
- generation 1 is collected after :data:`THRESHOLDS`\\ ``[1]`` collections of generation 0,
  so it holds the survivors of five of them. While a fleet connects nearly everything
  survives (the sockets, actors and tasks of every new vehicle): with 10,000 vehicles
  connecting over 20 s, a collection of generation 1 walked 72,000–142,000 objects in
  16–29 ms, where with 50 instead of 5 it walked some 930,000 and stopped the loop for
  250 ms every 4 s;
- a full collection is considered after :data:`THRESHOLDS`\\ ``[2]`` collections of
  generation 1, that is after 5,000 of generation 0 (and, as always, only when the objects
  promoted since the last one add up to a quarter of the heap), so it comes about once an
  hour instead of every few seconds.

Cyclic garbage still gets collected, only later: memory held by a reference cycle is bounded
by what an hour creates. ``gc_pause_seconds`` (by generation) on ``/metrics`` shows what
the collector costs.
"""

from __future__ import annotations

import gc
import time

from hub.metrics import gc_pause

THRESHOLDS = (20_000, 5, 1000)
"""``gc.set_threshold`` of the hub process (measured in ``docs/performance.md``)."""

_started: list[float] = []


def _time_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[:] = [time.perf_counter()]
    elif _started:
        gc_pause.labels(str(info.get("generation", "?"))).observe(time.perf_counter() - _started[0])


def tune_garbage_collector() -> None:
    """Apply :data:`THRESHOLDS`, time every collection into ``gc_pause_seconds``, and move
    what exists now (the started hub: code, settings, pools) out of the collector's way for
    good (``gc.freeze``). Call once, when the hub has started; calling again only freezes."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)
