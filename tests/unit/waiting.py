"""Waiting in tests, with a failure that says what was awaited and what was seen instead.

A bare ``trio.TooSlowError`` from a test's hang guard says only that something hung;
these helpers turn a wait that runs out into an ``AssertionError`` naming the condition and
the state the test saw when it gave up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio
import trio.testing

POLL = 0.01  # virtual seconds between looks at a condition (tests run on autojump_clock)


class WaitedTooLongError(AssertionError):
    """A wait in a test ran out: the message says for what, and what was seen."""


@contextmanager
def waiting_for(what: str, seen: Callable[[], Any], seconds: float) -> Iterator[None]:
    """Run the body for at most ``seconds``; if it is still waiting then, fail naming it.

    Only this wait's own deadline is reported so; a deadline outside it propagates as it is.
    """
    with trio.move_on_after(seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise WaitedTooLongError(f"waited {seconds:g} s for {what}; saw {seen()!r}")


async def until(
    condition: Callable[[], bool], *, what: str, seen: Callable[[], Any], seconds: float
) -> None:
    """Return once ``condition()`` holds, else fail naming it after ``seconds``.

    It is looked at when every other task is blocked, then every :data:`POLL` s, so a
    condition that needs no time to come true is met without moving the clock.
    """
    with waiting_for(what, seen, seconds):
        await trio.testing.wait_all_tasks_blocked()
        # Polling on purpose: the code under test has no event to wait on for the condition.
        while not condition():  # noqa: ASYNC110
            await trio.sleep(POLL)
