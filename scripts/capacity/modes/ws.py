"""``ws``: every vehicle holds its socket and sends a ``location`` frame at 1 Hz, open loop.

A frame counts as answered when the ``telemetry_ack`` with its timestamp arrives; pings from
the hub are answered with pongs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from scripts.capacity.clock import BenchClock
from scripts.capacity.modes.sockets import open_vehicle_sockets, send_locations
from scripts.capacity.plan import StepPlan, measured_window
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import Outstanding
from scripts.capacity.vehicle_socket import close_all


async def run_ws(
    plan: StepPlan, clock: BenchClock, recorder: Recorder, ready: Callable[[], Awaitable[int]]
) -> None:
    """The ``ws`` mode of one worker: connect, report ready, send, wait for the acks."""
    outstanding = Outstanding()
    vehicles = await open_vehicle_sockets(
        plan, plan.vehicles, clock=clock, recorder=recorder, outstanding=outstanding
    )
    try:
        async with trio.open_nursery() as readers:
            for vehicle in vehicles:
                readers.start_soon(vehicle.serve)
            start_ms = await ready()
            window = measured_window(plan.mode, plan.timing, start_ms)
            await send_locations(plan, clock, vehicles, window, start_ms, outstanding)
            readers.cancel_scope.cancel()
    finally:
        await close_all(vehicles, plan.timing.connect_concurrency)
