"""``idle``: open N vehicle sockets spread over ``ramp`` seconds, hold them, answer pings.

A connect counts as sent at its intended time and answered at its ``welcome``; its latency
(series ``connect``) runs from the intended moment. Failed connects and sockets the hub drops
while held are errors. The orchestrator reads the hub's RSS at the end of the hold.
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


async def idle_vehicle(
    plan: StepPlan,
    credential: Credential,
    clock: BenchClock,
    recorder: Recorder,
    window: Window,
    intended_ms: int,
) -> None:
    """One idle vehicle: connect on time, then hold until the window ends."""
    recorder.count("sent")
    vehicle = await connect_on_time(
        plan,
        credential,
        clock=clock,
        recorder=recorder,
        window=window,
        intended_ms=intended_ms,
        outstanding=Outstanding(),
    )
    if vehicle is None:
        return
    recorder.count("answered")
    await hold(clock, vehicle, window)


async def run_idle(
    plan: StepPlan, clock: BenchClock, recorder: Recorder, ready: Callable[[], Awaitable[int]]
) -> None:
    """The ``idle`` mode of one worker; blocks until the hold ends."""
    start_ms = await ready()
    window = measured_window(plan.mode, plan.timing, start_ms)
    ramp_ms = round(plan.timing.ramp * 1000)
    async with trio.open_nursery() as vehicles:
        for credential in plan.vehicles:
            intended_ms = spread_ms(start_ms, ramp_ms, credential.index, plan.population)
            vehicles.start_soon(
                idle_vehicle, plan, credential, clock, recorder, window, intended_ms
            )
