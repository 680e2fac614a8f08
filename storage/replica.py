"""Reads that a read replica may serve (TVM-SCALE-002): history and the audit log.

With ``DATABASE_READ_URL`` set, :class:`ReadDatabases` sends those reads to the replica and
falls back to the primary whenever the replica fails (down, silent, refusing connections),
so a lost replica costs latency, never an answer. Writes, the fleet snapshot and anything a
caller reads right after writing it stay on the primary: a replica lags behind it.

The replica's pool opens no connection at start (``min_size=0``), so a hub starts while its
replica is away; the replica has its own availability books and probe, so once it is known
down its reads go straight to the primary until the probe sees it answer again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from hub import metrics
from storage.database import Database, StorageError, open_database

logger = logging.getLogger(__name__)

T = TypeVar("T")

REPLICA_CONNECT_TIMEOUT = 2.0
"""How long a read waits for a replica connection before it falls back to the primary."""

FALLBACK_LOG_INTERVAL = 60.0
"""At most one warning per this many seconds about reads falling back (each is counted)."""

REPLAY_LAG_SQL = "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8"
"""Seconds since the replica last replayed a transaction; NULL on a server that is no replica."""


class ReadDatabases:
    """The database a replica-eligible read goes to: the replica if any and answering."""

    def __init__(self, primary: Database, replica: Database | None = None) -> None:
        self.primary = primary
        self.replica = replica
        self.fallbacks = 0
        self._last_warning: float | None = None

    async def read(self, query: Callable[[Database], Awaitable[T]]) -> T:
        """Run ``query`` on the replica, or on the primary when there is none or it fails.

        Blocks for the replica's attempt (at most its call timeout, or nothing while it is
        known down) and then the primary's. Errors of the primary are raised as they come.
        """
        if self.replica is None:
            return await query(self.primary)
        try:
            return await query(self.replica)
        except StorageError as exc:
            self._fell_back(exc)
        return await query(self.primary)

    async def replica_status(self) -> dict[str, Any] | None:
        """``None`` without a replica; else its health, with ``replay_lag_seconds`` when the
        server is a streaming replica (``null`` otherwise). Never raises."""
        replica = self.replica
        if replica is None:
            return None
        if replica.availability.down_since is not None:
            return self._replica_down("unreachable")
        try:
            latency = await replica.ping()
            lag = await replica.fetchval(REPLAY_LAG_SQL)
        except StorageError as exc:
            return self._replica_down(type(exc).__name__)
        return {
            "status": "ok",
            "latency_ms": round(latency * 1000, 2),
            "replay_lag_seconds": None if lag is None else round(float(lag), 3),
            "reads_fall_back": self.fallbacks,
        }

    def _replica_down(self, error: str) -> dict[str, Any]:
        return {"status": "down", "error": error, "reads_fall_back": self.fallbacks}

    def _fell_back(self, exc: StorageError) -> None:
        self.fallbacks += 1
        metrics.replica_fallbacks.inc()
        now = trio.current_time()
        if self._last_warning is None or now - self._last_warning >= FALLBACK_LOG_INTERVAL:
            self._last_warning = now
            logger.warning(
                "read replica failed (%s); reads go to the primary (%d so far)", exc, self.fallbacks
            )


@asynccontextmanager
async def open_read_databases(
    primary: Database, replica_dsn: str | None, *, max_size: int
) -> AsyncIterator[ReadDatabases]:
    """:class:`ReadDatabases` over ``primary`` and, if ``replica_dsn`` is given, a pool of
    the replica (opened without connecting; closed on exit). Needs the asyncio bridge."""
    if replica_dsn is None:
        yield ReadDatabases(primary)
        return
    async with open_database(
        replica_dsn, min_size=0, max_size=max_size, connect_timeout=REPLICA_CONNECT_TIMEOUT
    ) as replica:
        yield ReadDatabases(primary, replica)
