"""Group-commit writer: many requests' rows, one transaction, then every waiter is woken.

Callers hand a :class:`WriteRequest` to :meth:`Writer.write` and wait. The writer task takes
everything queued, inserts it per table with one statement each inside one transaction, and
answers each request with which of its rows were new (the rest were duplicates of stored
rows). A 200 sent after ``write`` returns is therefore a committed row.

Transient database failures are retried after each of the configured delays (1 s, 2 s, 4 s);
then every waiter of that batch gets :class:`StorageUnavailableError`. A non-transient error
in a batch of several requests is retried one request at a time, so one bad request cannot
fail its neighbours.

Outages (TVM-ERR-003): while the database is known down, :meth:`Writer.write` raises
:class:`DatabaseDownError` at once instead of queueing. When it goes down, every caller still
waiting (queued or in the batch in flight) gets that error at once, and so do the callers of
a batch whose attempt got no answer in time (:class:`DatabaseSilentError`); the batch in
flight keeps its retry schedule in the background, so a short outage still commits it (a
resend of those rows then reads as a duplicate).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import trio

from hub import metrics
from hub.contract.telemetry import TelemetryKind
from hub.shared_read import error_for_caller
from storage.database import (
    Database,
    DatabaseDownError,
    DatabaseSilentError,
    StorageError,
    StorageUnavailableError,
)
from storage.telemetry_tables import LATEST_COLUMNS, TABLES, seen_and_latest_sql

logger = logging.getLogger(__name__)

_INSERT_SQL = {kind: spec.insert_sql() for kind, spec in TABLES.items()}
_ALERT_SQL = (
    "INSERT INTO alerts (alert_id, vehicle_id, kind, severity, error_code, message, details,"
    " backfilled) SELECT a, v, k, s, e, m, d::jsonb, b FROM unnest($1::text[], $2::text[],"
    " $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[])"
    " AS t(a, v, k, s, e, m, d, b) ON CONFLICT (alert_id) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class TelemetryRow:
    """One record for a telemetry table; ``values`` holds every column of its :class:`TableSpec`."""

    kind: TelemetryKind
    vehicle_id: str
    timestamp: datetime
    values: dict[str, Any]

    @property
    def key(self) -> tuple[TelemetryKind, str, datetime]:
        """The identity that deduplicates: kind, vehicle and timestamp."""
        return (self.kind, self.vehicle_id, self.timestamp)


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert written in the same transaction as the row (index ``source``) that raised it.

    The alert is stored only if that row was new, so a resent report raises nothing twice.
    """

    alert_id: str
    vehicle_id: str
    kind: str
    severity: str
    error_code: str | None
    message: str
    details: dict[str, Any]
    backfilled: bool
    source: int


