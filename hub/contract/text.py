"""Text PostgreSQL cannot store: U+0000 and lone surrogates, found at the edge.

A JSON string may carry ``\\u0000`` or half of a surrogate pair (``\\ud800``); Python decodes
both, but PostgreSQL refuses to store either (in ``text`` and in ``jsonb``), so a report
carrying one would fail at commit — after validation said yes. :func:`screen` looks at a
decoded document only when its JSON text could hold such a character (:func:`may_hold_unstorable`,
a quick scan of the raw text), and refuses the first such string with 400
``validation_error`` naming its field. One exception, because safety comes first: an
emergency stop is never refused for its text — :func:`cleaned` replaces each such character
with U+FFFD and the stop goes out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hub.contract.errors import InvalidInputError

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MAYBE_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_MAYBE_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def may_hold_unstorable(raw: bytes | str) -> bool:
    """Whether JSON text could decode to a string PostgreSQL cannot store (escapes only:
    JSON has no raw control characters, and valid UTF-8 has no surrogates)."""
    if isinstance(raw, bytes):
        return _MAYBE_BYTES.search(raw) is not None
    return _MAYBE_TEXT.search(raw) is not None


def refuse_unstorable_parameters(parameters: Iterable[tuple[str, str]]) -> None:
    """400 ``validation_error`` naming the first request parameter (query or path) whose
    name or value PostgreSQL cannot store (U+0000, an unpaired surrogate)."""
    for name, value in parameters:
        if _UNSTORABLE.search(name) or _UNSTORABLE.search(value):
            raise InvalidInputError(
                "validation_error",
                f"{name} must not contain U+0000 or an unpaired surrogate",
                field=name,
            )


def unstorable_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in ``value`` that cannot be stored, in
    document order; ``""`` for the document itself; None when every string is fine."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return child
            found = unstorable_path(item, child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def refuse_unstorable(value: Any, *, prefix: str = "") -> None:
    """Raise 400 ``validation_error`` for the first string PostgreSQL cannot store."""
    path = unstorable_path(value, prefix)
    if path is None:
        return
    name = path.rsplit(".", 1)[-1] or "body"
    raise InvalidInputError(
        "validation_error",
        f"{name} must not contain U+0000 or an unpaired surrogate (text that cannot be stored)",
        field=path or None,
    )


def cleaned(value: Any) -> Any:
    """``value`` with every unstorable character of every string and key replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {cleaned(key): cleaned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cleaned(item) for item in value]
    return value


def screen(value: Any, raw: bytes | str, *, clean: bool = False) -> Any:
    """``value`` (decoded from ``raw``) if it holds no unstorable text; else refused with 400,
    or — for an emergency stop (``clean``, or an object whose ``type`` is ``emergency_stop``)
    — cleaned."""
    if not may_hold_unstorable(raw):
        return value
    if clean or (isinstance(value, dict) and value.get("type") == "emergency_stop"):
        return cleaned(value)
    refuse_unstorable(value)
    return value
