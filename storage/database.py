"""The PostgreSQL pool, reached from trio through trio-asyncio.

This module and its siblings in ``storage/`` are the only code that knows asyncio, asyncpg
and trio-asyncio. Everything above sees trio coroutines returning plain mappings, and the
:class:`StorageError` family instead of asyncpg's exceptions.

Every call here needs the trio-asyncio loop that :func:`open_asyncio_bridge` opens around
the whole server. Cancelling a call cancels the asyncio side too; a statement already sent
may still complete on the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import trio
import trio_asyncio

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = Mapping[str, Any]


class StorageError(Exception):
    """The database refused or failed a statement for a reason retrying will not fix."""


class StorageUnavailableError(StorageError):
    """The database could not be reached or gave a transient error; retrying may succeed."""


class UnsafeDurabilityError(StorageError):
    """The server runs with ``fsync`` or ``synchronous_commit`` off: a commit could be lost."""


class UniqueViolationError(StorageError):
    """An insert collided with a unique key (a name or id already taken)."""


_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,
)


def translate_error(exc: BaseException) -> StorageError:
    """Our own exception for an asyncpg/asyncio failure."""
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return UniqueViolationError(str(exc))
    if isinstance(exc, _TRANSIENT):
        return StorageUnavailableError(f"{type(exc).__name__}: {exc}")
    return StorageError(f"{type(exc).__name__}: {exc}")


@asynccontextmanager
async def open_asyncio_bridge() -> AsyncIterator[None]:
    """Run the body with a trio-asyncio loop open, so storage calls work in every child task."""
    async with trio_asyncio.open_loop():
        yield


class Database:
    """A pool of asyncpg connections; each method is one round trip on one pooled connection."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout

    async def _call(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def on_connection() -> T:
            async with self._pool.acquire(timeout=self._acquire_timeout) as connection:
                return await work(connection)

        try:
            result: T = await trio_asyncio.aio_as_trio(on_connection)()
            return result
        except StorageError:
            raise
        except (trio.Cancelled, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise translate_error(exc) from exc

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

    async def run_asyncio(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run an asyncio function on one pooled connection (for storage/ modules only)."""
        return await self._call(work)

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
        """Round-trip time of ``SELECT 1`` in seconds (raises when the database is down)."""
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


@asynccontextmanager
async def open_database(
    dsn: str, *, min_size: int = 5, max_size: int = 20, connect_timeout: float = 30.0
) -> AsyncIterator[Database]:
    """Open a pool (needs :func:`open_asyncio_bridge`); close it on exit.

    Blocks until ``min_size`` connections are open or ``connect_timeout`` seconds pass, then raises
    :class:`StorageUnavailableError`. On exit waits for connections to be released.
    """

    async def create() -> asyncpg.Pool:
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=connect_timeout,
            command_timeout=connect_timeout,
            max_inactive_connection_lifetime=300.0,
        )

    try:
        pool = await trio_asyncio.aio_as_trio(create)()
    except Exception as exc:
        raise translate_error(exc) from exc
    try:
        yield Database(pool, acquire_timeout=connect_timeout)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            try:
                await trio_asyncio.aio_as_trio(pool.close)()
            except Exception:
                logger.warning("closing the database pool failed", exc_info=True)
