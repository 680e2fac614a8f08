"""The loop-lag watch: a stall of the event loop shows up as its length."""

from __future__ import annotations

import trio
import trio.testing

from hub.loop_lag import INTERVAL, watch_loop_lag
from hub.metrics import REGISTRY


def lag_samples() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("event_loop_lag_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("event_loop_lag_seconds_sum") or 0.0
    return count, total


async def test_a_loop_that_stands_still_is_measured_by_how_long(
    autojump_clock: trio.testing.MockClock,
) -> None:
    count, total = lag_samples()
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_loop_lag)
        await trio.sleep(10 * INTERVAL - INTERVAL / 2)  # ten wake-ups, each on time
        assert lag_samples() == (count + 9, total)
        autojump_clock.jump(0.75)  # the loop "stalls": the next wake-up comes 0.7 s late
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    new_count, new_total = lag_samples()
    assert new_count == count + 10
    assert abs(new_total - total - 0.7) < 1e-9