@dataclass(slots=True)
class WriteRequest:
    """Rows that commit together (a single report, or a whole bulk upload)."""

    rows: list[TelemetryRow]
    alerts: list[AlertRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """For each row of the request, whether it was new (``False``: a duplicate, skipped)."""

    inserted: tuple[bool, ...]

    @property
    def inserted_count(self) -> int:
        """How many rows were new."""
        return sum(self.inserted)


BatchApplier = Callable[[Any, Sequence["WriteRequest"]], Awaitable[list["WriteResult"]]]
"""Inserts a batch on one connection; replaced by a fake in unit tests of the Writer."""


@dataclass(slots=True, eq=False)  # identity: callers still waiting are kept in a set
class _Pending:
    request: WriteRequest
    done: trio.Event = field(default_factory=trio.Event)
    result: WriteResult | None = None
    error: StorageError | None = None

    def answer(self, result: WriteResult | None = None, error: StorageError | None = None) -> None:
        """Wake the caller with the outcome; later outcomes (a batch answered early) are dropped."""
        if self.done.is_set():
            return
        self.result = result
        self.error = error
        self.done.set()


def _column_arrays(rows: Sequence[TelemetryRow], kind: TelemetryKind) -> list[list[Any]]:
    spec = TABLES[kind]
    arrays: list[list[Any]] = [[row.vehicle_id for row in rows], [row.timestamp for row in rows]]
    arrays.extend([row.values[name] for row in rows] for name in spec.column_names)
    return arrays


def _newest_per_vehicle(rows: Sequence[TelemetryRow]) -> dict[str, TelemetryRow]:
    """The newest row of each vehicle among ``rows``."""
    newest: dict[str, TelemetryRow] = {}
    for row in rows:
        held = newest.get(row.vehicle_id)
        if held is None or held.timestamp < row.timestamp:
            newest[row.vehicle_id] = row
    return newest


def _seen_and_latest_arrays(
    vehicles: Sequence[str], inserted_rows: Mapping[TelemetryKind, Sequence[TelemetryRow]]
) -> tuple[tuple[TelemetryKind, ...], list[list[Any]]]:
    """The kinds with a newest record to show and their arrays, aligned with ``vehicles``."""
    kinds: list[TelemetryKind] = []
    arrays: list[list[Any]] = []
    position = {vehicle_id: index for index, vehicle_id in enumerate(vehicles)}
    for kind in LATEST_COLUMNS:
        spec = TABLES[kind]
        rows = inserted_rows.get(kind)
        if not rows or spec.latest is None:
            continue
        newest = _newest_per_vehicle(rows)
        kinds.append(kind)
        times: list[Any] = [None] * len(vehicles)
        columns: list[list[Any]] = [[None] * len(vehicles) for _ in LATEST_COLUMNS[kind]]
        for row in newest.values():
            index = position[row.vehicle_id]
            times[index] = row.timestamp
            latest = spec.latest(row.values)
            for values, name in zip(columns, LATEST_COLUMNS[kind], strict=True):
                values[index] = latest[name]
        arrays.append(times)
        arrays.extend(columns)
    return tuple(kinds), arrays


async def _apply_batch(
    connection: asyncpg.Connection, requests: Sequence[WriteRequest]
) -> list[WriteResult]:
    """Insert every request's rows in one transaction (asyncio side)."""
    by_kind: dict[TelemetryKind, list[TelemetryRow]] = {}
    for request in requests:
        for row in request.rows:
            by_kind.setdefault(row.kind, []).append(row)
    async with connection.transaction():
        new_keys: set[tuple[TelemetryKind, str, datetime]] = set()
        for kind, rows in by_kind.items():
            returned = await connection.fetch(_INSERT_SQL[kind], *_column_arrays(rows, kind))
            new_keys.update((kind, record[0], record[1]) for record in returned)
        results: list[WriteResult] = []
        inserted_rows: dict[TelemetryKind, list[TelemetryRow]] = {}
        alerts: list[AlertRow] = []
        for request in requests:
            flags: list[bool] = []
            for row in request.rows:
                is_new = row.key in new_keys
                if is_new:
                    new_keys.discard(row.key)  # a second copy in the same batch is a duplicate
                    inserted_rows.setdefault(row.kind, []).append(row)
                flags.append(is_new)
            alerts.extend(alert for alert in request.alerts if flags[alert.source])
            results.append(WriteResult(tuple(flags)))
        vehicles = sorted({row.vehicle_id for request in requests for row in request.rows})
        if vehicles:
            kinds, arrays = _seen_and_latest_arrays(vehicles, inserted_rows)
            await connection.execute(seen_and_latest_sql(kinds), vehicles, *arrays)
        if alerts:
            await connection.execute(
                _ALERT_SQL,
                [a.alert_id for a in alerts],
                [a.vehicle_id for a in alerts],
                [a.kind for a in alerts],
                [a.severity for a in alerts],
                [a.error_code for a in alerts],
                [a.message for a in alerts],
                [json.dumps(a.details) for a in alerts],
                [a.backfilled for a in alerts],
            )
    return results


COMMITS_IN_FLIGHT = 2
"""Batches the Writer commits at once. With one, a commit that waits on the disk (an fsync
of a few hundred milliseconds on a busy volume) holds every report queued behind it; with
two, the next batch commits meanwhile, and PostgreSQL flushes both with one WAL write when
they meet. A vehicle never has two reports in flight (its telemetry lane waits for each), and
the ``vehicle_latest`` upsert keeps the newest record whichever batch lands last."""


class Writer:
    """The group-commit task and the door callers use to reach it."""

    def __init__(
        self,
        database: Database,
        *,
        retry_delays: Sequence[float] = (1.0, 2.0, 4.0),
        max_batch_rows: int = 5000,
        queue_size: int = 10_000,
        commits_in_flight: int = COMMITS_IN_FLIGHT,
        apply_batch: BatchApplier | None = None,
    ) -> None:
        self._database = database
        self._commits_in_flight = commits_in_flight
        self._apply_batch = apply_batch or _apply_batch
        self._retry_delays = tuple(retry_delays)
        self._max_batch_rows = max_batch_rows
        self._send, self._receive = trio.open_memory_channel[_Pending](queue_size)
        self._waiting: set[_Pending] = set()
        self._availability = database.availability
        self._availability.add_down_listener(self._answer_everyone_down)
        self.batches_committed = 0
        self.rows_committed = 0

    async def write(self, request: WriteRequest) -> WriteResult:
        """Commit the request's rows; return which were new.

        Blocks until the batch holding them has committed (or failed: raises
        :class:`StorageUnavailableError` after the retries, or :class:`StorageError`).
        Raises :class:`DatabaseDownError` at once while the database is known down, or as soon
        as it goes down while this call waits (the rows may still commit later).
        Cancelling the caller does not take the rows back: they may still commit.
        """
        self._availability.check()
        pending = _Pending(request)
        self._waiting.add(pending)
        try:
            await self._send.send(pending)
            await pending.done.wait()
        finally:
            self._waiting.discard(pending)
        if pending.error is not None:
            raise error_for_caller(pending.error)
        assert pending.result is not None
        return pending.result

    def queue_depth(self) -> int:
        """Requests waiting for the next batch."""
        return self._receive.statistics().current_buffer_used

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Take queued requests and commit them in batches, :data:`COMMITS_IN_FLIGHT` at a
        time (each on its own pooled connection), until cancelled.

        Cancellation between batches stops at once; see :meth:`drain` to flush what is queued.
        A batch whose commit is cancelled or fails through a bug answers its callers with a
        :class:`StorageError` (none is left waiting; the rows may still have committed). Run
        under a supervisor: such a bug is raised, so the supervisor restarts this task on the
        same queue.
        """
        task_status.started()
        async with trio.open_nursery() as committers:
            for _ in range(self._commits_in_flight):
                committers.start_soon(self._commit_batches)

    async def _commit_batches(self) -> None:
        while True:
            first = await self._receive.receive()
            batch = self._take_batch(first)
            try:
                await self._flush(batch)
            except BaseException:
                for pending in batch:
                    pending.answer(error=StorageError("the writer failed on this batch"))
                raise

    def describe(self) -> dict[str, int]:
        """Counters for /debug/actors."""
        return {
            "queue_depth": self.queue_depth(),
            "batches_committed": self.batches_committed,
            "rows_committed": self.rows_committed,
        }

    async def drain(self) -> None:
        """Commit everything still queued (used on shutdown); returns when the queue is empty."""
        while True:
            try:
                first = self._receive.receive_nowait()
            except trio.WouldBlock:
                return
            await self._flush(self._take_batch(first))

    def _answer_everyone_down(self, error: DatabaseDownError) -> None:
        """The database just went down: nobody waits for it (the in-flight batch retries on)."""
        for pending in list(self._waiting):
            pending.answer(error=error)
        while True:  # answered already; dropping them frees room for callers blocked in send
            try:
                self._receive.receive_nowait()
            except trio.WouldBlock:
                return

    def _take_batch(self, first: _Pending) -> list[_Pending]:
        batch = [first]
        rows = len(first.request.rows)
        while rows < self._max_batch_rows:
            try:
                pending = self._receive.receive_nowait()
            except trio.WouldBlock:
                break
            batch.append(pending)
            rows += len(pending.request.rows)
        return [pending for pending in batch if not pending.done.is_set()]

    async def _flush(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        try:
            results = await self._commit_with_retries(batch)
        except StorageUnavailableError as exc:
            for pending in batch:
                pending.answer(error=exc)
            return
        except StorageError as exc:
            if len(batch) == 1:
                logger.error("write failed: %s", exc)
                batch[0].answer(error=exc)
                return
            for pending in batch:  # find the culprit; let the others commit
                await self._flush([pending])
            return
        self.batches_committed += 1
        for pending, result in zip(batch, results, strict=True):
            self.rows_committed += result.inserted_count
            pending.answer(result=result)

    async def _commit_with_retries(self, batch: list[_Pending]) -> list[WriteResult]:
        # even_if_down: this batch was accepted while the database was up; it is retried on
        # schedule even after an outage was noticed (its callers have had their 503 by then).
        requests = [pending.request for pending in batch]
        for attempt, delay in enumerate((*self._retry_delays, math.inf)):
            started = trio.current_time()
            try:
                results = await self._database.run_asyncio(
                    lambda connection: self._apply_batch(connection, requests),
                    even_if_down=True,
                )
            except StorageUnavailableError as exc:
                metrics.group_commit.observe(trio.current_time() - started)
                if delay == math.inf:
                    raise
                if isinstance(exc, DatabaseSilentError):
                    # Its callers have waited a whole call timeout: they answer 503 now, as
                    # in an outage; the batch keeps its retries (a resend is a duplicate).
                    for pending in batch:
                        pending.answer(error=exc)
                logger.warning(
                    "database write failed (attempt %d), retrying in %.0f s: %s",
                    attempt + 1,
                    delay,
                    exc,
                )
                await self._pause_before_retry(delay)
                continue
            metrics.group_commit.observe(trio.current_time() - started)
            return results
        raise AssertionError("unreachable")

    async def _pause_before_retry(self, delay: float) -> None:
        """Sleep ``delay``; during an outage, only until the database is back if that is sooner.

        New writes queue behind the batch in flight, so once the probe has seen the database
        answer, waiting out the rest of the delay would only hold them up.
        """
        if self._availability.is_down:
            with trio.move_on_after(delay):
                await self._availability.wait_up()
        else:
            await trio.sleep(delay)
