"""``fanout``: the ``ws`` load plus fleet sessions subscribed to ``*``, timing each delivery.

Delivery latency runs from each location's intended send time to its arrival at a session.
The share delivered is frames received over accepted locations times sessions (computed by the
orchestrator from all workers' counts). After the last ack the worker waits until no delivery
has arrived for ``QUIET_SECONDS`` (at most ``timeout``), so late deliveries are still seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from scripts.capacity.clock import BenchClock
from scripts.capacity.fleet_session import FleetSession
from scripts.capacity.modes.sockets import open_sessions, open_vehicle_sockets, send_locations
from scripts.capacity.plan import StepPlan, measured_window
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import Outstanding, for_each_bounded
from scripts.capacity.vehicle_socket import close_all

QUIET_SECONDS = 1.0


async def wait_quiet(
    clock: BenchClock, sessions: list[FleetSession], quiet: float, until: float
) -> None:
    """Return once no session has received a frame for ``quiet`` seconds, or at ``until``."""
    while sessions and clock.now() < until:
        last = max(session.last_frame for session in sessions)
        remaining = last + quiet - clock.now()
        if remaining <= 0:
            return
        await trio.sleep(min(remaining, max(0.0, until - clock.now())))


async def close_session(session: FleetSession) -> None:
    """Close one session (bounded, never raises)."""
    await session.aclose()


async def run_fanout(
    plan: StepPlan, clock: BenchClock, recorder: Recorder, ready: Callable[[], Awaitable[int]]
) -> None:
    """The ``fanout`` mode of one worker: sessions and vehicles, then the 1 Hz load."""
    outstanding = Outstanding()
    sessions = await open_sessions(plan, clock, recorder)
    vehicles = await open_vehicle_sockets(
        plan, plan.vehicles, clock=clock, recorder=recorder, outstanding=outstanding
    )
    try:
        async with trio.open_nursery() as readers:
            for session in sessions:
                readers.start_soon(session.serve)
            for vehicle in vehicles:
                readers.start_soon(vehicle.serve)
            start_ms = await ready()
            window = measured_window(plan.mode, plan.timing, start_ms)
            for session in sessions:
                session.window = window
            await send_locations(plan, clock, vehicles, window, start_ms, outstanding)
            until = window.end_ms / 1000 + plan.timing.timeout
            await wait_quiet(clock, sessions, QUIET_SECONDS, until)
            readers.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await for_each_bounded(sessions, close_session, plan.timing.connect_concurrency)
        await close_all(vehicles, plan.timing.connect_concurrency)
