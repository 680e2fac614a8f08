"""Connecting one vehicle at its intended time and holding its socket (``idle``, ``storm``)."""

from __future__ import annotations

import trio

from scripts.capacity.clock import BenchClock
from scripts.capacity.plan import Credential, StepPlan
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import Outstanding
from scripts.capacity.timetable import Window
from scripts.capacity.vehicle_socket import VehicleSocket, connect_error_kind, open_vehicle_socket

HOLD_MARGIN = 1.0
"""Seconds sockets stay open after the window, so the server is sampled with them open."""


async def connect_on_time(
    plan: StepPlan,
    credential: Credential,
    *,
    clock: BenchClock,
    recorder: Recorder,
    window: Window,
    intended_ms: int,
    outstanding: Outstanding,
) -> VehicleSocket | None:
    """Connect at (or, if late, right after) ``intended_ms`` to the vehicle's hub; sample
    ``connect`` latency.

    Returns the socket, or None after counting the failure as an error. Blocks for at most
    the plan's ``connect_timeout``.
    """
    await clock.sleep_until(intended_ms / 1000)
    with trio.move_on_after(plan.timing.connect_timeout) as scope:
        try:
            port = plan.vehicle_port(credential.index)
            client = await open_vehicle_socket(plan.host, port, credential)
        except Exception as error:
            recorder.error("", connect_error_kind(error))
            return None
    if scope.cancelled_caught:
        recorder.error("", "connect_timeout")
        return None
    recorder.sample("connect", clock.now() * 1000 - intended_ms)
    vehicle = VehicleSocket(
        client,
        credential,
        clock=clock,
        recorder=recorder,
        timeout=plan.timing.timeout,
        outstanding=outstanding,
    )
    vehicle.window = window
    return vehicle


async def hold(clock: BenchClock, vehicle: VehicleSocket, window: Window) -> None:
    """Serve the socket (pongs, acks) until the window's end plus a margin, then close it."""
    try:
        with trio.move_on_after(max(0.0, window.end_ms / 1000 + HOLD_MARGIN - clock.now())):
            await vehicle.serve()
    finally:
        await vehicle.aclose()
