"""The PostgreSQL pool, reached from trio through trio-asyncio.

This module and its siblings in ``storage/`` are the only code that knows asyncio, asyncpg
and trio-asyncio. Everything above sees trio coroutines returning plain mappings, and the
:class:`StorageError` family instead of asyncpg's exceptions.

Every call here needs the trio-asyncio loop that :func:`open_asyncio_bridge` opens around
the whole server. Cancelling a call cancels the asyncio side too but does not wait for it; a
statement already sent may still complete on the server.

Database outages (TVM-ERR-003): every call is bounded by ``call_timeout`` (1.5 s), so a request
never waits longer than that for the database, whether the server refuses connections or has
stopped answering. A call that finds the server gone marks it down in the
:class:`~storage.availability.DatabaseAvailability` the :class:`Database` owns; from then on
calls fail at once with :class:`DatabaseDownError` until a probe (every second, on a fresh
connection) or another call gets an answer. :func:`open_database` runs that probe itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import trio
import trio_asyncio

if TYPE_CHECKING:
    from storage.availability import DatabaseAvailability

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = Mapping[str, Any]


class StorageError(Exception):
    """The database refused or failed a statement for a reason retrying will not fix."""


class StorageUnavailableError(StorageError):
    """The database could not be reached or gave a transient error; retrying may succeed."""


class DatabaseDownError(StorageUnavailableError):
    """The database is unreachable: refused, connection lost, shutting down, or no answer
    within the call's deadline. Raised at once, without trying, while it is known to be down.
    """


class DatabaseSilentError(StorageUnavailableError):
    """A statement got no answer within the call's deadline.

    Not proof of an outage: an event loop busy with its own load reads answers late too. The
    database is marked down only when a probe on a fresh connection gets no answer either
    (:meth:`~storage.availability.DatabaseAvailability.call`); meanwhile this call answers
    503 and may be retried.
    """


class UnsafeDurabilityError(StorageError):
    """The server runs with ``fsync`` or ``synchronous_commit`` off: a commit could be lost."""


class PoolBusyError(StorageUnavailableError):
    """Every pooled connection stayed busy for the pool timeout: our own load, not an outage.

    The database is not marked down; the request answers 503 and may be retried.
    """


class UniqueViolationError(StorageError):
    """An insert collided with a unique key (a name or id already taken)."""


CALL_TIMEOUT = 1.5
"""Seconds a call may take before it answers 503 and the database is probed."""

PROBE_TIMEOUT = 0.5
"""Seconds a probe (``SELECT 1`` on a fresh connection, timed on a thread of its own) may
take before the database counts as down: a silent database is found down within
``CALL_TIMEOUT + PROBE_TIMEOUT`` = 2 s."""

_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, no socket, connect timed out (TimeoutError is an OSError)
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,  # class 08, incl. ConnectionDoesNotExistError
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)
_TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.InterfaceError,
)


def translate_error(exc: BaseException) -> StorageError:
    """Our own exception for an asyncpg/asyncio failure."""
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return UniqueViolationError(str(exc))
    if isinstance(exc, _UNREACHABLE):
        return DatabaseDownError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, _TRANSIENT):
        return StorageUnavailableError(f"{type(exc).__name__}: {exc}")
    return StorageError(f"{type(exc).__name__}: {exc}")


def _task_of_its_own(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """An asyncio task for ``work`` that runs in an empty context, not the caller's.

    asyncpg arms an asyncio timer for every statement and pool acquire, and each timer keeps
    the context it was made in. trio-asyncio leaves a cancelled timer in its heap until the
    timer's deadline (30 s here), so in the caller's context every database call would keep
    its request's objects alive that long: about 6 KB per request. In an empty context the
    timers keep nothing.
    """
    return asyncio.get_running_loop().create_task(work, context=contextvars.Context())


async def _detached(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` as its own asyncio task; if cancelled, cancel it but do not wait for it.

    asyncpg's clean-up after a cancelled query (cancel request, connection reset) talks to the
    server; with a server that stopped answering that could take the connect timeout, and
    trio-asyncio waits for the asyncio side to finish before the trio caller may return.
    """
    task = _task_of_its_own(make())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        task.add_done_callback(_discard_outcome)
        raise


