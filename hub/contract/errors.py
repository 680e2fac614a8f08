"""The contract's refusals, and what of the client's input they may echo (CONTRACT §1.1).

:class:`ContractError` is the root of every refusal the hub answers with a contract error code:
the REST error body and the WebSocket ``error`` frame are both built from its fields. The
contract itself raises only :class:`InvalidInputError` (a body, frame or parameter that breaks
its rules); the rest of the family — who may not, what does not exist, what is busy — lives
in :mod:`hub.errors`, and the edge (``api/``) maps each class to an HTTP status and a close
code in one table.

What a refusal echoes is bounded and strict JSON, whatever the client sent
(:func:`echo`): a 1 MB string, a 10,000-id list, ``1e400`` or a lone surrogate come back as
a few hundred bytes of valid JSON, never as ``Infinity`` and never in full.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

NO_VALUE: Any = object()
"""Marks a refusal without a received value (a missing field, a secret)."""

MAX_ECHO_CHARS = 200
"""The longest string a refusal echoes as ``received_value`` (longer ones are cut)."""

MAX_ECHO_JSON = 300
"""The most JSON text an echoed list or object may take; a longer one is cut to a string."""

MAX_FIELD_CHARS = 200
"""The longest field path a refusal names (an unknown key may be of any length)."""

MAX_MESSAGE_CHARS = 400
"""The longest message a refusal carries (messages name the field at fault)."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_CUT = "…"
_LARGEST_ECHOED_INT = 2**63


class ContractError(Exception):
    """A refusal the contract names by its error code; the root of the hub's error family.

    ``error`` is the contract's code (``invalid_location``, ``unknown_vehicle``, …),
    ``message`` one human line, ``field`` the dotted path of the field at fault when one is,
    ``received_value`` what the client sent there (:data:`NO_VALUE` when it must not or
    cannot be echoed), ``details`` anything else the contract lists (allowed transitions, the
    failing bulk index, every field error). Not raised itself: raise one of its subclasses.
    """

    def __init__(
        self,
        error: str,
        message: str,
        *,
        field: str | None = None,
        received_value: Any = NO_VALUE,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message
        self.field = field
        self.received_value = received_value
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.error!r}, {self.message!r}, field={self.field!r})"

    @property
    def has_received_value(self) -> bool:
        """True when the client's value at ``field`` may be echoed (it may itself be ``None``)."""
        return self.received_value is not NO_VALUE

    def fields(self) -> dict[str, Any]:
        """The refusal's own part of an error body or frame, bounded and strict JSON.

        ``error``, ``message``, and ``field``, ``received_value``, ``details`` when present.
        The caller adds what belongs to its medium (timestamp and request id, or ``type``).
        """
        body: dict[str, Any] = {
            "error": self.error,
            "message": cut(self.message, MAX_MESSAGE_CHARS),
        }
        if self.field is not None:
            body["field"] = cut(self.field, MAX_FIELD_CHARS)
        if self.has_received_value:
            body["received_value"] = echo(self.received_value)
        if self.details:
            body["details"] = _bounded_details(self.details)
        return body


class InvalidInputError(ContractError):
    """Raised when what the client sent breaks a rule of the contract (the 400 codes).

    JSON that does not parse (``invalid_json``), a body, frame or parameter that fails its
    model (``validation_error`` or the field's own code such as ``invalid_location``), a
    timestamp outside its window, a transition the rules forbid, a bulk that is too large or
    names another vehicle, a command that cannot be taken as written (``invalid_command``).
    Nothing was stored or changed.
    """


def cut(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and ``…``; no surrogates."""
    if len(text) > limit:
        text = text[:limit] + _CUT
    return _SURROGATE.sub("\ufffd", text)


def echo(value: Any) -> Any:
    """A client's value as a refusal may send it back: strict JSON, a few hundred bytes at most.

    Strings over :data:`MAX_ECHO_CHARS` are cut; non-finite numbers become the strings
    ``"Infinity"``, ``"-Infinity"``, ``"NaN"``; integers too large for JSON parsers become
    strings; a list or object whose JSON is longer than :data:`MAX_ECHO_JSON` becomes its
    JSON text, cut. Lone surrogates become U+FFFD. Never raises.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) < _LARGEST_ECHOED_INT:
            return value
        return _number_text(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return cut(value, MAX_ECHO_CHARS)
    if isinstance(value, list | tuple):
        return _bounded_container([echo(item) for item in value[: MAX_ECHO_JSON // 2]], value)
    if isinstance(value, dict):
        items = list(value.items())[: MAX_ECHO_JSON // 4]
        bounded = {cut(str(key), MAX_FIELD_CHARS): echo(item) for key, item in items}
        return _bounded_container(bounded, value)
    return cut(repr(value), MAX_ECHO_CHARS)


def _bounded_container(bounded: list[Any] | dict[str, Any], original: Any) -> Any:
    text = json.dumps(bounded, ensure_ascii=False, separators=(",", ":"))
    if len(text) <= MAX_ECHO_JSON and len(bounded) == len(original):
        return bounded
    return text[:MAX_ECHO_JSON] + _CUT


def _number_text(value: int) -> str:
    digits = len(str(abs(value))) if value.bit_length() < 10_000 else None
    if digits is None:
        return "an integer of more than 3000 digits"
    return cut(str(value), 40)


def _bounded_details(details: dict[str, Any]) -> dict[str, Any]:
    """Details as the hub built them, with the client's input inside them bounded too."""
    bounded: dict[str, Any] = {}
    for key, value in details.items():
        if key == "errors" and isinstance(value, list):
            bounded[key] = [_bounded_entry(entry) for entry in value]
        else:
            bounded[key] = echo(value) if isinstance(value, str | float | int) else value
    return bounded


def _bounded_entry(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return echo(entry)
    bounded = dict(entry)
    if isinstance(bounded.get("field"), str):
        bounded["field"] = cut(bounded["field"], MAX_FIELD_CHARS)
    if isinstance(bounded.get("message"), str):
        bounded["message"] = cut(bounded["message"], MAX_MESSAGE_CHARS)
    return bounded
