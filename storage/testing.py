"""Synchronous database helpers for tests and fixtures (not used by the running hub).

Each call opens one asyncpg connection inside its own ``asyncio.run`` and blocks until done,
so they suit sync pytest fixtures and checks outside trio; from trio code go through
``trio.to_thread.run_sync``. Tests import these instead of asyncio/asyncpg, which only
``storage/`` may touch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from storage.dsn import asyncpg_dsn, with_database

T = TypeVar("T")

CONNECT_TIMEOUT = 10.0


def database_url(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server ``server_url`` points at (any database)."""
    return with_database(server_url, name)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """Create database ``name`` (a copy of ``template`` if given) and return its URL.

    The template must have no open connections while it is copied.
    """
    statement = f"CREATE DATABASE {_identifier(name)}"
    if template is not None:
        statement += f" TEMPLATE {_identifier(template)}"
    _run(server_url, lambda connection: connection.execute(statement))
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting anyone still connected to it."""
    statement = f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)"
    _run(server_url, lambda connection: connection.execute(statement))


def execute(dsn: str, sql: str, *args: Any) -> str:
    """Run one statement; return the server's status tag, e.g. ``"INSERT 0 1"``."""
    status: str = _run(dsn, lambda connection: connection.execute(sql, *args))
    return status


def execute_script(dsn: str, sql: str) -> None:
    """Run several ``;``-separated statements without parameters, in one transaction."""

    async def run_script(connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            await connection.execute(sql)

    _run(dsn, run_script)


def fetch(dsn: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """All rows of a query, each as a plain dict."""

    async def rows(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        return [dict(row) for row in await connection.fetch(sql, *args)]

    return _run(dsn, rows)


def fetchval(dsn: str, sql: str, *args: Any) -> Any:
    """The first column of the first row of a query, or ``None``."""
    return _run(dsn, lambda connection: connection.fetchval(sql, *args))


def table_names(dsn: str, schema: str = "public") -> set[str]:
    """Names of the base tables in ``schema``."""
    rows = fetch(
        dsn,
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        schema,
    )
    return {row["table_name"] for row in rows}


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def on_connection() -> T:
        connection = await asyncpg.connect(asyncpg_dsn(dsn), timeout=CONNECT_TIMEOUT)
        try:
            return await work(connection)
        finally:
            await connection.close()

    return asyncio.run(on_connection())
