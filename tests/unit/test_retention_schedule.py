"""The retention job's schedule (TVM-DB-RET-001): daily at 02:00 UTC on trio's clock.

Every timed test runs on ``autojump_clock`` with a wall clock that moves with trio's clock,
so the moments a pass starts are exact virtual times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest
import trio
import trio.testing

from actors.retention.job import RetentionJob, RetentionPolicy, RetentionSummary, next_run
from tests.unit.waiting import waiting_for

DAY = 86_400.0
HANG_GUARD = 10 * DAY  # virtual seconds: the autojump clock gets there only if a test is stuck


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class MovableWallClock:
    """UTC wall time that advances with trio's clock from ``start``; ``jump`` steps it."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._trio_start = trio.current_time()
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        elapsed = timedelta(seconds=trio.current_time() - self._trio_start)
        return self._start + elapsed + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class ScriptedJob(RetentionJob):
    """A job whose passes only record when they start, take ``duration`` and may fail."""

    def __init__(
        self,
        wall_clock: Callable[[], datetime],
        *,
        duration: float = 0.0,
        fail_first: bool = False,
        policy: RetentionPolicy | None = None,
    ) -> None:
        database: Any = None  # never touched: run_pass is replaced
        super().__init__(database, policy or RetentionPolicy(), wall_clock=wall_clock)
        self.started: list[float] = []
        self.wall_times: list[datetime] = []
        self.enough = trio.Event()
        self.wanted = 1
        self._duration = duration
        self._fail_next = fail_first
        self._wall = wall_clock

    async def claim(self, due: datetime) -> bool:
        return True  # the only hub

    async def run_pass(self) -> RetentionSummary:
        self.started.append(trio.current_time())
        self.wall_times.append(self._wall())
        if len(self.started) >= self.wanted:
            self.enough.set()
        await trio.sleep(self._duration)
        if self._fail_next:
            self._fail_next = False
            raise RuntimeError("disk on fire")
        return RetentionSummary(started_at=self.wall_times[-1])


async def run_until(job: ScriptedJob, passes: int) -> datetime:
    """Run the job until it has started ``passes`` passes; return its first due time."""
    job.wanted = passes
    with waiting_for(f"{passes} passes to start", lambda: job.wall_times, HANG_GUARD):
        async with trio.open_nursery() as nursery:
            first_due: datetime = await nursery.start(job.run)
            await job.enough.wait()
            nursery.cancel_scope.cancel()
        return first_due
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2025-12-16T01:30:00", "2025-12-16T02:00:00"),
        ("2025-12-16T02:00:00", "2025-12-16T02:00:00"),  # exactly due: run now
        ("2025-12-16T02:00:00.001000", "2025-12-17T02:00:00"),
        ("2025-12-16T23:59:59", "2025-12-17T02:00:00"),
        ("2025-12-31T03:00:00", "2026-01-01T02:00:00"),
    ],
)
def test_next_run_is_the_first_0200_at_or_after_now(now: str, expected: str) -> None:
    assert next_run(at(now), time(2, 0)) == at(expected)


def test_next_run_reads_other_time_zones_as_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 10:30 in Tokyo is 01:30 UTC: the 02:00 UTC pass is 30 minutes away.
    now = datetime(2025, 12, 16, 10, 30, tzinfo=tokyo)
    assert next_run(now, time(2, 0)) == at("2025-12-16T02:00:00")
    assert next_run(at("2025-12-16T14:00:00"), time(13, 45)) == at("2025-12-17T13:45:00")


async def test_started_at_0130_first_pass_after_1800_s_then_every_day(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wall = MovableWallClock(at("2025-12-16T01:30:00"))
    job = ScriptedJob(wall, duration=300.0)  # a pass that takes 5 minutes
    begin = trio.current_time()

    first_due = await run_until(job, 3)

    assert first_due == at("2025-12-16T02:00:00")
    offsets = [moment - begin for moment in job.started]
    assert offsets == [1800.0, 1800.0 + DAY, 1800.0 + 2 * DAY]  # the 5 minutes do not drift
    assert [moment.time() for moment in job.wall_times] == [time(2, 0)] * 3


async def test_started_at_exactly_0200_runs_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wall = MovableWallClock(at("2025-12-16T02:00:00"))
    job = ScriptedJob(wall)
    begin = trio.current_time()

    await run_until(job, 2)

    assert [moment - begin for moment in job.started] == [0.0, DAY]


async def test_configured_time_of_day_is_used(autojump_clock: trio.testing.MockClock) -> None:
    wall = MovableWallClock(at("2025-12-16T12:00:00"))
    job = ScriptedJob(wall, policy=RetentionPolicy(at=time(3, 15)))
    begin = trio.current_time()

    await run_until(job, 1)

    assert job.started[0] - begin == 15 * 3600.0 + 15 * 60.0


async def test_a_failed_pass_is_logged_and_the_next_runs_on_schedule(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    wall = MovableWallClock(at("2025-12-16T01:00:00"))
    job = ScriptedJob(wall, duration=60.0, fail_first=True)
    begin = trio.current_time()

    with caplog.at_level(logging.ERROR, logger="actors.retention.job"):
        await run_until(job, 2)

    assert [moment - begin for moment in job.started] == [3600.0, 3600.0 + DAY]
    failures = [record for record in caplog.records if "retention pass failed" in record.message]
    assert len(failures) == 1
    assert failures[0].exc_info is not None


async def test_a_pass_longer_than_a_day_skips_the_missed_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wall = MovableWallClock(at("2025-12-16T01:30:00"))
    job = ScriptedJob(wall, duration=DAY + 3600.0)  # ends at 03:00 the next day

    begin = trio.current_time()
    await run_until(job, 2)

    # Not back-to-back at 03:00: the next pass waits for 02:00 the day after.
    assert [moment - begin for moment in job.started] == [1800.0, 1800.0 + 2 * DAY]


async def test_a_wall_clock_jump_delays_a_pass_by_at_most_the_recheck_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The host sleeps for an hour at 00:05 (trio's clock stands still meanwhile): the wall
    # clock jumps, and the pass must still start at 02:00 wall time, not an hour late.
    wall = MovableWallClock(at("2025-12-16T00:00:00"))
    job = ScriptedJob(wall)
    begin = trio.current_time()

    async def suspend_host() -> None:
        await trio.sleep(300)
        wall.jump(3600)

    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(suspend_host)
            await nursery.start(job.run)
            await job.enough.wait()
            nursery.cancel_scope.cancel()

    assert job.started[0] - begin == 3600.0  # 02:00 wall time is 3600 s of trio time here
    assert job.wall_times[0] == at("2025-12-16T02:00:00")


def test_summary_prints_name_value_lines() -> None:
    summary = RetentionSummary(
        started_at=at("2025-12-16T02:00:00"),
        locations_moved=5,
        status_moved=2,
        audit_exported=3,
        audit_deleted=3,
        errors=["audit: OSError: read-only file system"],
    )
    lines = summary.lines()
    assert "started_at=2025-12-16T02:00:00.000Z" in lines
    assert "locations_moved=5" in lines
    assert "status_moved=2" in lines
    assert "audit_exported=3" in lines
    assert "audit_deleted=3" in lines
    assert "audit_file=" in lines
    assert "error=audit: OSError: read-only file system" in lines
