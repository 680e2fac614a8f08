"""``rest``: every vehicle POSTs ``/api/v1/vehicle/{id}/location`` at 1 Hz, open loop.

Each vehicle has its own small pool of keep-alive connections (one opened before the step;
more on demand while answers are late, up to ``connections_per_vehicle``), to the vehicle's
hub (:meth:`~scripts.capacity.plan.StepPlan.vehicle_port`, with its ``Host``). A message counts
as answered when its 200 arrives; latency runs from its intended send time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from scripts.capacity.clock import BenchClock, wire_text
from scripts.capacity.http_client import ConnectionPool, HttpProtocolError, request_template
from scripts.capacity.plan import StepPlan, measured_window
from scripts.capacity.recorder import Recorder
from scripts.capacity.tasks import for_each_bounded
from scripts.capacity.timetable import Timetable, Window, run_schedule

Ready = Callable[[], Awaitable[int]]
TIMESTAMP_MARKER = "T" * 24  # a contract timestamp's length


def location_body(index: int) -> str:
    """Vehicle ``index``'s location body, with a marker where the timestamp goes."""
    latitude = 35.68 + (index % 1000) / 100_000
    longitude = 139.76 + (index // 1000) / 100_000
    return (
        f'{{"timestamp":"{TIMESTAMP_MARKER}","location":{{"latitude":{latitude:.6f},'
        f'"longitude":{longitude:.6f},"heading":90.0,"speed":0.8,"accuracy":0.1}}}}'
    )


class RestLoad:
    """The REST location load of one worker; counters use ``prefix`` (``"load_"`` in estop)."""

    def __init__(
        self, plan: StepPlan, clock: BenchClock, recorder: Recorder, prefix: str = ""
    ) -> None:
        self._plan = plan
        self._clock = clock
        self._recorder = recorder
        self._prefix = prefix
        ports = [plan.vehicle_port(vehicle.index) for vehicle in plan.vehicles]
        self._requests = [
            request_template(
                plan.host_header_for(port),
                f"/api/v1/vehicle/{vehicle.vehicle_id}/location",
                vehicle.token,
                location_body(vehicle.index),
                TIMESTAMP_MARKER,
            )
            for vehicle, port in zip(plan.vehicles, ports, strict=True)
        ]
        self._pools = [
            ConnectionPool(plan.host, port, plan.connections_per_vehicle) for port in ports
        ]
        self._window = Window(0, 0)

    async def warm(self) -> None:
        """Open one connection per vehicle before the step (bounded concurrency and time)."""

        async def warm_one(pool: ConnectionPool) -> None:
            with trio.move_on_after(self._plan.timing.connect_timeout):
                try:
                    await pool.warm()
                except OSError:
                    self._recorder.count(self._prefix + "warm_failures")

        await for_each_bounded(self._pools, warm_one, self._plan.timing.connect_concurrency)

    async def run(self, start_ms: int) -> None:
        """Send the step's messages on schedule; blocks until the last is answered or timed out."""
        timing = self._plan.timing
        self._window = measured_window(self._plan.mode, timing, start_ms)
        timetable = Timetable(start_ms, self._window.end_ms, self._plan.population)
        events = timetable.events([vehicle.index for vehicle in self._plan.vehicles])
        async with trio.open_nursery() as messages:

            def fire(intended_ms: int, position: int) -> None:
                messages.start_soon(self._post, intended_ms, position)

            await run_schedule(self._clock, events, fire)

    async def aclose(self) -> None:
        """Close every idle connection."""
        with trio.CancelScope(shield=True):
            for pool in self._pools:
                await pool.aclose()

    async def _post(self, intended_ms: int, position: int) -> None:
        recorder = self._recorder
        prefix = self._prefix
        counted = self._window.counts(intended_ms)
        if counted:
            recorder.count(prefix + "sent")
            recorder.sample(prefix + "lag", self._clock.now() * 1000 - intended_ms)
        deadline = intended_ms / 1000 + self._plan.timing.timeout
        request = self._requests[position](wire_text(intended_ms))
        with trio.move_on_after(max(0.0, deadline - self._clock.now())) as scope:
            try:
                answer = await self._pools[position].request(request)
                answered_ms = self._clock.now() * 1000
            except (OSError, trio.BrokenResourceError, HttpProtocolError) as error:
                if counted:
                    recorder.error(prefix, f"connection_{type(error).__name__}")
                return
        if not counted:
            return
        if scope.cancelled_caught:
            recorder.count(prefix + "timeouts")
        elif answer.status == 200:
            recorder.count(prefix + "answered")
            recorder.sample(prefix + "latency", answered_ms - intended_ms)
        else:
            recorder.error(prefix, f"http_{answer.status}")


async def run_rest(plan: StepPlan, clock: BenchClock, recorder: Recorder, ready: Ready) -> None:
    """The ``rest`` mode of one worker: warm the connections, report ready, run the load."""
    load = RestLoad(plan, clock, recorder)
    try:
        await load.warm()
        start_ms = await ready()
        await load.run(start_ms)
    finally:
        await load.aclose()
