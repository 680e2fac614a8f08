"""The simulated fleet: N vehicle actors in one nursery, a progress display, a clean stop.

:func:`simulate` blocks for the whole run. The run ends after ``duration`` or on the first
Ctrl-C/SIGTERM: every vehicle is asked to stop (close its socket with 1000, upload what it
still holds) and given ``STOP_GRACE`` seconds; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

import httpx
import trio

from hub.clock import utc_now
from hub.simulator.client import SimulatedVehicle
from hub.simulator.geo import Point, Waypoint, offset, random_route
from hub.simulator.hub_api import HubApi, SimulatorError
from hub.simulator.options import SimulationOptions
from hub.simulator.params import VehicleParams
from hub.simulator.reports import Stamper
from hub.simulator.stats import (
    FleetView,
    SimStats,
    fleet_view,
    progress_line,
    progress_table,
    totals,
)
from hub.simulator.vehicle_model import VehicleModel

log = logging.getLogger(__name__)

STOP_GRACE = 15.0
"""Seconds the vehicles get to close their sockets and upload their backlogs."""
HTTP_TIMEOUT = 10.0
TTY_REFRESH = 1.0
PIPE_REFRESH = 5.0
HOME_SPREAD_METRES = 60.0
STOPPING = "  stopping: closing sockets, uploading backlogs (Ctrl-C again to stop at once)"


def build_fleet(
    options: SimulationOptions,
    api: HubApi,
    stats: SimStats,
    wall_clock: Callable[[], datetime] = utc_now,
) -> list[SimulatedVehicle]:
    """The vehicles of a run; the same seed gives the same homes, routes and batteries.

    ``wall_clock`` is what the vehicles' timestamps say (tests make it follow trio's clock).
    """
    master = random.Random(options.seed)
    centre = Point(*options.site)
    params = VehicleParams(error_rate_per_minute=options.error_rate)
    fleet = []
    for index in range(options.vehicles):
        model_rng = random.Random(master.getrandbits(64))
        io_rng = random.Random(master.getrandbits(64))
        vehicle_id = options.vehicle_id(index)
        spread = HOME_SPREAD_METRES
        home = Waypoint(
            f"charger_{index + 1:03d}",
            offset(centre, model_rng.uniform(-spread, spread), model_rng.uniform(-spread, spread)),
        )
        model = VehicleModel(
            vehicle_id,
            home=home,
            route=random_route(model_rng, centre),
            rng=model_rng,
            stamper=Stamper(wall_clock),
            params=params,
        )
        fleet.append(
            SimulatedVehicle(
                model,
                api=api,
                base_url=options.url,
                stats=stats,
                rng=io_rng,
                offline_rate_per_minute=options.offline_rate,
                offline_seconds=options.offline_seconds,
                tick=options.tick,
            )
        )
    return fleet


def view_of(vehicles: list[SimulatedVehicle]) -> FleetView:
    """The fleet as the progress line shows it."""
    return fleet_view(
        (vehicle.model.state for vehicle in vehicles),
        connected=sum(vehicle.socket.connected for vehicle in vehicles),
        offline=sum(vehicle.offline for vehicle in vehicles),
        backlog=sum(len(vehicle.backlog) for vehicle in vehicles),
        stopped=sum(vehicle.stopped_reason is not None for vehicle in vehicles),
    )


class Simulation:
    """One run; :meth:`run` blocks until the run is over (call it inside trio)."""

    def __init__(
        self,
        options: SimulationOptions,
        *,
        stats: SimStats | None = None,
        out: TextIO | None = None,
        handle_signals: bool = True,
        http_transport: httpx.AsyncBaseTransport | None = None,
        wall_clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.options = options
        self.stats = stats or SimStats()
        self.vehicles: list[SimulatedVehicle] = []
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._out = out or sys.stdout
        self._handle_signals = handle_signals
        self._transport = http_transport
        self._wall_clock = wall_clock
        self._stop_requested = trio.Event()
        self._finished = 0

    def request_stop(self) -> None:
        """End the run as if its duration were up."""
        self._stop_requested.set()

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (trio's clock)."""
        if self.started_at is None:
            return 0.0
        end = trio.current_time() if self.finished_at is None else self.finished_at
        return end - self.started_at

    async def run(self) -> None:
        """Register and start every vehicle, show progress, stop on time or on a signal.

        Raises :class:`SimulatorError` if the hub cannot be reached or refuses the admin.
        """
        self.started_at = trio.current_time()
        try:
            limits = httpx.Limits(max_connections=max(20, 2 * self.options.vehicles))
            async with httpx.AsyncClient(
                base_url=self.options.url,
                timeout=HTTP_TIMEOUT,
                limits=limits,
                transport=self._transport,
            ) as http:
                await self._run_fleet(HubApi(http, self.stats))
        finally:
            self.finished_at = trio.current_time()

    async def _run_fleet(self, api: HubApi) -> None:
        try:
            admin = await api.admin_token(self.options.admin_username, self.options.admin_password)
        except httpx.TransportError as exc:
            raise SimulatorError(f"cannot reach the hub at {self.options.url}: {exc}") from exc
        self.vehicles = build_fleet(self.options, api, self.stats, self._wall_clock)
        async with trio.open_nursery() as display:
            display.start_soon(self._show_progress)
            if self._handle_signals:
                display.start_soon(self._watch_signals, display.cancel_scope)
            async with trio.open_nursery() as fleet:
                for vehicle in self.vehicles:
                    fleet.start_soon(self._run_vehicle, vehicle, admin)
                with trio.move_on_after(self.options.duration or math.inf):
                    await self._stop_requested.wait()
                for vehicle in self.vehicles:
                    vehicle.request_stop()
                fleet.cancel_scope.deadline = trio.current_time() + STOP_GRACE
            display.cancel_scope.cancel()

    def summary(self) -> str:
        """The closing totals."""
        return totals(self.elapsed, self.stats, view_of(self.vehicles))

    async def _run_vehicle(self, vehicle: SimulatedVehicle, admin_token: str) -> None:
        """Run one vehicle; a crash stops that vehicle only, with its reason recorded."""
        try:
            await vehicle.run(admin_token)
        except Exception as exc:  # a bug in one vehicle must not end the whole fleet
            vehicle.stopped_reason = f"crashed: {exc!r}"
            log.exception("%s crashed", vehicle.vehicle_id)
        finally:
            self._finished += 1
            if self._finished == len(self.vehicles):
                self._stop_requested.set()

    async def _show_progress(self) -> None:
        """A table redrawn in place every second on a terminal; a line every 5 s otherwise."""
        tty = self._out.isatty()
        drawn = 0
        while True:
            await trio.sleep(TTY_REFRESH if tty else PIPE_REFRESH)
            view = view_of(self.vehicles)
            if tty:
                lines = progress_table(self.elapsed, self.stats, view)
                if self._stop_requested.is_set():
                    lines.append(STOPPING)
                up = f"\x1b[{drawn}F" if drawn else ""
                self._out.write(up + "".join(f"\x1b[K{line}\n" for line in lines))
                drawn = len(lines)
            else:
                self._out.write(progress_line(self.elapsed, self.stats, view) + "\n")
            self._out.flush()

    async def _watch_signals(self, everything: trio.CancelScope) -> None:
        """First Ctrl-C/SIGTERM: stop cleanly. Second: stop now."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self._stop_requested.is_set():
                    everything.cancel()
                    return
                if not self._out.isatty():  # on a terminal the table shows it
                    self._out.write(STOPPING.strip() + "\n")
                self.request_stop()


def simulate(options: SimulationOptions, *, out: TextIO | None = None) -> int:
    """Run a simulation to its end and print the totals; the exit status."""
    out = out or sys.stdout
    simulation = Simulation(options, out=out)
    try:
        trio.run(simulation.run)
    except SimulatorError as exc:
        print(f"tvm-hub simulate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass  # a Ctrl-C that reached us before the signal watcher was listening
    print(simulation.summary(), file=out, flush=True)
    stopped = [vehicle for vehicle in simulation.vehicles if vehicle.stopped_reason]
    for vehicle in stopped:
        print(f"  {vehicle.vehicle_id} stopped: {vehicle.stopped_reason}", file=out)
    return 1 if simulation.vehicles and len(stopped) == len(simulation.vehicles) else 0
