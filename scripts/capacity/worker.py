"""The generator process: runs one mode for one step and sends its :class:`Recorder` back.

Protocol over a ``multiprocessing`` pipe (the orchestrator's side is in :mod:`.runner`):

1. worker → ``("ready", None)`` once its connections are open;
2. orchestrator → ``("start", start_ms)`` (or ``("abort", None)``);
3. worker → ``("result", recorder)``, or ``("error", traceback text)`` if the mode raised.

Every wait is bounded: the worker gives up if no start arrives within the prepare bound, and
the whole step is cancelled after :func:`~scripts.capacity.plan.step_bound`.
"""

from __future__ import annotations

import gc
import time
import traceback
from multiprocessing.connection import Connection

import trio

from scripts.bench_common import raise_open_files_limit
from scripts.capacity.clock import BenchClock
from scripts.capacity.modes import RUNNERS
from scripts.capacity.plan import StepPlan, measured_window, step_bound
from scripts.capacity.recorder import Recorder
from scripts.capacity.timetable import Window


class StepAbortedError(Exception):
    """The orchestrator called the step off (another worker failed, or it timed out)."""


async def receive(connection: Connection) -> tuple[str, object]:
    """The next message from the orchestrator; blocks until one arrives (cancellable)."""
    while not connection.poll():
        await trio.lowlevel.wait_readable(connection.fileno())
    message: tuple[str, object] = connection.recv()
    return message


async def measure_cpu(clock: BenchClock, window: Window, recorder: Recorder) -> None:
    """Record this process's CPU seconds over the measured window (partial if cancelled)."""
    await clock.sleep_until(window.start_ms / 1000)
    started = time.process_time()
    try:
        await clock.sleep_until(window.end_ms / 1000)
    finally:
        recorder.generator_cpu_seconds = time.process_time() - started


async def run_plan(connection: Connection, plan: StepPlan) -> Recorder:
    """Run the plan's mode; blocks until the step is over (bounded by its step bound)."""
    clock = BenchClock()
    recorder = Recorder()
    runner = RUNNERS[plan.mode]
    vehicles = len(plan.vehicles) + len(plan.targets) + plan.sessions
    with trio.fail_after(step_bound(plan.mode, plan.timing, vehicles)):
        async with trio.open_nursery() as worker:

            async def ready() -> int:
                gc.collect()
                gc.freeze()  # what was set up stays; collections during the step stay short
                connection.send(("ready", None))
                with trio.fail_after(plan.timing.prepare_bound(vehicles)):
                    kind, value = await receive(connection)
                if kind != "start" or not isinstance(value, int):
                    raise StepAbortedError(kind)
                window = measured_window(plan.mode, plan.timing, value)
                worker.start_soon(measure_cpu, clock, window, recorder)
                return value

            await runner(plan, clock, recorder, ready)
            worker.cancel_scope.cancel()
    return recorder


def worker_main(connection: Connection, plan: StepPlan) -> None:
    """Process entry point (``multiprocessing`` target)."""
    raise_open_files_limit()
    try:
        recorder = trio.run(run_plan, connection, plan)
    except StepAbortedError:
        connection.send(("error", "aborted by the orchestrator"))
    except BaseException:
        connection.send(("error", traceback.format_exc()))
    else:
        connection.send(("result", recorder))
    finally:
        connection.close()
