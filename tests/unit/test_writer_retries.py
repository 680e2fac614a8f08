"""The Writer's group commit and retry schedule, on trio's virtual clock with a fake database."""

from __future__ import annotations

import math
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import trio
import trio.testing

from hub.metrics import REGISTRY
from storage.availability import DatabaseAvailability
from storage.database import (
    DatabaseDownError,
    DatabaseSilentError,
    StorageError,
    StorageUnavailableError,
)
from storage.writer import TelemetryRow, Writer, WriteRequest, WriteResult

BASE = datetime(2025, 12, 16, 10, 30, tzinfo=UTC)


def _request(vehicle_id: str, seconds: int) -> WriteRequest:
    row = TelemetryRow("location", vehicle_id, BASE + timedelta(seconds=seconds), {})
    return WriteRequest(rows=[row])


class FakeDatabase:
    """Runs the Writer's batch function directly; failures are scripted.

    ``failures`` are raised by the next attempts in turn; ``gone_until`` makes every attempt
    fail as an unreachable server would until that virtual time. Attempts keep the
    availability books the way :class:`storage.database.Database` does.
    """

    def __init__(
        self, failures: Sequence[StorageError] = (), gone_until: float = -math.inf
    ) -> None:
        self.availability = DatabaseAvailability()
        self.failures: list[StorageError] = list(failures)
        self.gone_until = gone_until
        self.attempt_times: list[float] = []
        self.batches: list[list[WriteRequest]] = []

    async def run_asyncio(
        self, work: Callable[[Any], Awaitable[Any]], *, even_if_down: bool = False
    ) -> Any:
        async def attempt() -> Any:
            self.attempt_times.append(trio.current_time())
            self._fail_if_gone()
            if self.failures:
                raise self.failures.pop(0)
            return await work(None)

        return await self.availability.call(attempt, even_if_down=even_if_down)

    async def probe(self) -> None:
        """What the availability probe runs: ``SELECT 1``."""
        self._fail_if_gone()

    def _fail_if_gone(self) -> None:
        if trio.current_time() < self.gone_until:
            raise DatabaseDownError("ConnectionRefusedError: [Errno 111] Connection refused")

    async def apply(self, _connection: Any, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        self.batches.append(list(requests))
        if any(r.rows[0].vehicle_id == "poison" for r in requests):
            raise StorageError("check constraint violated")
        return [WriteResult((True,) * len(r.rows)) for r in requests]


def _writer(database: FakeDatabase, commits_in_flight: int = 1) -> Writer:
    """A Writer over the fake; one batch in flight unless asked, so schedules are exact."""
    return Writer(
        database,  # type: ignore[arg-type]
        apply_batch=database.apply,
        commits_in_flight=commits_in_flight,
    )


@asynccontextmanager
async def running_writer(
    database: FakeDatabase, commits_in_flight: int = 1
) -> AsyncIterator[Writer]:
    """A Writer over ``database``, running for the body of the ``async with``, then stopped."""
    writer = _writer(database, commits_in_flight)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        yield writer
        nursery.cancel_scope.cancel()


async def at_once(write: Callable[[str], Awaitable[None]], *vehicle_ids: str) -> None:
    """Run ``write(vehicle_id)`` for every id concurrently; return when all have returned."""
    async with trio.open_nursery() as clients:
        for vehicle_id in vehicle_ids:
            clients.start_soon(write, vehicle_id)


async def test_transient_failures_are_retried_after_1_2_and_4_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase(failures=[StorageUnavailableError("down")] * 3)
    async with running_writer(database) as writer:
        started = trio.current_time()
        result = await writer.write(_request("wheelchair_001", 0))
    assert result.inserted == (True,)
    assert [t - started for t in database.attempt_times] == [0.0, 1.0, 3.0, 7.0]


async def test_after_three_retries_every_waiter_gets_unavailable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase(failures=[StorageUnavailableError("down")] * 4)
    outcomes: list[str] = []
    async with running_writer(database) as writer:

        async def write(vehicle_id: str) -> None:
            try:
                await writer.write(_request(vehicle_id, 0))
                outcomes.append("committed")
            except StorageUnavailableError:
                outcomes.append(f"unavailable at {trio.current_time():.0f}")

        await at_once(write, "wheelchair_001", "wheelchair_002")
    assert outcomes == ["unavailable at 7", "unavailable at 7"]
    assert len(database.attempt_times) == 4


async def test_each_caller_of_a_failed_batch_gets_an_error_of_its_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One shared exception raised in every caller would carry every caller's frames in its
    traceback, and each refusal log would print them all."""
    database = FakeDatabase(failures=[StorageUnavailableError("down")] * 4)
    errors: list[StorageUnavailableError] = []
    async with running_writer(database) as writer:

        async def write(vehicle_id: str) -> None:
            try:
                await writer.write(_request(vehicle_id, 0))
            except StorageUnavailableError as error:
                errors.append(error)

        await at_once(write, *(f"wheelchair_{index:03d}" for index in range(200)))
    assert len(database.attempt_times) == 4  # one batch
    assert len(errors) == 200
    assert len({id(error) for error in errors}) == 200
    assert {(type(error), str(error)) for error in errors} == {(StorageUnavailableError, "down")}
    assert max(len(traceback.extract_tb(error.__traceback__)) for error in errors) < 5


async def test_requests_waiting_together_commit_in_one_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase()
    writer = _writer(database)
    results: list[WriteResult] = []

    async def write(index: int) -> None:
        results.append(await writer.write(_request(f"wheelchair_{index:03d}", index)))

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as clients:
            for index in range(50):
                clients.start_soon(write, index)
            await trio.testing.wait_all_tasks_blocked()
            await nursery.start(writer.run)
        nursery.cancel_scope.cancel()
    assert len(results) == 50
    assert [len(batch) for batch in database.batches] == [50]


async def test_a_bad_request_fails_alone_and_its_batch_neighbours_commit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase()
    writer = _writer(database)
    outcomes: dict[str, str] = {}

    async def write(vehicle_id: str) -> None:
        try:
            await writer.write(_request(vehicle_id, 0))
            outcomes[vehicle_id] = "committed"
        except StorageError:
            outcomes[vehicle_id] = "failed"

    async with trio.open_nursery() as nursery:
        async with trio.open_nursery() as clients:
            for vehicle_id in ("wheelchair_001", "poison", "wheelchair_002"):
                clients.start_soon(write, vehicle_id)
            await trio.testing.wait_all_tasks_blocked()
            await nursery.start(writer.run)
        nursery.cancel_scope.cancel()
    assert outcomes == {
        "wheelchair_001": "committed",
        "poison": "failed",
        "wheelchair_002": "committed",
    }


async def test_drain_commits_what_is_queued_at_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase()
    writer = _writer(database)
    results: list[WriteResult] = []

    async def write() -> None:
        results.append(await writer.write(_request("wheelchair_001", 0)))

    async with trio.open_nursery() as clients:
        clients.start_soon(write)
        await trio.testing.wait_all_tasks_blocked()
        assert writer.queue_depth() == 1
        await writer.drain()
    assert results == [WriteResult((True,))]


# --- database outages (TVM-ERR-003) ------------------------------------------------------


async def _outcome(writer: Writer, vehicle_id: str, seconds: int = 0) -> str:
    try:
        await writer.write(_request(vehicle_id, seconds))
    except DatabaseDownError:
        return f"unavailable at {trio.current_time():g}"
    except StorageUnavailableError:
        return f"unavailable after retries at {trio.current_time():g}"
    return f"committed at {trio.current_time():g}"


async def test_an_outage_answers_waiting_callers_at_once_while_the_batch_keeps_its_schedule(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase(gone_until=math.inf)
    outcomes: list[str] = []
    async with running_writer(database) as writer:

        async def write(vehicle_id: str) -> None:
            outcomes.append(await _outcome(writer, vehicle_id))

        await at_once(write, "wheelchair_001", "wheelchair_002")
        await trio.sleep(60)
    assert outcomes == ["unavailable at 0", "unavailable at 0"]
    assert database.attempt_times == [0.0, 1.0, 3.0, 7.0]  # retried 1 s, 2 s, 4 s as before
    assert writer.rows_committed == 0


async def test_a_write_while_the_database_is_down_fails_at_once_without_an_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase()
    database.availability.mark_down(DatabaseDownError("refused"))
    async with running_writer(database) as writer:
        await trio.sleep(5)
        outcome = await _outcome(writer, "wheelchair_001")
    assert outcome == "unavailable at 5"
    assert database.attempt_times == []
    assert writer.queue_depth() == 0


async def test_callers_queued_behind_a_retrying_batch_are_answered_when_an_outage_is_noticed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase(failures=[StorageUnavailableError("deadlock detected")])
    outcomes: dict[str, str] = {}
    async with running_writer(database) as writer:

        async def write(vehicle_id: str, at: float) -> None:
            await trio.sleep_until(at)
            outcomes[vehicle_id] = await _outcome(writer, vehicle_id)

        async with trio.open_nursery() as clients:
            clients.start_soon(write, "in_flight", 0.0)
            clients.start_soon(write, "queued", 0.25)
            # At 0.5 s another caller (a read, the health check) finds the server gone.
            await trio.sleep_until(0.5)
            database.gone_until = math.inf
            database.availability.mark_down(DatabaseDownError("connection lost"))
    assert outcomes == {"in_flight": "unavailable at 0.5", "queued": "unavailable at 0.5"}


async def test_the_writer_recovers_as_soon_as_the_probe_sees_the_database_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase(gone_until=1.5)  # the server is back 1.5 s after the first write
    outcomes: list[str] = []
    async with trio.open_nursery() as probing:
        await probing.start(database.availability.run, database.probe)
        async with running_writer(database) as writer:
            outcomes.append(await _outcome(writer, "wheelchair_001", 0))
            await trio.sleep_until(2.5)
            outcomes.append(await _outcome(writer, "wheelchair_001", 1))
        probing.cancel_scope.cancel()
    assert outcomes == ["unavailable at 0", "committed at 2.5"]
    # Probes at 1 s (still gone) and 2 s (back: marked up); the batch in flight is retried at
    # 1 s, then at once when the probe marks the database up instead of waiting until 3 s.
    assert database.attempt_times == [0.0, 1.0, 2.0, 2.5]
    assert database.availability.probes == 2
    assert not database.availability.is_down
    assert writer.rows_committed == 2  # the first row committed too: nothing was lost


async def test_callers_of_a_batch_that_got_no_answer_in_time_answer_at_once_and_it_commits_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase(
        failures=[DatabaseSilentError("no answer from the database within 1.5 s")]
    )
    outcomes: list[str] = []
    async with running_writer(database) as writer:

        async def write(vehicle_id: str) -> None:
            try:
                await writer.write(_request(vehicle_id, 0))
            except DatabaseSilentError:
                outcomes.append(f"silent at {trio.current_time():g}")

        await at_once(write, "wheelchair_001", "wheelchair_002")
        await trio.sleep(10)
    assert outcomes == ["silent at 0", "silent at 0"]
    assert database.attempt_times == [0.0, 1.0]  # the retry commits both rows
    assert writer.rows_committed == 2
    assert not database.availability.is_down  # no probe saw it gone


async def test_every_commit_attempt_is_timed_for_the_metrics(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def quick() -> float:
        return REGISTRY.get_sample_value("group_commit_seconds_bucket", {"le": "0.001"}) or 0.0

    timed, quick_before = REGISTRY.get_sample_value("group_commit_seconds_count") or 0.0, quick()
    database = FakeDatabase(failures=[StorageUnavailableError("deadlock detected")])
    async with running_writer(database) as writer:
        await writer.write(_request("wheelchair_001", 0))
    # The failed attempt and the retry that committed; the 1 s pause between is not a commit.
    assert REGISTRY.get_sample_value("group_commit_seconds_count") == timed + 2
    assert quick() == quick_before + 2


async def test_a_commit_stuck_on_the_disk_does_not_hold_the_next_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase()
    slow_apply = database.apply

    async def apply(connection: Any, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        if requests[0].rows[0].vehicle_id == "wheelchair_slow":
            await trio.sleep(0.4)  # an fsync on a busy volume
        return await slow_apply(connection, requests)

    database.apply = apply  # type: ignore[method-assign]
    committed: dict[str, float] = {}

    async def write(vehicle_id: str) -> None:
        await writer.write(_request(vehicle_id, 0))
        committed[vehicle_id] = trio.current_time()

    async with (
        running_writer(database, commits_in_flight=2) as writer,
        trio.open_nursery() as clients,
    ):
        clients.start_soon(write, "wheelchair_slow")
        await trio.sleep(0.1)
        clients.start_soon(write, "wheelchair_002")
    assert committed == {"wheelchair_002": 0.1, "wheelchair_slow": 0.4}
    assert writer.rows_committed == 2
