"""PostgreSQL connection strings: normalising, renaming the database, hiding the password.

Pure string functions, no I/O. They accept every URL form the hub meets:

- TCP: ``postgresql://user:secret@db.example:5432/tvm?sslmode=require``
- ``postgres://`` (Heroku style) and ``postgresql+asyncpg://`` (SQLAlchemy style)
- a Unix socket directory as pgserver prints it: ``postgresql://postgres:@/postgres?host=/dir``
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


class DsnError(ValueError):
    """A connection string is not a ``postgresql://`` URL."""


def asyncpg_dsn(dsn: str) -> str:
    """The same connection as a ``postgresql://`` URL that asyncpg (and libpq) accept."""
    parts = urlsplit(dsn)
    if parts.scheme not in _SCHEMES:
        raise DsnError(f"not a postgresql:// URL: {redact(dsn)}")
    return urlunsplit(parts._replace(scheme="postgresql"))


def with_database(dsn: str, name: str) -> str:
    """The same server and credentials, connected to database ``name`` instead."""
    parts = urlsplit(asyncpg_dsn(dsn))
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in ("dbname", "database")
    ]
    return urlunsplit(
        parts._replace(path="/" + quote(name, safe=""), query=urlencode(query, safe="/"))
    )


def redact(dsn: str) -> str:
    """The URL with its password replaced by ``***``, for logs and error messages."""
    parts = urlsplit(dsn)
    if not parts.password:
        return dsn
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))