async def _acquire_detached(pool: asyncpg.Pool, wait_seconds: float) -> asyncpg.Connection:
    """A pooled connection within ``wait_seconds`` (:class:`PoolBusyError` after), acquired
    in a task of its own: if the trio caller gives up meanwhile, a connection acquired after
    all is put back into the pool, never lost."""
    task = _task_of_its_own(asyncio.wait_for(pool.acquire(), wait_seconds))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(partial(_release_unclaimed, pool))
        raise
    except TimeoutError:
        raise PoolBusyError(f"no free database connection within {wait_seconds:g} s") from None


_RELEASES: set[asyncio.Future[None]] = set()
"""Releases of connections nobody claimed, held until done (asyncio keeps weak references)."""


def _release_unclaimed(pool: asyncpg.Pool, task: asyncio.Future[Any]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    release = asyncio.ensure_future(pool.release(task.result()))
    _RELEASES.add(release)
    release.add_done_callback(_RELEASES.discard)


def _probe_in_thread(dsn: str, timeout: float) -> None:
    """Connect and ``SELECT 1`` within ``timeout`` seconds, on this thread's own asyncio loop
    (:class:`DatabaseDownError` if the server does not answer in time)."""

    async def select_one() -> None:
        connection = await asyncpg.connect(dsn, timeout=timeout)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            connection.terminate()

    async def bounded() -> None:
        try:
            await asyncio.wait_for(select_one(), timeout)
        except TimeoutError:
            raise DatabaseDownError(f"no answer from the database within {timeout:g} s") from None

    asyncio.run(bounded())


def _discard_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("abandoned database call ended with %r", task.exception())


ASYNCIO_BURST = 64
"""The most asyncio callbacks the bridge runs in one step of its trio task."""


@asynccontextmanager
async def open_asyncio_bridge() -> AsyncIterator[None]:
    """Run the body with a trio-asyncio loop open, so storage calls work in every child task."""
    async with trio_asyncio.open_loop() as loop:
        _run_callbacks_in_bursts(loop)
        yield


def _run_callbacks_in_bursts(loop: Any) -> None:
    """Have ``loop`` run every asyncio callback that is ready, up to :data:`ASYNCIO_BURST`,
    in one step of its trio task.

    trio-asyncio (0.16 here) runs one callback per step: it takes each from a trio channel
    with ``await receive()``, and every step waits for a turn of trio's scheduler. A database
    round trip took 24 such steps (the transport's read, asyncpg's futures, the shield and
    the task's wake-ups), so on a busy hub each call waited 24 turns; now it takes 3. The
    callbacks keep their order; only the checkpoints between ready ones are gone.

    This wraps trio-asyncio's private ``_main_loop_one`` (its loop task calls it once per
    step, and ``no_wait=True`` takes a ready callback or raises :class:`trio.WouldBlock`).
    A trio-asyncio without it keeps its own pace: slower, never wrong, and
    ``tests/integration/test_asyncio_bridge.py`` then fails on the steps a call takes.
    """
    run_one = getattr(loop, "_main_loop_one", None)
    if run_one is None:
        logger.warning("trio-asyncio has no _main_loop_one: asyncio callbacks run one per step")
        return

    async def run_burst(no_wait: bool = False) -> None:
        await run_one(no_wait)
        for _ in range(ASYNCIO_BURST - 1):
            try:
                await run_one(True)
            except trio.WouldBlock:
                return

    loop._main_loop_one = run_burst


class Database:
    """A pool of asyncpg connections; each method is one round trip on one pooled connection.

    Every method is bounded by ``call_timeout`` and fails at once with
    :class:`DatabaseDownError` while :attr:`availability` says the database is down.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        dsn: str,
        availability: DatabaseAvailability,
        acquire_timeout: float,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._acquire_timeout = acquire_timeout
        self._call_timeout = call_timeout
        self.availability = availability
        """Up or down; shared by every view of this pool (:meth:`with_call_timeout`)."""

    @property
    def dsn(self) -> str:
        """The connection URL this pool was opened with."""
        return self._dsn

    def with_call_timeout(self, seconds: float) -> Database:
        """The same pool and availability with another deadline per call.

        For background jobs whose statements may run long (the retention job moves 10 000
        rows per statement); requests keep the default so they answer within 2 s.
        """
        return Database(
            self._pool,
            dsn=self._dsn,
            availability=self.availability,
            acquire_timeout=self._acquire_timeout,
            call_timeout=seconds,
        )

    async def _call(
        self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, even_if_down: bool = False
    ) -> T:
        return await self.availability.call(partial(self._attempt, work), even_if_down=even_if_down)

    async def _attempt(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """One bounded try on a pooled connection, without the availability books.

        Waiting for a free connection is not the database's silence: it is bounded by the
        pool timeout and ends in :class:`PoolBusyError` (503, the database stays up). Only
        the statement itself is bounded by the call timeout, whose expiry
        (:class:`DatabaseSilentError`) has a probe tell whether the database is down.
        """
        pool = self._pool
        try:
            connection = await trio_asyncio.aio_as_trio(_acquire_detached)(
                pool, self._acquire_timeout
            )
        except StorageError:
            raise
        except Exception as exc:
            raise translate_error(exc) from exc

        async def use() -> T:
            try:
                return await work(connection)
            finally:
                await pool.release(connection)

        with trio.move_on_after(self._call_timeout):
            try:
                result: T = await trio_asyncio.aio_as_trio(_detached)(use)
                return result
            except StorageError:
                raise
            except Exception as exc:
                raise translate_error(exc) from exc
        raise DatabaseSilentError(f"no answer from the database within {self._call_timeout:g} s")

    async def _probe(self) -> None:
        """``SELECT 1`` on a fresh connection (not the pool's, which may all be busy).

        It runs, and is timed, in a thread with an asyncio loop of its own: a hub event loop
        saturated by its own load would read even a prompt answer late, and call a healthy
        database down for as long as the load lasts. Blocks the calling task for at most
        about :data:`PROBE_TIMEOUT` of the thread's time; cancelling it abandons the thread,
        which ends by itself within that time.
        """
        timeout = min(self._call_timeout, PROBE_TIMEOUT)
        try:
            await trio.to_thread.run_sync(
                _probe_in_thread, self._dsn, timeout, abandon_on_cancel=True
            )
        except StorageError:
            raise
        except Exception as exc:
            raise translate_error(exc) from exc

    async def run_probes(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """While the database is down, probe it every second and mark it up when it answers.

        Runs until cancelled; :func:`open_database` starts it, so callers need not.
        """
        await self.availability.run(self._probe, task_status=task_status)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """All rows of a query."""
        return await self._call(lambda connection: connection.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row of a query, or ``None``."""
        return await self._call(lambda connection: connection.fetchrow(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or ``None``."""
        return await self._call(lambda connection: connection.fetchval(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        """Run a statement; return the server's status tag (``INSERT 0 1``)."""
        return await self._call(lambda connection: connection.execute(sql, *args))

    async def transaction(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """Run statements in one transaction and return each one's rows; all or nothing."""

        async def run_all(connection: asyncpg.Connection) -> list[list[Row]]:
            async with connection.transaction():
                return [await connection.fetch(sql, *args) for sql, args in statements]

        return await self._call(run_all)

    async def run_asyncio(
        self, work: Callable[[asyncpg.Connection], Awaitable[T]], *, even_if_down: bool = False
    ) -> T:
        """Run an asyncio function on one pooled connection (for storage/ modules only).

        ``even_if_down`` tries even while the database is known down (the Writer's retries of
        a batch already in flight); a success then marks it up.
        """
        return await self._call(work, even_if_down=even_if_down)

    async def check_durability(self) -> None:
        """Raise :class:`UnsafeDurabilityError` unless ``fsync`` and ``synchronous_commit`` are on.

        A 200 must survive a crash, so the hub refuses to run on a server that could lose it.
        """
        row = await self.fetchrow(
            "SELECT current_setting('fsync') AS fsync,"
            " current_setting('synchronous_commit') AS synchronous_commit"
        )
        assert row is not None
        if row["fsync"] != "on":
            raise UnsafeDurabilityError("PostgreSQL runs with fsync=off; refusing to start")
        if row["synchronous_commit"] == "off":
            raise UnsafeDurabilityError(
                "PostgreSQL runs with synchronous_commit=off; refusing to start"
            )

    async def ping(self) -> float:
        """Round-trip time of ``SELECT 1`` in seconds (raises when the database is down, at
        once if it is already known down)."""
        started = trio.current_time()
        await self.fetchval("SELECT 1")
        return trio.current_time() - started

    def pool_usage(self) -> dict[str, int]:
        """Connections in the pool: size, idle, busy, max."""
        size = self._pool.get_size()
        idle = self._pool.get_idle_size()
        return {
            "size": size,
            "idle": idle,
            "busy": size - idle,
            "max": self._pool.get_max_size(),
        }


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """What a pooled connection needs on its way back to the pool, beyond asyncpg's own part.

    asyncpg rolls back a transaction left open and drops listeners itself; its default reset
    then runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``, one more
    round trip on every release. Nothing of the hub leaves that state on a pooled connection:
    no session ``SET``, no session advisory lock (migrations take a transaction-scoped one on
    their own connection), no cursor outside its transaction, and ``LISTEN`` runs on a
    connection of its own (:mod:`storage.vehicle_changes`). So there is nothing to undo.
    """


@asynccontextmanager
async def open_database(
    dsn: str,
    *,
    min_size: int = 5,
    max_size: int = 20,
    connect_timeout: float = 30.0,
    call_timeout: float = CALL_TIMEOUT,
) -> AsyncIterator[Database]:
    """Open a pool (needs :func:`open_asyncio_bridge`) and its outage probe; close both on exit.

    Blocks until ``min_size`` connections are open or ``connect_timeout`` seconds pass, then raises
    :class:`DatabaseDownError`. While the body runs, a task of this context probes the database
    every second whenever it is down (see :mod:`storage.availability`). On exit stops the
    probe and waits (at most 10 s) for connections to be released.
    """
    # Imported here: storage.availability imports this module's exceptions.
    from storage.availability import DatabaseAvailability

    async def create() -> asyncpg.Pool:
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=connect_timeout,
            command_timeout=connect_timeout,
            # No idle-connection expiry: asyncpg would arm a 300 s timer on every release,
            # which trio-asyncio keeps in its heap for the full 300 s even once cancelled.
            max_inactive_connection_lifetime=0,
            reset=_keep_session,
        )

    try:
        pool = await trio_asyncio.aio_as_trio(create)()
    except Exception as exc:
        raise translate_error(exc) from exc
    database = Database(
        pool,
        dsn=dsn,
        availability=DatabaseAvailability(),
        acquire_timeout=connect_timeout,
        call_timeout=call_timeout,
    )
    try:
        async with trio.open_nursery() as probe_nursery:
            await probe_nursery.start(database.run_probes)
            try:
                yield database
            finally:
                probe_nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            try:
                await trio_asyncio.aio_as_trio(pool.close)()
            except Exception:
                logger.warning("closing the database pool failed", exc_info=True)
