"""The daily retention job (TVM-DB-RET-001/002, CONTRACT §9).

Once a day at ``TVM_RETENTION_TIME_UTC`` (02:00 by default) a pass:

1. moves ``vehicle_locations`` rows older than ``TVM_RETENTION_LOCATIONS_DAYS`` (30) and
   ``vehicle_status`` rows older than ``TVM_RETENTION_STATUS_DAYS`` (90) into
   ``vehicle_locations_archive`` / ``vehicle_status_archive``, in batches of 10 000 rows,
   one transaction each (see :mod:`storage.queries.retention`);
2. exports ``audit_logs`` rows older than ``TVM_RETENTION_AUDIT_DAYS`` (90) to
   ``<TVM_ARCHIVE_DIR>/audit-YYYYMMDD-HHMMSS.jsonl.gz`` (gzip, one JSON object per line,
   written under a temporary name, fsynced, then renamed), and only after the file is safely
   in place deletes exactly the rows it holds. Export is at-least-once: if the delete fails,
   the next pass exports those rows again into its own file.

Ages are measured from the wall-clock time the pass starts, against each row's own
``timestamp`` (telemetry) or ``at`` (audit). S3 export is not supported: point
``TVM_ARCHIVE_DIR`` at a directory that is shipped to cold storage (``aws s3 sync``, rclone).

Several hubs on one database run each scheduled pass once, not once per hub: the first to
insert the pass's due time into ``retention_runs`` runs it, the others find it claimed and
skip it (a claimant that dies mid-pass leaves the rest to the next day's pass, which moves
everything older than the ages anyway). ``tvm-hub archive --now`` runs a pass without a claim.

Schedule: a pass is due at the first ``HH:MM`` UTC *at or after* the moment the job starts —
a hub started at 02:00:00.000 exactly runs a pass at once (passes are idempotent, so one
extra is harmless, while skipping would postpone the work by a day). The next pass is due
exactly one day after the previous *due* time, not after the pass ended, so a slow pass does
not drift the schedule; a pass that overruns a due time skips it rather than running twice
in a row. Sleeping uses trio's clock, re-reading the wall clock at least every
:data:`WALL_CLOCK_RECHECK` seconds so a suspended host or a stepped clock cannot delay a pass
by more than that. A failing pass is logged; the next one runs on schedule.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

import trio

from hub.clock import format_timestamp, utc_now
from hub.config import DEFAULTS, Settings
from storage.database import Database, Row, StorageError
from storage.queries import retention as retention_queries
from storage.queries.retention import ArchivedTable

logger = logging.getLogger(__name__)

RETENTION_CALL_TIMEOUT = 300.0
"""Seconds one retention statement (a 10 000-row batch, an export read) may take."""

DAY = timedelta(days=1)
BATCH_SIZE = 10_000
"""Rows per archive transaction, and audit rows per page and per delete."""
WALL_CLOCK_RECHECK = 10 * 60.0
"""Seconds: the longest single sleep before the wall clock is read again."""

WallClock = Callable[[], datetime]


def next_run(now: datetime, at: time) -> datetime:
    """The first moment at time of day ``at`` (UTC) that is at or after ``now`` (aware)."""
    now = now.astimezone(UTC)
    due = datetime.combine(now.date(), at, tzinfo=UTC)
    return due if due >= now else due + DAY


def parse_time_of_day(text: str) -> time:
    """``"02:00"`` → 02:00 (the setting is already checked by :mod:`hub.config`)."""
    hours, _, minutes = text.partition(":")
    return time(int(hours), int(minutes))


async def sleep_until_wall(due: datetime, wall_clock: WallClock, recheck: float) -> None:
    """Sleep on trio's clock until ``wall_clock()`` reaches ``due``; cancellable anywhere."""
    while True:
        remaining = (due - wall_clock()).total_seconds()
        if remaining <= 0:
            return
        await trio.sleep(min(remaining, recheck))


