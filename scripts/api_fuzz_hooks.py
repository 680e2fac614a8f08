"""Schemathesis hooks of the API fuzz run: the hub's rules that a JSON Schema cannot state.

A schema says what a request looks like, not what the hub's state or clock allows. Without
these hooks ``positive_data_acceptance`` would report, as failures, requests the hub rightly
refuses. Each hook touches only *positive* cases (requests generated to be valid); negative
cases go out exactly as generated, so every refusal the hub owes is still checked.

- ``before_call`` makes positive cases valid under rules of time: live telemetry must be at
  most 300 s old (its ``timestamp`` is set to now), bulk history at most 30 days old, a
  reservation between 5 minutes ago and a year ahead; and it drops a generated ``cursor``,
  which only the hub can make (any other value is 400 ``validation_error`` by design).
- ``before_call`` also gives a positive command or bulk body that names a ``vehicle_id`` the
  path's (the hub refuses a mismatch, 400 ``vehicle_id_mismatch``; the schema cannot tie a
  body field to a path parameter).
- ``before_call`` replaces U+0000 and unpaired surrogates in a positive case's body and
  query strings by U+FFFD: the hub refuses them (400 ``validation_error``, they cannot be
  stored), a rule the document states in words but no JSON Schema keyword can.
- ``filter_failure`` drops three kinds of failure, each only in its exact form:

  - ``positive_data_acceptance`` on a 400 ``invalid_state_transition`` or
    ``invalid_phase_transition``: whether a status or docking phase is allowed depends on the
    vehicle's previous report, which the generator cannot know;
  - ``use_after_free`` after ``DELETE /api/v1/reservations/{id}`` when the reservation then
    reads as ``cancelled``: DELETE cancels and keeps the row, by design (documented);
  - ``ensure_resource_availability`` on a 404 ``unknown_vehicle`` after a reservation was
    booked: the 404 names the vehicle the request's *body* pointed at (CONTRACT §1: an
    unknown vehicle is 404 everywhere), the reservation itself is there.

  Every other failure stands.

Loaded by ``scripts/api_fuzz.py`` through the ``hooks`` setting of ``api_fuzz.toml``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

LIVE = {"post_location", "post_status", "post_battery", "post_error", "post_docking"}
SCHEDULED = {"create_reservation", "update_reservation"}
SAME_VEHICLE = {"post_command", "post_bulk"}
STATEFUL_RULES = {"invalid_state_transition", "invalid_phase_transition"}
CANCELS = "DELETE /api/v1/reservations/"


def _wire(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _is_positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return bool(meta is not None and meta.generation.mode.is_positive)


def _operation_id(case: Any) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """``value`` with U+0000 and unpaired surrogates in every string replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _valid_timestamp(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 24 and value.endswith("Z")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Put the times of a positive case inside the hub's windows; drop made-up cursors."""
    if not _is_positive(case):
        return
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)
        case.query = _storable(case.query)
    case.body = _storable(case.body)
    body = case.body
    if not isinstance(body, dict):
        return
    now = datetime.now(UTC)
    operation = _operation_id(case)
    if operation in SAME_VEHICLE and body.get("vehicle_id") is not None:
        body["vehicle_id"] = case.path_parameters["vehicle_id"]
    if operation in LIVE and _valid_timestamp(body.get("timestamp")):
        body["timestamp"] = _wire(now)
    elif operation == "post_bulk":
        messages = body.get("messages")
        for index, message in enumerate(messages if isinstance(messages, list) else []):
            if isinstance(message, dict) and _valid_timestamp(message.get("timestamp")):
                message["timestamp"] = _wire(now - timedelta(milliseconds=len(messages) - index))
        period = body.get("offline_period")
        if isinstance(period, dict):
            period["start"] = _wire(now - timedelta(minutes=5))
            period["end"] = _wire(now)
    elif operation in SCHEDULED and _valid_timestamp(body.get("scheduled_time")):
        body["scheduled_time"] = _wire(now + timedelta(hours=1))


def _answer(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the three the module docstring names."""
    kind = type(failure).__name__
    answer = _answer(response)
    if kind == "RejectedPositiveData":
        return not (response.status_code == 400 and answer.get("error") in STATEFUL_RULES)
    if kind == "UseAfterFree":
        cancelled = str(getattr(failure, "free", "")).startswith(CANCELS)
        return not (cancelled and answer.get("status") == "cancelled")
    if kind == "EnsureResourceAvailability":
        return not (response.status_code == 404 and answer.get("error") == "unknown_vehicle")
    return True
