"""Opening many vehicle sockets and fleet sessions before a step, and the 1 Hz frame schedule.

Used by the ``ws``, ``fanout`` and ``estop`` modes. Every connect is bounded by the plan's
``connect_timeout`` and at most ``connect_concurrency`` run at once; a failure is counted as an
error of the step (the step cannot pass) and the vehicle or session is left out. Vehicles
and sessions go to their hubs as :class:`~scripts.capacity.plan.StepPlan` spreads them.
"""

from __future__ import annotations

import trio

from scripts.capacity.clock import BenchClock
from scripts.capacity.fleet_session import FleetSession, open_fleet_session
from scripts.capacity.plan import Credential, StepPlan
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import Outstanding, for_each_bounded
from scripts.capacity.timetable import Timetable, Window, run_schedule
from scripts.capacity.vehicle_socket import (
    CommandHandler,
    VehicleSocket,
    connect_error_kind,
    open_vehicle_socket,
)


async def open_vehicle_sockets(
    plan: StepPlan,
    credentials: tuple[Credential, ...],
    *,
    clock: BenchClock,
    recorder: Recorder,
    outstanding: Outstanding,
    on_command: CommandHandler | None = None,
    prefix: str = "",
) -> list[VehicleSocket]:
    """Connect every vehicle in ``credentials``; return the connected ones, by index.

    Blocks until all connects finished or timed out.
    """
    opened: list[VehicleSocket] = []

    async def connect(credential: Credential) -> None:
        with trio.move_on_after(plan.timing.connect_timeout) as scope:
            try:
                port = plan.vehicle_port(credential.index)
                client = await open_vehicle_socket(plan.host, port, credential)
            except Exception as error:
                recorder.error(prefix, connect_error_kind(error))
                return
        if scope.cancelled_caught:
            recorder.error(prefix, "connect_timeout")
            return
        opened.append(
            VehicleSocket(
                client,
                credential,
                clock=clock,
                recorder=recorder,
                timeout=plan.timing.timeout,
                outstanding=outstanding,
                on_command=on_command,
                prefix=prefix,
            )
        )

    await for_each_bounded(credentials, connect, plan.timing.connect_concurrency)
    opened.sort(key=lambda vehicle: vehicle.credential.index)
    return opened


async def open_sessions(
    plan: StepPlan, clock: BenchClock, recorder: Recorder
) -> list[FleetSession]:
    """Open ``plan.sessions`` fleet sessions subscribed to ``*``; count ``sessions`` opened."""
    opened: list[FleetSession] = []

    async def connect(number: int) -> None:
        port = plan.session_port(number)
        with trio.move_on_after(plan.timing.connect_timeout) as scope:
            try:
                client = await open_fleet_session(plan.host, port, plan.session_token)
            except Exception as error:
                recorder.error("", "session_" + connect_error_kind(error))
                return
        if scope.cancelled_caught:
            recorder.error("", "session_connect_timeout")
            return
        recorder.count("sessions")
        opened.append(FleetSession(client, clock=clock, recorder=recorder))

    await for_each_bounded(list(range(plan.sessions)), connect, plan.timing.connect_concurrency)
    return opened


async def send_locations(
    plan: StepPlan,
    clock: BenchClock,
    vehicles: list[VehicleSocket],
    window: Window,
    start_ms: int,
    outstanding: Outstanding,
) -> None:
    """Send every vehicle's location at 1 Hz from ``start_ms`` until the window ends, then
    wait (at most ``timeout``) for the last acks. Each send runs in its own task."""
    for vehicle in vehicles:
        vehicle.window = window
    timetable = Timetable(start_ms, window.end_ms, plan.population)
    events = timetable.events([vehicle.credential.index for vehicle in vehicles])
    async with trio.open_nursery() as sends:

        def fire(intended_ms: int, position: int) -> None:
            sends.start_soon(vehicles[position].send_location, intended_ms)

        await run_schedule(clock, events, fire)
    with trio.move_on_after(max(0.0, window.end_ms / 1000 + plan.timing.timeout - clock.now())):
        await outstanding.wait_empty()
