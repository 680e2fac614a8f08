"""Examples that the live hub accepts: every example timestamp moved to "now".

The live endpoints accept a timestamp only within 300 s of the hub's clock (CONTRACT §1), so a
fixed example date makes every "Try it out" in ``/docs`` answer 400 ``invalid_timestamp``.
The document is served with each example timestamp moved by the same amount, so that
:data:`~hub.contract.timestamps.EXAMPLE_TIMESTAMP` becomes the moment of the request and
the others keep their distance to it (an offline period still ends when it should, a
scheduled time is still half an hour ahead). Only examples change; patterns and defaults
are left alone. An example fetched more than five minutes ago is stale again: reload.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from api.openapi.schemas_walk import walk
from hub.clock import TIMESTAMP_PATTERN, format_timestamp, parse_timestamp
from hub.contract.timestamps import EXAMPLE_TIMESTAMP

ANCHOR = parse_timestamp(EXAMPLE_TIMESTAMP)
EXAMPLE_KEYS = ("example", "examples")


def with_live_examples(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A copy of ``document`` whose example timestamps are moved so the anchor is ``now``."""
    live = copy.deepcopy(document)
    shift = now - ANCHOR
    holders = [node for node in walk(live) if any(key in node for key in EXAMPLE_KEYS)]
    for node in holders:
        for key in EXAMPLE_KEYS:
            if key in node:
                node[key] = _shifted(node[key], shift)
    return live


def _shifted(value: Any, shift: timedelta) -> Any:
    """``value`` with every wire timestamp string in it moved by ``shift``."""
    if isinstance(value, str):
        if TIMESTAMP_PATTERN.fullmatch(value):
            try:
                return format_timestamp(parse_timestamp(value) + shift)
            except ValueError:
                return value
        return value
    if isinstance(value, dict):
        return {key: _shifted(item, shift) for key, item in value.items()}
    if isinstance(value, list):
        return [_shifted(item, shift) for item in value]
    return value
