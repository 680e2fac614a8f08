"""SharedRead on trio's MockClock: callers at once share runs, and no caller gets an answer
read before it asked (a subscriber's snapshot must not predate its subscription)."""

from __future__ import annotations

import traceback
from types import TracebackType

import pytest
import trio
import trio.testing

from hub.errors import UnavailableError
from hub.shared_read import SharedRead

READ_SECONDS = 1.0


class TimedRead:
    """A read that takes a second and answers with the virtual time it started at."""

    def __init__(self) -> None:
        self.failures: list[Exception] = []

    async def __call__(self) -> float:
        started = trio.current_time()
        await trio.sleep(READ_SECONDS)
        if self.failures:
            raise self.failures.pop()
        return started


async def ask(shared: SharedRead[float], answers: list[tuple[float, float]]) -> None:
    """Record (when it asked, when the run it got began), to the millisecond."""
    asked = trio.current_time()
    started = await shared()
    answers.append((round(asked, 3), round(started, 3)))


async def test_fifty_callers_at_once_share_one_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    shared = SharedRead(TimedRead())
    answers: list[tuple[float, float]] = []
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(ask, shared, answers)
    assert shared.runs == 1  # all fifty asked before the run began
    assert answers == [(0.0, 0.0)] * 50
    assert trio.current_time() == READ_SECONDS


async def test_callers_arriving_during_a_run_share_the_next_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    shared = SharedRead(TimedRead())
    answers: list[tuple[float, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, shared, answers)
        await trio.sleep(0.5)
        for _ in range(49):
            nursery.start_soon(ask, shared, answers)
    assert shared.runs == 2
    assert sorted(answers) == [(0.0, 0.0)] + [(0.5, 1.0)] * 49


async def test_a_failed_run_fails_everyone_who_shared_it_and_the_next_call_reads_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    read = TimedRead()
    read.failures.append(UnavailableError("Database unavailable", retry_after=7))
    shared = SharedRead(read)
    refused: list[str] = []
    tracebacks: list[TracebackType | None] = []
    errors: list[UnavailableError] = []

    async def ask_expecting_refusal() -> None:
        with pytest.raises(UnavailableError) as raised:
            await shared()
        refused.append(raised.value.error)
        tracebacks.append(raised.value.__traceback__)
        errors.append(raised.value)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(ask_expecting_refusal)
    assert refused == ["service_unavailable"] * 3
    assert len({id(error) for error in errors}) == 3  # each caller raises its own copy
    assert {(str(error), error.retry_after) for error in errors} == {
        ("service_unavailable: Database unavailable", 7)
    }
    assert max(len(traceback.extract_tb(each)) for each in tracebacks) < 5
    assert await shared() == 1.0  # a new run, after the failed one
    assert shared.runs == 2


async def test_when_the_caller_who_would_run_it_is_cancelled_a_waiting_one_runs_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    shared = SharedRead(TimedRead())
    answers: list[tuple[float, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, shared, answers)  # runs the first read, 0 s to 1 s
        await trio.sleep(0.2)
        cancelled_leader = trio.CancelScope()

        async def ask_until_cancelled() -> None:
            with cancelled_leader:
                await ask(shared, answers)

        nursery.start_soon(ask_until_cancelled)  # would run the next read
        await trio.sleep(0.1)
        nursery.start_soon(ask, shared, answers)  # waits for that next read
        await trio.sleep(0.2)
        cancelled_leader.cancel()
    assert sorted(answers) == [(0.0, 0.0), (0.3, 1.0)]
    assert shared.runs == 2