async def run_daily(
    at: time,
    work: Callable[[datetime], Awaitable[object]],
    *,
    wall_clock: WallClock,
    recheck: float = WALL_CLOCK_RECHECK,
    task_status: trio.TaskStatus[datetime] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Await ``work(due)`` every day at ``at`` UTC until cancelled (schedule rules: module doc).

    Reports the first due time when started. Exceptions from ``work`` propagate; wrap it to
    survive them.
    """
    due = next_run(wall_clock(), at)
    task_status.started(due)
    while True:
        await sleep_until_wall(due, wall_clock, recheck)
        await work(due)
        due = next_run(max(wall_clock(), due + DAY), at)


DEFAULT_RUN_AT = parse_time_of_day(DEFAULTS.retention_time_utc)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """When the job runs, what ages out, and where audit exports go."""

    at: time = DEFAULT_RUN_AT
    locations_age: timedelta = timedelta(days=DEFAULTS.retention_locations_days)
    status_age: timedelta = timedelta(days=DEFAULTS.retention_status_days)
    audit_age: timedelta = timedelta(days=DEFAULTS.retention_audit_days)
    archive_dir: Path = DEFAULTS.data_dir / "archive"
    batch_size: int = BATCH_SIZE

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy the environment configures (archive dir defaults to data_dir/archive)."""
        return cls(
            at=parse_time_of_day(settings.retention_time_utc),
            locations_age=timedelta(days=settings.retention_locations_days),
            status_age=timedelta(days=settings.retention_status_days),
            audit_age=timedelta(days=settings.retention_audit_days),
            archive_dir=settings.archive_dir or Path(settings.data_dir) / "archive",
        )


@dataclass(slots=True)
class RetentionSummary:
    """What one pass did; ``errors`` names each step that failed (the others still ran)."""

    started_at: datetime
    locations_moved: int = 0
    status_moved: int = 0
    audit_exported: int = 0
    audit_deleted: int = 0
    audit_file: Path | None = None
    duration_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """``name=value`` lines, as ``tvm-hub archive --now`` prints them."""
        return [
            f"started_at={format_timestamp(self.started_at)}",
            f"locations_moved={self.locations_moved}",
            f"status_moved={self.status_moved}",
            f"audit_exported={self.audit_exported}",
            f"audit_deleted={self.audit_deleted}",
            f"audit_file={self.audit_file or ''}",
            f"duration_seconds={self.duration_seconds:.3f}",
            *(f"error={error}" for error in self.errors),
        ]


def audit_record(row: Row) -> dict[str, Any]:
    """An audit row as one JSON line of the export (``at`` in the contract's form)."""
    record = dict(row)
    record["at"] = format_timestamp(row["at"])
    record["details"] = json.loads(row["details"]) if row["details"] is not None else None
    return record


class AuditArchiveFile:
    """A gzip JSON-lines file written under a hidden temporary name in ``directory``.

    Blocking file I/O: call the methods from a worker thread. :meth:`commit` makes the file
    durable and visible under its final name; :meth:`discard` removes the partial file.
    """

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.name = name
        self.temporary = directory / f".{name}.partial"
        self._raw: IO[bytes] = open(self.temporary, "wb")  # noqa: SIM115 - closed in commit/discard
        self._gzip = gzip.GzipFile(filename=name.removesuffix(".gz"), mode="wb", fileobj=self._raw)

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append records, one compact JSON object per line."""
        for record in records:
            self._gzip.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")

    def commit(self) -> Path:
        """Finish, fsync, rename to a free final name (``-2``, ``-3``… if taken), fsync the dir."""
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        target = _free_name(self.directory, self.name)
        os.replace(self.temporary, target)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return target

    def discard(self) -> None:
        """Close and delete the partial file (after a failure or cancellation)."""
        with contextlib.suppress(OSError, ValueError):
            self._gzip.close()
        self._raw.close()
        self.temporary.unlink(missing_ok=True)


def _free_name(directory: Path, name: str) -> Path:
    stem = name.removesuffix(".jsonl.gz")
    candidate = directory / name
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{number}.jsonl.gz"
        number += 1
    return candidate


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RetentionJob:
    """Runs retention passes: daily from :meth:`run`, or once from :meth:`run_pass`."""

    def __init__(
        self,
        database: Database,
        policy: RetentionPolicy,
        *,
        wall_clock: WallClock = utc_now,
        recheck: float = WALL_CLOCK_RECHECK,
        claimant: str | None = None,
    ) -> None:
        self._database = database
        self.policy = policy
        self._wall_clock = wall_clock
        self._recheck = recheck
        self.claimant = claimant or f"{socket.gethostname()}:{os.getpid()}"
        """Who this hub is in ``retention_runs`` (host and process id by default)."""
        self.last_summary: RetentionSummary | None = None

    async def run(
        self, *, task_status: trio.TaskStatus[datetime] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run a pass every day at the policy's time until cancelled; reports the first due
        time when started. A failed pass is logged and does not stop the schedule.
        """
        await run_daily(
            self.policy.at,
            self._scheduled_pass,
            wall_clock=self._wall_clock,
            recheck=self._recheck,
            task_status=task_status,
        )

    async def claim(self, due: datetime) -> bool:
        """True if this hub is the first on the database to claim the pass due at ``due``.

        Several hubs on one database schedule the same due time; only the claimant runs it.
        """
        return await retention_queries.claim_scheduled_pass(self._database, due, self.claimant)

    async def _scheduled_pass(self, due: datetime) -> None:
        try:
            if not await self.claim(due):
                logger.info("retention pass due %s is run by another hub", format_timestamp(due))
                return
            await self.run_pass()
        except Exception:
            logger.exception("retention pass failed; the next one runs on schedule")

    async def run_pass(self) -> RetentionSummary:
        """Archive, export and delete what has aged out; return (and log) what was done.

        A storage or file error ends only its own step (recorded in ``errors``). Cancelling
        leaves every committed batch in place and no partial export file behind.
        """
        started = self._wall_clock()
        began = trio.current_time()
        summary = RetentionSummary(started_at=started)
        policy = self.policy
        steps = (
            ("locations", ArchivedTable.LOCATIONS, started - policy.locations_age),
            ("status", ArchivedTable.STATUS, started - policy.status_age),
            ("audit", None, started - policy.audit_age),
        )
        for name, table, older_than in steps:
            try:
                if table is None:
                    await self._export_audit(summary, older_than)
                else:
                    await self._move(summary, table, older_than)
            except (StorageError, OSError) as exc:
                logger.error("retention step %s failed: %s", name, exc)
                summary.errors.append(f"{name}: {type(exc).__name__}: {exc}")
        summary.duration_seconds = trio.current_time() - began
        self.last_summary = summary
        logger.info(
            "retention pass: %d locations and %d status rows archived, %d audit rows exported"
            " to %s and %d deleted, %d errors, %.1f s",
            summary.locations_moved,
            summary.status_moved,
            summary.audit_exported,
            summary.audit_file or "-",
            summary.audit_deleted,
            len(summary.errors),
            summary.duration_seconds,
        )
        return summary

    async def _move(
        self, summary: RetentionSummary, table: ArchivedTable, older_than: datetime
    ) -> None:
        limit = self.policy.batch_size
        for vehicle_id in await retention_queries.archived_vehicle_ids(self._database):
            after = retention_queries.BEGINNING
            while True:
                batch = await retention_queries.move_batch(
                    self._database,
                    table,
                    vehicle_id=vehicle_id,
                    older_than=older_than,
                    after=after,
                    limit=limit,
                )
                if table is ArchivedTable.LOCATIONS:
                    summary.locations_moved += batch.moved
                else:
                    summary.status_moved += batch.moved
                if batch.moved != batch.archived:
                    logger.info(
                        "%d %s rows of %s were already archived",
                        batch.moved - batch.archived,
                        table.value,
                        vehicle_id,
                    )
                if batch.moved < limit or batch.last_timestamp is None:
                    break
                after = batch.last_timestamp

    async def _export_audit(self, summary: RetentionSummary, older_than: datetime) -> None:
        limit = self.policy.batch_size
        name = f"audit-{summary.started_at.astimezone(UTC):%Y%m%d-%H%M%S}.jsonl.gz"
        archive: AuditArchiveFile | None = None
        exported: list[int] = []
        try:
            after = 0
            while True:
                rows = await retention_queries.audit_page(
                    self._database, older_than=older_than, after_id=after, limit=limit
                )
                if not rows:
                    break
                if archive is None:
                    archive = await trio.to_thread.run_sync(
                        AuditArchiveFile, self.policy.archive_dir, name
                    )
                records = [audit_record(row) for row in rows]
                await trio.to_thread.run_sync(archive.write, records)
                exported.extend(int(row["audit_id"]) for row in rows)
                after = exported[-1]
                if len(rows) < limit:
                    break
            if archive is None:
                return
            summary.audit_file = await trio.to_thread.run_sync(archive.commit)
        except BaseException:
            if archive is not None:
                archive.discard()  # quick local file ops; safe while cancelled
            raise
        summary.audit_exported = len(exported)
        for chunk in _chunks(exported, limit):
            summary.audit_deleted += await retention_queries.delete_audit(self._database, chunk)
