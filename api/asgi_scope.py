"""The ASGI types the lean paths use, and reading a scope the way Quart (Werkzeug) reads it:
headers by name, the query."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers by lower-case name (the first of repeated ones, as Werkzeug's
    ``Headers.get`` gives)."""
    found: dict[str, str] = {}
    for name, value in raw:
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found


def query_pairs(scope: Scope) -> list[tuple[str, str]]:
    """The query parameters of ``scope``, in order, decoded as Werkzeug decodes them (a byte
    that is not UTF-8 becomes its ``%XX`` escape); none when there is no query."""
    raw = bytes(scope.get("query_string", b""))
    if not raw:
        return []
    return parse_qsl(raw.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
