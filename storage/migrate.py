"""Schema migrations: Alembic with plain-SQL revisions in ``storage/migrations``.

There is no alembic.ini; the configuration is built here and points at the package folder,
so it works from a source checkout and from an installed wheel alike. SQLAlchemy is only
Alembic's transport (asyncpg dialect, no ORM), so asyncpg stays the one database driver.

Every function here blocks (connecting and migrating takes 0.1–1 s) and runs its own
asyncio event loop: trio code must call them through ``trio.to_thread.run_sync``. Alembic
logs at INFO on the ``alembic`` logger, which stays at WARNING unless configured otherwise.
Hubs migrating the same database at the same time serialise on an advisory lock (and
calls within one process on a lock of their own).
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import asyncpg

from storage.dsn import asyncpg_dsn, redact

if TYPE_CHECKING:
    # Alembic is imported on first use: importing it logs at INFO, before we can quiet it.
    from alembic.config import Config
    from sqlalchemy import Connection

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

T = TypeVar("T")

# Alembic's ``context`` and ``op`` are module-level proxies, so two migrations must not run
# in one process at once; across processes the advisory lock in env.py serialises them.
_ALEMBIC_LOCK = threading.Lock()


def upgrade(dsn: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (default: the newest). Blocks; see module doc."""
    _quiet_alembic()
    from alembic import command

    _run(dsn, lambda config: command.upgrade(config, revision))
    logger.info("database %s migrated up to %s", redact(dsn), revision)


def downgrade(dsn: str, revision: str = "base") -> None:
    """Undo migrations down to ``revision``: ``"base"`` (empty schema), an id, or ``"-1"``.

    Blocks; see module doc. Downgrading to base drops every table and all its data.
    """
    _quiet_alembic()
    from alembic import command

    _run(dsn, lambda config: command.downgrade(config, revision))
    logger.info("database %s migrated down to %s", redact(dsn), revision)


def current(dsn: str) -> str | None:
    """The revision the database is at, or ``None`` if it has never been migrated. Blocks."""
    _quiet_alembic()
    from alembic.runtime.migration import MigrationContext

    def read_revision(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return asyncio.run(_on_connection(dsn, read_revision))


def head() -> str:
    """The newest revision shipped with this code (no database needed)."""
    _quiet_alembic()
    from alembic.script import ScriptDirectory

    newest = ScriptDirectory.from_config(_config()).get_current_head()
    if newest is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return newest


def _config() -> Config:
    from alembic.config import Config

    config = Config(stdout=io.StringIO())
    # ConfigParser interpolation would read "%" in the install path as a reference.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def _run(dsn: str, action: Callable[[Config], None]) -> None:
    def with_connection(connection: Connection) -> None:
        config = _config()
        config.attributes["connection"] = connection
        action(config)

    with _ALEMBIC_LOCK:
        asyncio.run(_on_connection(dsn, with_connection))


async def _on_connection(dsn: str, work: Callable[[Connection], T]) -> T:
    """Run ``work`` on one SQLAlchemy connection over asyncpg, committing if it succeeds."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    target = asyncpg_dsn(dsn)

    async def connect() -> asyncpg.Connection:
        # asyncpg parses the DSN itself, so every form it understands (Unix socket dirs in
        # ?host=, sslmode, passfile…) works without translating it to SQLAlchemy's URL rules.
        return await asyncpg.connect(target)

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(work)
            await connection.commit()
            return result
    finally:
        await engine.dispose()


def _quiet_alembic() -> None:
    alembic_logger = logging.getLogger("alembic")
    if alembic_logger.level == logging.NOTSET:
        alembic_logger.setLevel(logging.WARNING)
