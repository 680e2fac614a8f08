"""Request bodies in, validated models or a :class:`~hub.errors.ContractError` out.

Every 400 the wire contract defines for a malformed body comes from here, with the exact code
(CONTRACT §1.1), the dotted ``field``, the ``received_value`` and all field errors listed in
``details.errors``. Nothing here does I/O or reads the clock; callers pass ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError

from hub.clock import format_timestamp
from hub.contract.errors import InvalidInputError
from hub.contract.mapping import CodeRule, Loc, dotted, raise_first, to_field_errors
from hub.contract.text import may_hold_unstorable, screen

M = TypeVar("M", bound=BaseModel)

LIVE_MAX_AGE = timedelta(seconds=300)
"""How old a live-endpoint timestamp may be (TVM-VAL-003)."""

MAX_FUTURE_SKEW = timedelta(seconds=5)
"""How far ahead of the hub's clock any timestamp may be."""


def parse_json_object(raw: bytes, *, clean_text: bool = False) -> dict[str, Any]:
    """Decode a body that must be a JSON object; ``invalid_json`` / ``validation_error`` else.

    Text PostgreSQL cannot store is refused (``clean_text``: replaced, for emergency stops).
    """
    data = decode_json(raw, clean_text=clean_text)
    if not isinstance(data, dict):
        raise InvalidInputError("validation_error", "body must be a JSON object")
    return data


def decode_json(raw: bytes | str, *, clean_text: bool = False) -> Any:
    """Decode any JSON document (bytes must be UTF-8); ``invalid_json`` when it is not JSON.

    NaN and Infinity are refused: they are not JSON, and no contract number may hold them.
    A string PostgreSQL cannot store (U+0000, a lone surrogate) is refused with 400
    ``validation_error`` naming its field — except in an emergency stop (an object of
    ``type`` ``emergency_stop``, or ``clean_text``), where it is replaced by U+FFFD.
    """
    if isinstance(raw, bytes) and not (
        b"NaN" in raw or b"Infinity" in raw or may_hold_unstorable(raw)
    ):
        # pydantic-core's parser (Rust) decodes the same JSON to the same values at about
        # half the cost of the stdlib's, which is much of a 1000-message bulk upload. It
        # also takes NaN and Infinity, which the stdlib path refuses, may read an escaped
        # lone surrogate its own way, and its errors read differently: all of those, and
        # anything it does not take, go the stdlib way, for the same answer.
        try:
            data = pydantic_core.from_json(raw)
        except ValueError:
            pass
        else:
            return screen(data, raw, clean=clean_text)
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        _invalid_json("body is not UTF-8")
    except json.JSONDecodeError as exc:
        _invalid_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        _invalid_json(str(exc) or "nested too deeply")
    return screen(data, raw, clean=clean_text)


def parse_model(model: type[M], raw: bytes, *, code: CodeRule | None = None) -> M:
    """Validate a raw JSON body against ``model`` in one pass."""
    if b"NaN" in raw or b"Infinity" in raw or may_hold_unstorable(raw):
        # pydantic's parser accepts these non-JSON constants, and PostgreSQL cannot store
        # every string JSON can hold: the stdlib path refuses both.
        return validate_model(model, parse_json_object(raw), code=code)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            context = errors[0].get("ctx") or {}
            _invalid_json(str(context.get("error", "malformed JSON")))
        raise_first(to_field_errors(model, errors, _renderer(""), code=code))


def validate_model(
    model: type[M], data: Any, *, path_prefix: str = "", code: CodeRule | None = None
) -> M:
    """Validate already-decoded JSON data; ``path_prefix`` is put before every field path.

    ``code`` overrides the field → code rule (see :data:`~hub.contract.mapping.CodeRule`).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise_first(to_field_errors(model, errors, _renderer(path_prefix), code=code))


def check_live_timestamp(
    ts: datetime, now: datetime, *, field: str = "timestamp", raw: str | None = None
) -> None:
    """Refuse a live-endpoint timestamp outside ``now - 300 s ≤ ts ≤ now + 5 s``."""
    _check_window(ts, now, max_age=LIVE_MAX_AGE, field=field, raw=raw)


def check_bulk_timestamp(
    ts: datetime,
    now: datetime,
    *,
    max_age: timedelta,
    field: str = "timestamp",
    raw: str | None = None,
) -> None:
    """Refuse a bulk timestamp outside ``now - max_age ≤ ts ≤ now + 5 s``."""
    _check_window(ts, now, max_age=max_age, field=field, raw=raw)


def _check_window(
    ts: datetime, now: datetime, *, max_age: timedelta, field: str, raw: str | None
) -> None:
    """The shared window rule; the error names the field and echoes the wire string."""
    if now - max_age <= ts <= now + MAX_FUTURE_SKEW:
        return
    if ts < now - max_age:
        message = f"{field} is more than {_seconds(max_age)} s in the past"
    else:
        message = f"{field} is more than {_seconds(MAX_FUTURE_SKEW)} s ahead of server time"
    raise InvalidInputError(
        "invalid_timestamp",
        message,
        field=field,
        received_value=raw if raw is not None else format_timestamp(ts),
        details={"server_time": format_timestamp(now)},
    )


def _seconds(span: timedelta) -> str:
    """``300`` for 5 minutes, ``0.5`` for half a second."""
    seconds = span.total_seconds()
    return f"{seconds:.0f}" if seconds == int(seconds) else f"{seconds:g}"


def _renderer(prefix: str) -> Callable[[Loc], str | None]:
    """A loc → wire-path function for plain (non-bulk) bodies."""

    def render(loc: Loc) -> str | None:
        return dotted(loc, prefix) or None

    return render


def _refuse_constant(name: str) -> Any:
    """``json.loads`` hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def _invalid_json(detail: str) -> NoReturn:
    raise InvalidInputError("invalid_json", f"Malformed JSON: {detail}") from None
