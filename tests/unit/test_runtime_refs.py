"""Tell and ask through an ActorRef: round trips, caller deadlines, errors, backpressure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio
import trio.testing

from hub.runtime import ActorRef, Inbox, MailboxFullError, Reply, Supervisor
from hub.runtime.testing import open_supervisor

HANG_GUARD = 600.0  # virtual seconds: the autojump clock gets there only if a test is stuck


@dataclass(frozen=True, slots=True)
class Add:
    amount: int


@dataclass(frozen=True, slots=True)
class GetTotal:
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class Divide:
    divisor: int
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class Ignore:
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


CounterMessage = Add | GetTotal | Divide | Ignore | Pause


class Counter:
    """Adds numbers; answers totals; refuses to divide by zero."""

    def __init__(self) -> None:
        self.total = 0

    async def run(
        self, inbox: Inbox[CounterMessage], *, task_status: trio.TaskStatus[None]
    ) -> None:
        task_status.started()
        async for message in inbox:
            match message:
                case Add(amount):
                    self.total += amount
                case GetTotal(reply):
                    reply.send(self.total)
                case Divide(divisor, reply):
                    if divisor == 0:
                        reply.fail(ValueError("cannot divide by zero"))
                    else:
                        reply.send(self.total // divisor)
                case Ignore():
                    pass
                case Pause(seconds):
                    await trio.sleep(seconds)


@asynccontextmanager
async def running_counter(
    **options: int,
) -> AsyncIterator[tuple[Supervisor, ActorRef[CounterMessage]]]:
    """A supervisor running one :class:`Counter`, ``counter c1`` (started with ``options``, such
    as ``mailbox_size``): ``(supervisor, counter)``. The body fails after HANG_GUARD."""
    with trio.fail_after(HANG_GUARD):
        async with open_supervisor() as supervisor:
            yield supervisor, await supervisor.start_child("counter", "c1", Counter, **options)


async def test_ask_answers_after_earlier_tells_in_mailbox_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_counter() as (_, counter):
        await counter.tell(Add(2))
        counter.tell_nowait(Add(40))
        assert await counter.ask(GetTotal) == 42
        assert await counter.ask(lambda reply: Divide(2, reply)) == 21
        assert (counter.kind, counter.key, counter.stopped) == ("counter", "c1", False)


async def test_ask_gives_up_at_the_callers_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_counter() as (_, counter):
        with pytest.raises(trio.TooSlowError), trio.fail_after(2.5):
            await counter.ask(Ignore)
        assert trio.current_time() == 2.5
        # The actor is unharmed and answers the next ask at once.
        assert await counter.ask(GetTotal) == 0
        assert trio.current_time() == 2.5


async def test_ask_raises_the_error_the_actor_fails_the_reply_with(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_counter() as (supervisor, counter):
        with pytest.raises(ValueError, match="cannot divide by zero"):
            await counter.ask(lambda reply: Divide(0, reply))
        counter.tell_nowait(Add(9))
        assert await counter.ask(lambda reply: Divide(3, reply)) == 3
        assert supervisor.children()[0].restarts == 0


async def test_a_full_mailbox_blocks_tell_until_space_frees(
    autojump_clock: trio.testing.MockClock,
) -> None:
    told_at: list[float] = []

    async def tell_one_more(counter: ActorRef[CounterMessage]) -> None:
        await counter.tell(Add(3))
        told_at.append(trio.current_time())

    async with running_counter(mailbox_size=2) as (_, counter):
        counter.tell_nowait(Pause(5))  # taken at once: the actor is busy until t=5
        await trio.testing.wait_all_tasks_blocked()
        counter.tell_nowait(Add(1))
        counter.tell_nowait(Add(2))
        with pytest.raises(MailboxFullError):
            counter.tell_nowait(Add(100))
        async with trio.open_nursery() as senders:
            senders.start_soon(tell_one_more, counter)
            await trio.sleep(4.9)
            assert told_at == []
        assert told_at == [5.0]
        assert await counter.ask(GetTotal) == 6


async def test_ask_requires_the_reply_slot_in_the_reply_attribute(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_counter() as (_, counter):
        with pytest.raises(TypeError, match="'reply' attribute"):
            await counter.ask(lambda reply: Add(1))
        assert await counter.ask(GetTotal) == 0


async def test_a_reply_takes_the_first_answer_and_ignores_later_ones() -> None:
    reply: Reply[str] = Reply()
    assert reply.send("first")
    assert not reply.send("second")
    assert not reply.fail(RuntimeError("too late"))
    with trio.fail_after(1):
        assert await reply.wait() == "first"
    assert reply.answered
