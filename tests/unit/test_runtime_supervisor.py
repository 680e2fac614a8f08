"""One-for-one supervision on trio's virtual clock: backoff, escalation, stop, what survives.

Restart moments are asserted to the nanosecond (``EXACT``): the backoff delays are exact,
only the float sums of 0.1 + 0.2 + … differ from the decimal literals in the last bit.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing

from hub.runtime import (
    ActorCrashedError,
    ActorRef,
    ActorStoppedError,
    EscalationError,
    Inbox,
    Reply,
    RestartPolicy,
    Supervisor,
)
from hub.runtime.policy import RestartHistory
from hub.runtime.testing import open_supervisor

HANG_GUARD = 600.0  # virtual seconds: the autojump clock gets there only if a test is stuck


def exact(*times: float) -> object:
    return pytest.approx(list(times), rel=0, abs=1e-9)


class Boom(Exception):
    """The crash the tests inject."""


@dataclass(frozen=True, slots=True)
class Record:
    value: int


@dataclass(frozen=True, slots=True)
class Crash:
    label: str = "boom"


@dataclass(frozen=True, slots=True)
class CrashWhileAsked:
    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class Keep:
    """A request the worker keeps to answer later (like a command waiting for its ack)."""

    reply: Reply[int]


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Quit:
    pass


WorkerMessage = Record | Crash | CrashWhileAsked | Keep | Pause | Quit


@dataclass
class Journal:
    """What every incarnation of a worker did; outlives the incarnations, like a database."""

    starts: list[float] = field(default_factory=list)
    handled: list[tuple[int, int]] = field(default_factory=list)  # (incarnation, value)


class Worker:
    def __init__(self, journal: Journal, *, fail_to_start: bool = False) -> None:
        self.journal = journal
        self.fail_to_start = fail_to_start
        self.kept: list[Reply[int]] = []

    async def run(self, inbox: Inbox[WorkerMessage], *, task_status: trio.TaskStatus[None]) -> None:
        if self.fail_to_start:
            raise Boom("cannot load state")
        incarnation = len(self.journal.starts)
        self.journal.starts.append(trio.current_time())
        task_status.started()
        async for message in inbox:
            match message:
                case Record(value):
                    self.journal.handled.append((incarnation, value))
                case Crash(label):
                    raise Boom(label)
                case CrashWhileAsked():
                    raise Boom("crashed while asked")
                case Keep(reply):
                    self.kept.append(reply)
                case Pause(seconds):
                    await trio.sleep(seconds)
                case Quit():
                    return


def worker_factory(journal: Journal) -> Callable[[], Worker]:
    return lambda: Worker(journal)


@asynccontextmanager
async def guarded_supervisor(policy: RestartPolicy | None = None) -> AsyncIterator[Supervisor]:
    """``open_supervisor(policy)``, with the body failing after HANG_GUARD virtual seconds."""
    with trio.fail_after(HANG_GUARD):
        async with open_supervisor(policy) as supervisor:
            yield supervisor


@asynccontextmanager
async def supervised_worker(
    journal: Journal, policy: RestartPolicy | None = None
) -> AsyncIterator[tuple[Supervisor, ActorRef[WorkerMessage]]]:
    """A :func:`guarded_supervisor` and its child ``worker w1``, a :class:`Worker` writing to
    ``journal``: ``(supervisor, worker)``."""
    async with guarded_supervisor(policy) as supervisor:
        worker = await supervisor.start_child("worker", "w1", worker_factory(journal))
        yield supervisor, worker


async def test_crashes_restart_after_0_1_then_0_2_then_0_4_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    async with supervised_worker(journal) as (supervisor, worker):
        for _ in range(3):
            worker.tell_nowait(Crash())
        await trio.sleep(10)
        assert journal.starts == exact(0.0, 0.1, 0.3, 0.7)
        status = supervisor.children()[0]
        assert (status.restarts, status.running) == (3, True)
        assert status.last_restart_at == pytest.approx(0.7, abs=1e-9)


async def test_backoff_is_capped_at_max_backoff(autojump_clock: trio.testing.MockClock) -> None:
    journal = Journal()
    async with supervised_worker(journal, RestartPolicy(max_restarts=10)) as (_, worker):
        for _ in range(8):
            worker.tell_nowait(Crash())
        await trio.sleep(30)
    delays = [later - earlier for earlier, later in itertools.pairwise(journal.starts)]
    assert delays == exact(0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0)


async def test_too_many_crashes_within_the_window_escalate_out_of_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor()  # at most 5 restarts within 60 s
    escalations: list[EscalationError] = []
    bystander_asks: list[ActorStoppedError] = []

    async def serve(*, task_status: trio.TaskStatus[None]) -> None:
        with pytest.raises(EscalationError) as info:
            await supervisor.run(task_status=task_status)
        escalations.append(info.value)

    async def ask_bystander(bystander: ActorRef[WorkerMessage]) -> None:
        with pytest.raises(ActorStoppedError) as info:
            await bystander.ask(Keep)
        bystander_asks.append(info.value)

    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve)
            bystander = await supervisor.start_child("worker", "calm", worker_factory(Journal()))
            nursery.start_soon(ask_bystander, bystander)
            worker = await supervisor.start_child("worker", "w1", worker_factory(journal))
            for number in range(1, 7):
                worker.tell_nowait(Crash(f"crash {number}"))
    [escalation] = escalations
    assert isinstance(escalation.__cause__, Boom)
    assert str(escalation.__cause__) == "crash 6"
    assert str(escalation) == "worker w1 crashed more than 5 times within 60 s"
    assert journal.starts == exact(0.0, 0.1, 0.3, 0.7, 1.5, 3.1)
    assert trio.current_time() == pytest.approx(3.1, abs=1e-9)
    assert len(bystander_asks) == 1  # the other child was stopped with the supervisor
    assert supervisor.refs() == []


async def test_crashes_spread_beyond_the_window_do_not_escalate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    policy = RestartPolicy(max_restarts=2, restart_window=10.0)
    async with supervised_worker(journal, policy) as (supervisor, worker):
        for moment in (1.0, 6.0, 12.0, 17.0, 23.0):
            await trio.sleep_until(moment)
            worker.tell_nowait(Crash())
        await trio.sleep(1)
        # Never more than two crashes within 10 s: the window forgets the old ones,
        # and the backoff starts over with them.
        assert journal.starts == exact(0.0, 1.1, 6.2, 12.2, 17.2, 23.2)
        assert supervisor.children()[0].restarts == 5


async def test_waiting_messages_survive_a_restart_and_keep_their_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    async with supervised_worker(journal) as (_, worker):
        for message in (Record(1), Crash(), Record(2), Record(3), Crash(), Record(4)):
            worker.tell_nowait(message)
        await trio.sleep(1)
    assert journal.handled == [(0, 1), (1, 2), (1, 3), (2, 4)]
    assert journal.starts == exact(0.0, 0.1, 0.3)


async def test_the_asker_of_the_request_in_hand_gets_actor_crashed_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    async with supervised_worker(journal) as (_, worker):
        with pytest.raises(ActorCrashedError, match="worker w1 crashed") as info:
            await worker.ask(CrashWhileAsked)
        assert trio.current_time() == 0.0  # not after the backoff, not at a deadline
        assert isinstance(info.value.__cause__, Boom)
        # A request it kept to answer later fails too; one still waiting does not.
        kept = Reply[int]()
        worker.tell_nowait(Keep(kept))
        worker.tell_nowait(Crash())
        worker.tell_nowait(Record(5))
        with pytest.raises(ActorCrashedError):
            await kept.wait()
        await trio.sleep(1)
        assert journal.handled == [(2, 5)]


@dataclass(frozen=True, slots=True)
class Relay:
    to: ActorRef[WorkerMessage]
    reply: Reply[int]


class Relayer:
    """Hands requests on to another actor, which answers them."""

    async def run(self, inbox: Inbox[Relay | Crash], *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        async for message in inbox:
            match message:
                case Relay(to, reply):
                    await to.tell(Keep(reply))
                case Crash():
                    raise Boom("relayer crashed")


async def test_a_forwarded_request_is_answered_by_its_new_holder_despite_a_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    workers: list[Worker] = []

    def make_worker() -> Worker:
        workers.append(Worker(Journal()))
        return workers[-1]

    answers: list[int] = []
    async with guarded_supervisor() as supervisor:
        worker = await supervisor.start_child("worker", "w1", make_worker)
        relayer = await supervisor.start_child("relayer", "r1", Relayer)

        async def ask_through_relayer() -> None:
            answers.append(await relayer.ask(lambda reply: Relay(worker, reply)))

        async with trio.open_nursery() as askers:
            askers.start_soon(ask_through_relayer)
            await trio.testing.wait_all_tasks_blocked()
            relayer.tell_nowait(Crash())
            await trio.sleep(1)
            [kept] = workers[0].kept
            assert kept.send(7)
    assert answers == [7]


async def test_stop_child_fails_pending_asks_and_later_tells(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    outcomes: list[str] = []

    async def ask(worker: ActorRef[WorkerMessage]) -> None:
        try:
            await worker.ask(Keep)
        except ActorStoppedError:
            outcomes.append(f"stopped at {trio.current_time():g}")

    async with supervised_worker(journal) as (supervisor, worker):
        async with trio.open_nursery() as askers:
            askers.start_soon(ask, worker)  # taken and kept by the worker
            worker.tell_nowait(Pause(10))
            await trio.testing.wait_all_tasks_blocked()
            askers.start_soon(ask, worker)  # still waiting in the mailbox
            await trio.sleep(2)
            assert await supervisor.stop_child("worker", "w1")
        assert outcomes == ["stopped at 2", "stopped at 2"]
        assert supervisor.lookup("worker", "w1") is None
        assert worker.stopped
        with pytest.raises(ActorStoppedError):
            await worker.tell(Record(1))
        assert not await supervisor.stop_child("worker", "w1")


async def test_stop_child_during_the_backoff_stops_it_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    async with supervised_worker(journal) as (supervisor, worker):
        worker.tell_nowait(Crash())
        worker.tell_nowait(Record(1))
        await trio.sleep(0.05)
        assert await supervisor.stop_child("worker", "w1")
        await trio.sleep(10)
    assert journal.starts == [0.0]
    assert journal.handled == []


async def test_a_child_that_returns_is_removed_and_its_waiting_asks_fail(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    async with supervised_worker(journal) as (supervisor, worker):
        worker.tell_nowait(Quit())
        with pytest.raises(ActorStoppedError):
            await worker.ask(Keep)
        assert supervisor.refs() == []
        assert journal.starts == [0.0]  # returning is not a crash: no restart


async def test_a_first_start_that_fails_raises_from_start_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with guarded_supervisor() as supervisor:
        with pytest.raises(Boom, match="cannot load state"):
            await supervisor.start_child(
                "worker", "w1", lambda: Worker(Journal(), fail_to_start=True)
            )
        assert supervisor.lookup("worker", "w1") is None
        # The key is free again.
        await supervisor.start_child("worker", "w1", worker_factory(Journal()))


async def test_a_crash_is_logged_with_its_traceback(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with supervised_worker(Journal()) as (_, worker):
        worker.tell_nowait(Crash("disk on fire"))
        await trio.sleep(1)
    [record] = [r for r in caplog.records if r.name == "hub.runtime.supervisor"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "worker w1 crashed; restart 1 in 0.1 s"
    assert record.exc_info is not None and str(record.exc_info[1]) == "disk on fire"


async def test_stopping_the_supervisor_fails_every_pending_ask(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal = Journal()
    supervisor = Supervisor()
    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            worker = await supervisor.start_child("worker", "w1", worker_factory(journal))
            kept = Reply[int]()
            worker.tell_nowait(Keep(kept))
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        with pytest.raises(ActorStoppedError, match="worker w1 was stopped"):
            await kept.wait()
        assert worker.stopped


def test_restart_history_counts_crashes_within_the_window_only() -> None:
    history = RestartHistory(RestartPolicy(max_restarts=2, restart_window=10.0))
    assert history.record_crash(0.0) == pytest.approx(0.1)
    assert history.record_crash(5.0) == pytest.approx(0.2)
    assert history.record_crash(9.9) is None  # three within 10 s: escalate
    assert history.crashes_in_window(19.8) == 1
    assert history.crashes_in_window(20.0) == 0
    assert history.record_crash(20.0) == pytest.approx(0.1)
    assert history.restarts == 0  # restarts are recorded by the supervisor when they happen
