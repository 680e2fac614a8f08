"""The database availability tracker: fail fast while down, probe every second, recover."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from storage.availability import DatabaseAvailability
from storage.database import DatabaseDownError, DatabaseSilentError, StorageUnavailableError


class FakeServer:
    """A database that refuses connections until ``back_at`` (virtual time)."""

    def __init__(self, back_at: float = math.inf) -> None:
        self.back_at = back_at
        self.attempt_times: list[float] = []

    async def select_one(self) -> int:
        self.attempt_times.append(trio.current_time())
        if trio.current_time() < self.back_at:
            raise DatabaseDownError("ConnectionRefusedError: [Errno 111] Connection refused")
        return 1


async def _fail_with(error: Exception) -> None:
    raise error


async def test_a_call_that_finds_the_server_gone_makes_later_calls_fail_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    server = FakeServer()
    with pytest.raises(DatabaseDownError):
        await availability.call(server.select_one)
    assert availability.is_down
    assert availability.down_since == 0.0

    await trio.sleep(0.5)
    with pytest.raises(DatabaseDownError):
        await availability.call(server.select_one)
    assert server.attempt_times == [0.0]  # the second call did not try
    assert trio.current_time() == 0.5  # and did not wait


async def test_transient_errors_of_a_reachable_server_do_not_mark_it_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    with pytest.raises(StorageUnavailableError):
        await availability.call(lambda: _fail_with(StorageUnavailableError("deadlock detected")))
    assert not availability.is_down
    assert await availability.call(FakeServer(back_at=0).select_one) == 1


async def test_the_probe_runs_every_second_while_down_and_the_first_success_marks_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    server = FakeServer(back_at=13.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(availability.run, server.select_one)
        await trio.sleep(10)
        assert server.attempt_times == []  # no probing while up

        with pytest.raises(DatabaseDownError):
            await availability.call(server.select_one)  # the outage is noticed at 10 s
        await availability.wait_up()
        assert trio.current_time() == 14.0
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert server.attempt_times == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert availability.probes == 4
    assert not availability.is_down
    assert availability.down_since is None
    assert await availability.call(server.select_one) == 1


async def test_a_probe_that_overruns_the_interval_is_followed_by_the_next_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    probe_times: list[float] = []

    async def silent_server() -> None:
        probe_times.append(trio.current_time())
        await trio.sleep(1.5)  # the probe's own deadline
        raise DatabaseDownError("no answer from the database within 1.5 s")

    availability.mark_down(DatabaseDownError("no answer"))
    async with trio.open_nursery() as nursery:
        await nursery.start(availability.run, silent_server)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert probe_times == [1.0, 2.5, 4.0]
    assert availability.is_down


async def test_an_answer_sent_before_the_outage_does_not_hide_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()

    async def slow_success() -> str:
        await trio.sleep(1)
        return "row"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(availability.call, slow_success)
        await trio.sleep(0.5)
        with pytest.raises(DatabaseDownError):
            await availability.call(FakeServer().select_one)
    assert trio.current_time() == 1.0
    assert availability.is_down  # the slow call's success did not mark the database up


async def test_a_write_retry_may_try_while_down_and_its_success_marks_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    availability.mark_down(DatabaseDownError("refused"))
    server = FakeServer(back_at=0)
    assert await availability.call(server.select_one, even_if_down=True) == 1
    assert not availability.is_down


async def test_listeners_hear_each_outage_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    heard: list[tuple[float, str]] = []
    availability.add_down_listener(lambda error: heard.append((trio.current_time(), str(error))))
    server = FakeServer(back_at=2)
    for _ in range(3):
        with pytest.raises(DatabaseDownError):
            await availability.call(server.select_one, even_if_down=True)
        await trio.sleep(0.5)
    await trio.sleep_until(2)
    await availability.call(server.select_one, even_if_down=True)
    availability.mark_down(DatabaseDownError("connection lost"))
    assert heard == [
        (0.0, "ConnectionRefusedError: [Errno 111] Connection refused"),
        (2.0, "connection lost"),
    ]
    assert availability.outages == 2


async def silent_call() -> None:
    await trio.sleep(1.5)
    raise DatabaseSilentError("no answer from the database within 1.5 s")


async def test_a_silent_call_under_load_is_probed_at_once_and_an_answer_keeps_it_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    server = FakeServer(back_at=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(availability.run, server.select_one)

        async def request() -> None:
            with pytest.raises(DatabaseSilentError):
                await availability.call(silent_call)

        for _ in range(3):  # four requests time out together: one probe
            nursery.start_soon(request)
        await request()
        await trio.testing.wait_all_tasks_blocked()

        assert not availability.is_down
        assert (server.attempt_times, availability.suspicions, availability.outages) == (
            [1.5],
            1,
            0,
        )
        assert await availability.call(server.select_one) == 1
        nursery.cancel_scope.cancel()


async def test_a_silent_call_whose_probe_gets_no_answer_either_marks_the_database_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    availability = DatabaseAvailability()
    server = FakeServer()  # refuses every probe
    async with trio.open_nursery() as nursery:
        await nursery.start(availability.run, server.select_one)
        with pytest.raises(DatabaseSilentError):
            await availability.call(silent_call)
        await trio.testing.wait_all_tasks_blocked()

        assert availability.is_down
        assert availability.down_since == 1.5
        await trio.sleep(1)  # then the usual probes, every second
        await trio.testing.wait_all_tasks_blocked()
        assert server.attempt_times == [1.5, 2.5]
        nursery.cancel_scope.cancel()
