"""Turn pydantic validation errors into contract error codes and messages (CONTRACT §1.1).

The code depends on the field at fault: latitude/longitude → ``invalid_location``, heading →
``invalid_heading``, anything inside ``battery`` → ``invalid_battery``, an enum value →
``invalid_enum`` and so on; everything else is ``validation_error``. Messages name the field
and, for range errors, the model's own bounds ("latitude must be between -90 and 90").
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from hub.contract.errors import NO_VALUE, InvalidInputError

Loc = tuple[str | int, ...]

CodeRule = Callable[[str, Loc], str]
"""Maps a pydantic error type and its loc to a contract code; :func:`contract_code` by default.

Commands (CONTRACT §6.3) pass their own rule so that their fallback is ``invalid_command``.
"""


# Error types our validators raise whose type already *is* the contract code.
_CODE_TYPES = frozenset(
    {"invalid_timestamp", "invalid_enum", "invalid_error_code", "validation_error"}
)

_LEAF_CODES = {
    "latitude": "invalid_location",
    "longitude": "invalid_location",
    "heading": "invalid_heading",
    "speed": "invalid_speed",
    "accuracy": "invalid_accuracy",
    "timestamp": "invalid_timestamp",
    "error_code": "invalid_error_code",
    "state": "invalid_enum",
    "severity": "invalid_enum",
    "subsystem": "invalid_enum",
    "phase": "invalid_enum",
    "priority": "invalid_enum",
    "action": "invalid_enum",
}

MAX_LISTED_ERRORS = 100
"""``details.errors`` is cut at this many entries so a bad 1000-message bulk stays small."""

# Never echo these back: received_value would put a credential in a response and a log.
SECRET_FIELDS = frozenset({"password", "client_secret", "refresh_token", "access_token"})

_TYPE_PHRASES = {
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be an array",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
}

_RANGE_TYPES = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field's failure, already in contract terms."""

    field: str | None
    error: str
    message: str
    received_value: Any = NO_VALUE

    def as_detail(self) -> dict[str, Any]:
        """The ``details.errors`` entry: ``{"field", "error", "message"}``."""
        return {"field": self.field, "error": self.error, "message": self.message}


def contract_code(error_type: str, loc: Loc) -> str:
    """The contract's error code for a pydantic error of ``error_type`` at ``loc``."""
    if error_type == "extra_forbidden":
        return "validation_error"
    if error_type in _CODE_TYPES:
        return error_type
    names = [part for part in loc if isinstance(part, str)]
    if error_type == "missing":
        return "invalid_battery" if "battery" in names[:-1] else "validation_error"
    if "battery" in names:
        return "invalid_battery"
    if error_type == "literal_error":
        return "invalid_enum"
    if names and names[-1] in _LEAF_CODES:
        return _LEAF_CODES[names[-1]]
    return "validation_error"


def dotted(loc: Sequence[str | int], prefix: str = "") -> str:
    """``("location", "latitude")`` → ``location.latitude``; ints become ``[3]``."""
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text


def to_field_errors(
    model: type[BaseModel],
    errors: Sequence[ErrorDetails],
    render: Callable[[Loc], str | None],
    *,
    code: CodeRule | None = None,
) -> list[FieldError]:
    """Translate pydantic's errors for ``model``; ``render`` turns a loc into the wire path.

    ``code`` overrides the field → code rule (default :func:`contract_code`).
    """
    rule = code or contract_code
    bounds = _bounds_of(model)
    result = []
    for error in errors:
        loc = tuple(error["loc"])
        error_type = error["type"]
        names = [part for part in loc if isinstance(part, str)]
        received = NO_VALUE
        if error_type != "missing" and loc and not (SECRET_FIELDS & set(names)):
            received = error.get("input", NO_VALUE)
        result.append(
            FieldError(
                field=render(loc),
                error=rule(error_type, loc),
                message=_message(error, loc, bounds),
                received_value=received,
            )
        )
    return result


def raise_first(
    errors: Sequence[FieldError], details: dict[str, Any] | None = None
) -> typing.NoReturn:
    """Raise the 400 for the first error, listing (up to 100 of) all in ``details.errors``."""
    first = errors[0]
    all_details = dict(details or {})
    all_details["errors"] = [error.as_detail() for error in errors[:MAX_LISTED_ERRORS]]
    raise InvalidInputError(
        first.error,
        first.message,
        field=first.field,
        received_value=first.received_value,
        details=all_details,
    )


def _message(error: ErrorDetails, loc: Loc, bounds: dict[tuple[str, ...], str]) -> str:
    """A one-line human message naming the field."""
    name = _name(loc)
    error_type = error["type"]
    context = error.get("ctx") or {}
    if error_type in _RANGE_TYPES:
        text = bounds.get(tuple(part for part in loc if isinstance(part, str)))
        phrase = f"must be {text}" if text else _lower_first(error["msg"])
    elif error_type in _TYPE_PHRASES:
        phrase = _TYPE_PHRASES[error_type]
    elif error_type == "literal_error":
        phrase = f"must be one of {context.get('expected', '')}".rstrip()
    elif error_type == "string_pattern_mismatch":
        phrase = f"must match {context.get('pattern', '')}".rstrip()
    elif error_type == "string_too_long":
        phrase = f"must be at most {context.get('max_length')} characters"
    elif error_type == "string_too_short":
        phrase = f"must be at least {context.get('min_length')} characters"
    elif error_type in _CODE_TYPES:
        phrase = error["msg"]
    else:
        phrase = _lower_first(error["msg"])
    return f"{name} {phrase}"


def _name(loc: Loc) -> str:
    """The field's own name for a message: the last key, or ``body`` for the whole document."""
    for index in range(len(loc) - 1, -1, -1):
        part = loc[index]
        if isinstance(part, str):
            return dotted(loc[index:])
    return "body" if not loc else dotted(loc, "item")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


@functools.cache
def _bounds_of(model: type[BaseModel]) -> dict[tuple[str, ...], str]:
    """Range text ("between -90 and 90") of every bounded field in ``model``, by path."""
    table: dict[tuple[str, ...], str] = {}

    def walk(current: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, info in current.model_fields.items():
            text = _range_text(info.metadata)
            if text:
                table[(*prefix, name)] = text
            for nested in _nested_models(info.annotation):
                walk(nested, (*prefix, name))

    walk(model, ())
    return table


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """Models reachable inside an annotation (``X``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        found: list[type[BaseModel]] = []
        for argument in typing.get_args(annotation):
            found.extend(_nested_models(argument))
        return found
    return []


def _range_text(metadata: Sequence[Any]) -> str | None:
    """Say a field's numeric bounds in words, or None when it has none."""
    low = high = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"{item.ge}", "at least"
        elif isinstance(item, annotated_types.Gt):
            low = f"{item.gt}", "greater than"
        elif isinstance(item, annotated_types.Le):
            high = f"{item.le}", "at most"
        elif isinstance(item, annotated_types.Lt):
            high = f"{item.lt}", "less than"
    if low and high:
        if low[1] == "at least" and high[1] == "at most":
            return f"between {low[0]} and {high[0]}"
        return f"{low[1]} {low[0]} and {high[1]} {high[0]}"
    if low:
        return f"{low[1]} {low[0]}"
    if high:
        return f"{high[1]} {high[0]}"
    return None
