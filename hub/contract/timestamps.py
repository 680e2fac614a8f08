"""The wire timestamp type: a string on the wire, an aware UTC ``datetime`` in the model.

Parsing accepts what :func:`hub.clock.parse_timestamp` accepts (exact form, real date);
serialising to JSON goes through :func:`hub.clock.format_timestamp`, so for any accepted
input ``format_timestamp(parse_timestamp(text)) == text`` — the original string is always
recoverable with :func:`wire_text`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from hub.clock import TIMESTAMP_PATTERN, format_timestamp

EXAMPLE_TIMESTAMP = "2025-12-16T10:30:45.123Z"

_FORM_MESSAGE = "must be an ISO 8601 UTC timestamp with milliseconds, like " + EXAMPLE_TIMESTAMP


def _validate_wire_timestamp(value: Any) -> datetime:
    """Turn a wire string (or, from Python code, an aware datetime) into an aware UTC datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is UTC and not value.microsecond % 1000:
            return value  # already what the wire gives (a bulk message's checked head)
        if value.tzinfo is None:
            raise PydanticCustomError("invalid_timestamp", "must be timezone-aware")
        moment: datetime = value.astimezone(UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    # isascii: hub.clock's \d would also match non-ASCII digits, which strptime accepts.
    if not isinstance(value, str) or not value.isascii() or not TIMESTAMP_PATTERN.fullmatch(value):
        raise PydanticCustomError("invalid_timestamp", _FORM_MESSAGE)
    try:
        return parse_exact(value)
    except ValueError:
        raise PydanticCustomError(
            "invalid_timestamp", "must be a real calendar date and time"
        ) from None


def parse_exact(text: str) -> datetime:
    """:func:`hub.clock.parse_timestamp` for text already known to have the exact form.

    ``datetime.fromisoformat`` does the same job as ``strptime`` on the exact form (the tests
    prove both agree) at a twentieth of the cost, which is most of a 1000-message bulk parse.
    """
    return datetime.fromisoformat(text)


WireTimestamp = Annotated[
    datetime,
    PlainValidator(_validate_wire_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": TIMESTAMP_PATTERN.pattern,
            "examples": [EXAMPLE_TIMESTAMP],
        }
    ),
]
"""A timestamp field, ISO 8601 UTC with milliseconds (``2025-12-16T10:30:45.123Z``)."""


def wire_text(moment: datetime) -> str:
    """The wire string of a model timestamp (identical to what the client sent)."""
    return format_timestamp(moment)
