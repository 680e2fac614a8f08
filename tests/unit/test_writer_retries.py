"""The Writer's group commit and retry schedule, on trio's virtual clock with a fake database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import trio
import trio.testing

from storage.database import StorageError, StorageUnavailableError
from storage.telemetry_tables import TelemetryKind
from storage.writer import TelemetryRow, Writer, WriteRequest, WriteResult

BASE = datetime(2025, 12, 16, 10, 30, tzinfo=UTC)


def _request(vehicle_id: str, seconds: int) -> WriteRequest:
    row = TelemetryRow(TelemetryKind.LOCATION, vehicle_id, BASE + timedelta(seconds=seconds), {})
    return WriteRequest(rows=[row])


class FakeDatabase:
    """Runs the Writer's batch function directly; failures are scripted."""

    def __init__(self) -> None:
        self.failures: list[StorageError] = []
        self.attempt_times: list[float] = []
        self.batches: list[list[WriteRequest]] = []

    async def run_asyncio(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        self.attempt_times.append(trio.current_time())
        if self.failures:
            raise self.failures.pop(0)
        return await work(None)

    async def apply(self, _connection: Any, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        self.batches.append(list(requests))
        if any(r.rows[0].vehicle_id == "poison" for r in requests):
            raise StorageError("check constraint violated")
        return [WriteResult((True,) * len(r.rows)) for r in requests]


def _writer(database: FakeDatabase) -> Writer:
    return Writer(database, apply_batch=database.apply)  # type: ignore[arg-type]


async def test_transient_failures_are_retried_after_1_2_and_4_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase()
    database.failures = [StorageUnavailableError("down")] * 3
    writer = _writer(database)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        started = trio.current_time()
        result = await writer.write(_request("wheelchair_001", 0))
        nursery.cancel_scope.cancel()
    assert result.inserted == (True,)
    assert [t - started for t in database.attempt_times] == [0.0, 1.0, 3.0, 7.0]


async def test_after_three_retries_every_waiter_gets_unavailable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    database = FakeDatabase()
    database.failures = [StorageUnavailableError("down")] * 4
    writer = _writer(database)
    outcomes: list[str] = []

    async def write(vehicle_id: str) -> None:
        try:
            await writer.write(_request(vehicle_id, 0))
            outcomes.append("committed")
        except StorageUnavailableError:
            outcomes.append(f"unavailable at {trio.current_time():.0f}")

    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        async with trio.open_nursery() as clients:
            clients.start_soon(write, "wheelchair_001")
            clients.start_soon(write, "wheelchair_002")
        nursery.cancel_scope.cancel()
    assert outcomes == ["unavailable at 7", "unavailable at 7"]
    assert len(database.attempt_times) == 4


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
