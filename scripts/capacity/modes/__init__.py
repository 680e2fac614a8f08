"""One module per benchmark mode; :data:`RUNNERS` maps a mode's name to its worker function.

A runner opens what must exist before the step (connections, sockets, subscriptions), awaits
``ready()`` (which reports the worker ready and returns the step's start time in epoch
milliseconds), runs the open-loop schedule and returns once every message was answered or
timed out. Runners record into the worker's :class:`~scripts.capacity.recorder.Recorder`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from scripts.capacity.clock import BenchClock
from scripts.capacity.modes.estop import run_estop
from scripts.capacity.modes.fanout import run_fanout
from scripts.capacity.modes.idle import run_idle
from scripts.capacity.modes.rest import run_rest
from scripts.capacity.modes.storm import run_storm
from scripts.capacity.modes.ws import run_ws
from scripts.capacity.plan import StepPlan
from scripts.capacity.recorder import Recorder

Runner = Callable[[StepPlan, BenchClock, Recorder, Callable[[], Awaitable[int]]], Awaitable[None]]

RUNNERS: dict[str, Runner] = {
    "rest": run_rest,
    "ws": run_ws,
    "fanout": run_fanout,
    "idle": run_idle,
    "estop": run_estop,
    "storm": run_storm,
}
