"""``storm``: N vehicles connect within ``storm_window`` and all send a location at its end.

What a hub restart causes: every vehicle reconnects at once and reports. Each vehicle's
location is intended at the end of the connect window (the same moment for all) and is
answered by its ``telemetry_ack``; latency runs from that moment. Failed connects and error
frames are errors (the target is none). Sockets are then held for ``seconds``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from scripts.capacity.clock import BenchClock
from scripts.capacity.modes.holding import connect_on_time, hold
from scripts.capacity.plan import Credential, StepPlan, measured_window
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import Outstanding
from scripts.capacity.timetable import Window, spread_ms


async def storm_vehicle(
    plan: StepPlan,
    credential: Credential,
    clock: BenchClock,
    recorder: Recorder,
    window: Window,
    connect_ms: int,
    burst_ms: int,
) -> None:
    """One vehicle: connect at ``connect_ms``, report at ``burst_ms``, hold the socket."""
    vehicle = await connect_on_time(
        plan,
        credential,
        clock=clock,
        recorder=recorder,
        window=window,
        intended_ms=connect_ms,
        outstanding=Outstanding(),
    )
    if vehicle is None:
        recorder.count("sent")  # its location was due too; the failed connect is its error
        return
    async with trio.open_nursery() as lifetime:
        lifetime.start_soon(hold, clock, vehicle, window)
        await clock.sleep_until(burst_ms / 1000)
        await vehicle.send_location(burst_ms)


async def run_storm(
    plan: StepPlan, clock: BenchClock, recorder: Recorder, ready: Callable[[], Awaitable[int]]
) -> None:
    """The ``storm`` mode of one worker; blocks until the hold ends."""
    start_ms = await ready()
    window = measured_window(plan.mode, plan.timing, start_ms)
    connect_span_ms = round(plan.timing.storm_window * 1000)
    burst_ms = start_ms + connect_span_ms
    async with trio.open_nursery() as vehicles:
        for credential in plan.vehicles:
            connect_ms = spread_ms(start_ms, connect_span_ms, credential.index, plan.population)
            vehicles.start_soon(
                storm_vehicle, plan, credential, clock, recorder, window, connect_ms, burst_ms
            )
