"""How late the event loop wakes a task: the measure of a stall, whatever caused it.

A task asks to wake every :data:`INTERVAL` seconds and records how much later than asked it
ran (``event_loop_lag_seconds`` on ``/metrics``). Everything on the loop — every report, ack
and frame — waits as long as that task did; a garbage collection, a slow synchronous call or
plain overload all show here.
"""

from __future__ import annotations

import trio

from hub.metrics import loop_lag

INTERVAL = 0.1
"""Seconds between two measurements."""


async def watch_loop_lag(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Measure the loop's lag every :data:`INTERVAL` seconds, until cancelled."""
    task_status.started()
    while True:
        asked = trio.current_time() + INTERVAL
        await trio.sleep_until(asked)
        loop_lag.observe(trio.current_time() - asked)
