"""One run of a read, shared by the callers who ask for it at the same time.

Fifty dashboards that reconnect together after a hub restart each ask for the whole fleet's
snapshot; with ten thousand vehicles one snapshot is a few hundred milliseconds of work, and
fifty of them in a row outlast the snapshot timeout. :class:`SharedRead` lets them share:
callers who ask while a run is waiting to start join it, so N callers at once cost two runs
(the one already going and the next), not N.

No caller gets the result of a run that began before it asked: a run starts only once the
previous one has ended, and callers who arrive after it started gather for the next. So a
shared answer is never older than the question, which is what a subscriber needs to know
that nothing it subscribed to happened between the snapshot and its live events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import trio

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


def error_for_caller(error: E) -> E:
    """One failure answered to several callers, as a fresh exception for one of them.

    Raising the one shared object in every caller would add each caller's frames to its one
    traceback (a failed batch of a thousand reports would log tracebacks thousands of frames
    long, just when the hub is busiest) and mix the tracebacks of different tasks. The copy
    has the same type, arguments and attributes, is made without running ``__init__`` again
    (whose parameters need not be the arguments it stored), and is caused by the shared one.
    """
    fresh = type(error).__new__(type(error), *error.args)
    fresh.__dict__.update(getattr(error, "__dict__", {}))
    fresh.__cause__ = error
    return fresh


@dataclass(slots=True, eq=False)
class _Run(Generic[T]):
    done: trio.Event = field(default_factory=trio.Event)
    finished: bool = False  # still False when done: the leader was cancelled mid-run
    value: T | None = None
    error: Exception | None = None

    def result(self) -> T:
        if self.error is not None:
            raise error_for_caller(self.error)
        return cast(T, self.value)


class SharedRead(Generic[T]):
    """``await shared()`` runs ``read``, or joins the callers waiting for its next run.

    The value is shared as is: callers must not change it.
    """

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._one_at_a_time = trio.Lock()
        self._gathering: _Run[T] | None = None  # the next run, not started yet
        self.runs = 0

    async def __call__(self) -> T:
        """The result of a run that began after this call.

        Blocks for the run in progress (if any) and then the next one. Raises what that run
        raised (a copy of its own for each caller, see :func:`error_for_caller`). Cancelling
        a caller leaves the others waiting; when the caller that does the run is cancelled,
        those waiting for it start another run.
        """
        while True:
            run = self._gathering
            if run is None:
                run = self._gathering = _Run[T]()
                return await self._lead(run)
            await run.done.wait()
            if run.finished:
                return run.result()

    async def _lead(self, run: _Run[T]) -> T:
        try:
            async with self._one_at_a_time:
                self._gathering = None  # whoever asks from now on waits for the next run
                self.runs += 1
                try:
                    run.value = await self._read()
                except Exception as error:
                    run.error = error
                    run.finished = True
                    raise
                run.finished = True  # not reached when cancelled: the waiters run it again
        finally:
            if self._gathering is run:
                self._gathering = None
            run.done.set()
        return run.result()
