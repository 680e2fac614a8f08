"""The loop that runs a vehicle model on trio's clock (so tests can run it on ``MockClock``)."""

from __future__ import annotations

from collections.abc import Callable

import trio

from hub.simulator.reports import Emission
from hub.simulator.vehicle_model import VehicleModel


async def drive(
    model: VehicleModel, deliver: Callable[[Emission], None], tick: float = 1.0
) -> None:
    """Advance ``model`` by the time trio's clock says has passed, every ``tick`` seconds.

    Hands each emission to ``deliver`` (which must not block). Runs until cancelled. Ticks
    stay on a fixed grid, so a late wake-up shortens the next tick instead of shifting them.
    """
    for emission in model.step(0.0):
        deliver(emission)
    last = deadline = trio.current_time()
    while True:
        deadline = max(deadline + tick, trio.current_time())
        await trio.sleep_until(deadline)
        now = trio.current_time()
        for emission in model.step(now - last):
            deliver(emission)
        last = now
