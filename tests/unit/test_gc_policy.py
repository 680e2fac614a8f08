"""The hub's garbage-collector policy: fewer, timed collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hub.gc_policy import THRESHOLDS, tune_garbage_collector
from hub.metrics import REGISTRY


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks
    gc.unfreeze()


def collections_timed(generation: int) -> float:
    value = REGISTRY.get_sample_value("gc_pause_seconds_count", {"generation": str(generation)})
    return value or 0.0


def test_the_collector_runs_less_often_and_each_run_is_timed(restored_collector: None) -> None:
    tune_garbage_collector()
    tune_garbage_collector()  # a second call adds no second timer

    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[0] > 700 and THRESHOLDS[2] > 10  # CPython's defaults: (700, 10, 10)
    assert THRESHOLDS[1] * THRESHOLDS[2] >= 5_000  # a full collection per 5,000 young ones
    assert gc.get_freeze_count() > 0
    before = collections_timed(2)
    gc.collect()
    assert collections_timed(2) == before + 1


def test_a_growing_heap_is_walked_in_small_steps(restored_collector: None) -> None:
    """While a fleet connects, nearly every new object survives. No collection of the
    younger generations may then walk more than the survivors of a few young collections:
    each walk stops the event loop (with 50 young collections per generation-1 one, it
    walked about a million objects, 250 ms, every few seconds)."""
    tune_garbage_collector()
    walked: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 1:
            walked.append(len(gc.get_objects(0)) + len(gc.get_objects(1)))

    gc.callbacks.append(count)
    try:
        kept = [[] for _ in range(1_200_000)]  # a million and more survivors, as 10,000 sockets
    finally:
        gc.callbacks.remove(count)
    assert len(kept) == 1_200_000
    assert walked, "no collection of generation 1 ran while the heap grew"
    assert max(walked) <= 150_000, max(walked)
