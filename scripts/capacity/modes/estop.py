"""``estop``: emergency stops to vehicles on their sockets while a REST load runs.

The REST load (counters ``load_*``) runs on every worker. Worker 0 also holds the ``targets``'
sockets and acts as the operator: at ``estop_rate`` per second (open loop) it POSTs
``{"type": "emergency_stop", …}`` to ``/api/v1/vehicle/{id}/commands?wait=false`` for the
targets in turn. A stop is answered when the ``emergency_stop`` frame arrives on the target's
socket; latency runs from the POST's intended send time. The target acknowledges
``executed`` and the operator then sends ``resume`` (acknowledged ``accepted``), so the
vehicle is ready for its next stop.

With several hubs the operator sends each stop (and resume) to a hub other than the one that
holds the target's socket (:meth:`~scripts.capacity.plan.StepPlan.operator_port`), so every
stop crosses between hubs; it keeps a connection pool per hub.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from scripts.capacity.clock import BenchClock
from scripts.capacity.http_client import ConnectionPool, HttpProtocolError, post_request
from scripts.capacity.modes.rest import RestLoad
from scripts.capacity.modes.sockets import open_vehicle_sockets
from scripts.capacity.plan import Credential, StepPlan, measured_window
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import Outstanding
from scripts.capacity.timetable import Window
from scripts.capacity.vehicle_socket import VehicleSocket, close_all

OPERATOR_CONNECTIONS = 16


class Operator:
    """Sends stops and resumes over REST and matches stops to their arrival on the sockets."""

    def __init__(self, plan: StepPlan, clock: BenchClock, recorder: Recorder) -> None:
        self._plan = plan
        self._clock = clock
        self._recorder = recorder
        self._pools = {
            port: ConnectionPool(plan.host, port, OPERATOR_CONNECTIONS) for port in plan.hub_ports
        }
        self._stops: dict[str, tuple[int, bool]] = {}
        self.outstanding = Outstanding()
        self.window = Window(0, 0)
        self.nursery: trio.Nursery | None = None

    def command_id(self, kind: str, number: int) -> str:
        """A unique command id (emergency stops use the ``cmd_ESTOP_`` prefix)."""
        head = "cmd_ESTOP" if kind == "emergency_stop" else "cmd_RESUME"
        return f"{head}_{self._plan.run_id}_{self._plan.worker}_{number}"

    async def stop(self, intended_ms: int, target: VehicleSocket, number: int) -> None:
        """POST one emergency stop for ``target`` (the answer itself is not the latency)."""
        counted = self.window.counts(intended_ms)
        command_id = self.command_id("emergency_stop", number)
        if counted:
            self._recorder.count("sent")
        self._stops[command_id] = (intended_ms, counted)
        self.outstanding.add()
        body = {"type": "emergency_stop", "command_id": command_id, "reason": "bench"}
        status = await self._post(target.credential, body)
        if status not in (200, 202) and self._stops.pop(command_id, None) is not None:
            self.outstanding.remove()
            if counted:
                self._recorder.error("", f"stop_http_{status}")

    async def on_command(self, vehicle: VehicleSocket, frame: dict[str, Any]) -> None:
        """A target's command handler: time the stop, ack it, then resume the vehicle."""
        command_id = str(frame["command_id"])
        kind = frame.get("type")
        if kind == "emergency_stop":
            entry = self._stops.pop(command_id, None)
            if entry is not None:
                self.outstanding.remove()
                intended_ms, counted = entry
                latency = self._clock.now() * 1000 - intended_ms
                if counted and latency > self._plan.timing.timeout * 1000:
                    self._recorder.count("timeouts")
                elif counted:
                    self._recorder.count("answered")
                    self._recorder.sample("latency", latency)
            ack = {"type": "command_ack", "command_id": command_id, "status": "executed"}
            await vehicle.send_json(ack)
            if entry is not None and self.nursery is not None:
                self.nursery.start_soon(self._resume, vehicle, command_id)
        else:
            ack = {"type": "command_ack", "command_id": command_id, "status": "accepted"}
            await vehicle.send_json(ack)

    async def run_stops(self, targets: list[VehicleSocket], start_ms: int) -> None:
        """Fire stops at ``estop_rate`` per second, round robin over ``targets``, until the
        window ends; then wait (at most ``timeout``) for the last to arrive."""
        plan = self._plan
        spacing_ms = max(1, round(1000 / plan.estop_rate))
        count = (self.window.end_ms - start_ms) // spacing_ms if targets else 0
        async with trio.open_nursery() as stops:
            for number in range(count):
                intended_ms = start_ms + number * spacing_ms
                await self._clock.sleep_until(intended_ms / 1000)
                target = targets[number % len(targets)]
                stops.start_soon(self.stop, intended_ms, target, number)
        until = self.window.end_ms / 1000 + plan.timing.timeout
        with trio.move_on_after(max(0.0, until - self._clock.now())):
            await self.outstanding.wait_empty()

    def give_up(self) -> None:
        """Count stops that never reached their vehicle as timed out."""
        lost = sum(1 for _, counted in self._stops.values() if counted)
        self._recorder.count("timeouts", lost)
        self._stops.clear()
        self.outstanding.remove(self.outstanding.count)

    async def aclose(self) -> None:
        """Close the operator's connections."""
        with trio.CancelScope(shield=True):
            for pool in self._pools.values():
                await pool.aclose()

    async def _resume(self, vehicle: VehicleSocket, stop_id: str) -> None:
        number = stop_id.rsplit("_", 1)[1]
        body = {"type": "resume", "command_id": self.command_id("resume", int(number))}
        status = await self._post(vehicle.credential, body)
        if status not in (200, 202):
            self._recorder.count(f"resume_http_{status}")

    async def _post(self, target: Credential, body: dict[str, Any]) -> int:
        """POST a command for ``target`` to its operator hub; the HTTP status, or 0 when the
        connection failed or timed out."""
        plan = self._plan
        port = plan.operator_port(target.index)
        request = post_request(
            plan.host_header_for(port),
            f"/api/v1/vehicle/{target.vehicle_id}/commands?wait=false",
            plan.operator_token,
            json.dumps(body).encode(),
        )
        with trio.move_on_after(plan.timing.timeout):
            try:
                return (await self._pools[port].request(request)).status
            except (OSError, trio.BrokenResourceError, HttpProtocolError):
                return 0
        return 0


async def run_estop(
    plan: StepPlan, clock: BenchClock, recorder: Recorder, ready: Callable[[], Awaitable[int]]
) -> None:
    """The ``estop`` mode of one worker: REST load, plus targets and operator on worker 0."""
    load = RestLoad(plan, clock, recorder, prefix="load_")
    operator = Operator(plan, clock, recorder)
    targets = await open_vehicle_sockets(
        plan,
        plan.targets,
        clock=clock,
        recorder=recorder,
        outstanding=Outstanding(),
        on_command=operator.on_command,
    )
    try:
        await load.warm()
        async with trio.open_nursery() as step:
            operator.nursery = step
            for target in targets:
                step.start_soon(target.serve)
            start_ms = await ready()
            operator.window = measured_window(plan.mode, plan.timing, start_ms)
            for target in targets:
                target.window = operator.window
            async with trio.open_nursery() as work:
                work.start_soon(load.run, start_ms)
                work.start_soon(operator.run_stops, targets, start_ms)
            operator.give_up()
            step.cancel_scope.cancel()
    finally:
        await load.aclose()
        await operator.aclose()
        await close_all(targets, plan.timing.connect_concurrency)
