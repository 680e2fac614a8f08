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
    assert gc.get_freeze_count() > 0
    before = collections_timed(2)
    gc.collect()
    assert collections_timed(2) == before + 1
