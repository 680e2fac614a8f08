"""Query parameters of the reading endpoints: limits, time bounds, and keyset cursors.

One cursor format for every paged list: the sort key of the last item shown (a timestamp
with full microseconds, then the id that breaks ties), as opaque base64 text. A cursor that
was tampered with answers 400 ``validation_error`` naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from hub.clock import parse_timestamp
from hub.errors import InvalidInputError
from storage.database import Row

MAX_PAGE = 10_000
DEFAULT_PAGE = 100

KeyPart = datetime | str | int
T = TypeVar("T")


def encode_cursor(*key: KeyPart) -> str:
    """An opaque cursor just past the item whose sort key is ``key``."""
    parts = [part.isoformat() if isinstance(part, datetime) else part for part in key]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: Sequence[type]) -> tuple[Any, ...]:
    """The key inside ``cursor``, its parts of the types in ``shape`` (datetime, str, int)."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        parts = json.loads(raw)
        if not isinstance(parts, list) or len(parts) != len(shape):
            raise ValueError("wrong length")
        key: list[Any] = []
        for part, kind in zip(parts, shape, strict=True):
            if kind is datetime:
                moment = datetime.fromisoformat(part) if isinstance(part, str) else None
                if moment is None or moment.tzinfo is None:
                    raise ValueError("not a timestamp")
                key.append(moment)
            elif kind is int and (isinstance(part, bool) or not isinstance(part, int)):
                raise ValueError("not an integer")
            elif kind is int and not -(2**63) < part < 2**63:
                raise ValueError("out of range")
            elif isinstance(part, kind):
                key.append(part)
            else:
                raise ValueError("wrong type")
        return tuple(key)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidInputError(
            "validation_error", "Invalid cursor", field="cursor", received_value=cursor
        ) from None


def optional_cursor(cursor: str | None, shape: Sequence[type]) -> tuple[Any, ...] | None:
    """:func:`decode_cursor` for a ``cursor`` parameter that may be absent or empty."""
    return decode_cursor(cursor, shape) if cursor else None


def parse_limit(value: str | None) -> int:
    """``limit`` in 1..10 000 (default 100); 400 ``validation_error`` otherwise."""
    if value is None:
        return DEFAULT_PAGE
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(
            "validation_error",
            f"limit must be an integer from 1 to {MAX_PAGE}",
            field="limit",
            received_value=value,
        )
    return limit


def parse_query_timestamp(name: str, value: str | None) -> datetime | None:
    """A ``from``/``to`` query value; 400 ``invalid_timestamp`` if malformed."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise InvalidInputError(
            "invalid_timestamp",
            f"{name} must look like 2025-12-16T10:30:45.123Z",
            field=name,
            received_value=value,
        ) from None


def page_body(
    rows: Sequence[Row],
    limit: int,
    *,
    render: Callable[[Row], T],
    key: Callable[[Row], tuple[KeyPart, ...]],
) -> dict[str, Any]:
    """``{"items", "next_cursor"}`` from rows fetched with ``limit + 1`` (one more shows there
    is a next page; the cursor points past the last item shown)."""
    shown = rows[:limit]
    next_cursor = encode_cursor(*key(shown[-1])) if len(rows) > limit and shown else None
    return {"items": [render(row) for row in shown], "next_cursor": next_cursor}
