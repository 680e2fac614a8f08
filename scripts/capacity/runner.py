"""The orchestrator's side of one step: spawn the generator workers, start them together,
sample the server over the measured window, collect and merge the workers' results.

Plain blocking code (no trio here): the orchestrator only waits on pipes and sleeps. Every
wait has a deadline; workers that outlive the step are terminated (they are our children).
"""

from __future__ import annotations

import multiprocessing
import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from scripts.capacity.clock import BenchClock
from scripts.capacity.plan import Credential, StepPlan, Timing, measured_window, step_bound
from scripts.capacity.procstats import ServerProbe, cpu_percent
from scripts.capacity.recorder import Recorder, merge
from scripts.capacity.worker import worker_main

START_LEAD = 0.5
"""Seconds between telling the workers the start time and the start itself."""
SPAWN_ALLOWANCE = 30.0
JOIN_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Server:
    """The server under test: where it listens, and how to sample it.

    Several hubs acting as one (``--hubs N``) are one server: ``ports`` lists them all (hub 0,
    on ``port``, first) and ``probe`` sums them. ``workers`` is each hub's worker processes.
    """

    name: str
    host: str
    port: int
    probe: ServerProbe
    ports: tuple[int, ...] = ()
    workers: int = 1

    @property
    def hubs(self) -> int:
        """How many hub processes (parents, with ``--workers``) serve the load."""
        return max(1, len(self.ports))


@dataclass(frozen=True, slots=True)
class StepRequest:
    """One step: the mode, its load vehicles, and what the mode needs besides."""

    mode: str
    vehicles: tuple[Credential, ...]
    sessions: int = 0
    session_token: str = ""
    targets: tuple[Credential, ...] = ()
    operator_token: str = ""


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Settings shared by every step of a run."""

    timing: Timing
    processes: int
    run_id: str
    estop_rate: float
    connections_per_vehicle: int


@dataclass
class StepOutcome:
    """What a step produced: merged counters and samples, and the server's readings."""

    recorder: Recorder
    window_seconds: float
    server_cpu_percent: float | None = None
    db_cpu_percent: float | None = None
    rss_bytes: int | None = None
    failures: list[str] = field(default_factory=list)


def worker_plans(server: Server, request: StepRequest, settings: RunnerSettings) -> list[StepPlan]:
    """Split a step over the workers: vehicle ``i`` goes to worker ``i % processes``."""
    vehicles = tuple(replace(vehicle, index=i) for i, vehicle in enumerate(request.vehicles))
    targets = tuple(replace(target, index=i) for i, target in enumerate(request.targets))
    count = max(1, min(settings.processes, max(len(vehicles), request.sessions, 1)))
    plans = []
    session_base = 0
    for worker in range(count):
        sessions = request.sessions // count + (worker < request.sessions % count)
        plans.append(
            StepPlan(
                mode=request.mode,
                host=server.host,
                port=server.port,
                worker=worker,
                run_id=settings.run_id,
                population=len(vehicles),
                vehicles=vehicles[worker::count],
                timing=settings.timing,
                sessions=sessions,
                session_token=request.session_token,
                targets=targets if worker == 0 else (),
                operator_token=request.operator_token,
                estop_rate=settings.estop_rate,
                connections_per_vehicle=settings.connections_per_vehicle,
                ports=server.ports,
                session_base=session_base,
            )
        )
        session_base += sessions
    return plans


def _receive(connection: Connection, deadline: float) -> tuple[str, object]:
    """The worker's next message, or ``("error", …)`` at the deadline or if it died."""
    try:
        if not connection.poll(max(0.0, deadline - time.monotonic())):
            return "error", "timed out waiting for the worker"
        message: tuple[str, object] = connection.recv()
    except (EOFError, OSError):
        return "error", "the worker exited without an answer"
    return message


def _stop(process: BaseProcess) -> None:
    process.join(JOIN_TIMEOUT)
    if process.is_alive():
        process.terminate()
        process.join(JOIN_TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join(JOIN_TIMEOUT)


def run_step(server: Server, request: StepRequest, settings: RunnerSettings) -> StepOutcome:
    """Run one step end to end; blocks for its duration (bounded by its step bound)."""
    timing = settings.timing
    plans = worker_plans(server, request, settings)
    context = multiprocessing.get_context("spawn")
    clock = BenchClock()
    workers: list[tuple[BaseProcess, Connection]] = []
    failures: list[str] = []
    recorders: list[Recorder] = []
    population = len(request.vehicles) + len(request.targets) + request.sessions
    outcome = StepOutcome(Recorder(), timing.seconds)
    try:
        for plan in plans:
            ours, theirs = context.Pipe()
            process = context.Process(target=worker_main, args=(theirs, plan), daemon=True)
            process.start()
            theirs.close()
            workers.append((process, ours))
        deadline = time.monotonic() + SPAWN_ALLOWANCE + timing.prepare_bound(population)
        for _, connection in workers:
            kind, value = _receive(connection, deadline)
            if kind != "ready":
                failures.append(str(value))
        if failures:
            for _, connection in workers:
                with suppress(OSError):
                    connection.send(("abort", None))
            outcome.failures = failures
            return outcome
        start_ms = round((clock.now() + START_LEAD) * 1000)
        for _, connection in workers:
            with suppress(OSError):
                connection.send(("start", start_ms))
        window = measured_window(request.mode, timing, start_ms)
        time.sleep(max(0.0, window.start_ms / 1000 - clock.now()))
        before = server.probe.sample()
        time.sleep(max(0.0, window.end_ms / 1000 - clock.now()))
        after = server.probe.sample()
        deadline = time.monotonic() + step_bound(request.mode, timing, population)
        for _, connection in workers:
            kind, value = _receive(connection, deadline)
            if kind == "result" and isinstance(value, Recorder):
                recorders.append(value)
            else:
                failures.append(str(value))
        outcome = StepOutcome(
            recorder=merge(recorders),
            window_seconds=window.seconds,
            server_cpu_percent=cpu_percent(before, after),
            db_cpu_percent=cpu_percent(before, after, database=True),
            rss_bytes=after.rss,
            failures=failures,
        )
        return outcome
    finally:
        for worker, pipe in workers:
            _stop(worker)
            pipe.close()
