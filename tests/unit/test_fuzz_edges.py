"""Hostile input at every edge parser: arbitrary unicode (control characters, U+0000, lone
surrogates, very long strings), non-finite and huge numbers, deep nesting — and valid
bodies with one field replaced by any of those.

Whatever comes in, a parser either accepts it or raises the contract's refusal; the answer
built from that refusal (the REST error body, the WebSocket error frame) is strict JSON and
a few kilobytes at most. Never another exception, never ``NaN``/``Infinity``, never an echo
of the whole input. What a parser accepts holds no text PostgreSQL could not store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.errors import error_body
from api.responses import json_text
from hub.clock import format_timestamp, utc_now
from hub.contract import (
    BulkUpload,
    RefreshRequest,
    TokenRequest,
    UserCreate,
    VehicleCreate,
    parse_bulk,
    parse_model,
)
from hub.contract.commands import FleetEmergencyStop, parse_command
from hub.contract.errors import ContractError
from hub.contract.reservations import ReservationCreate, ReservationUpdate
from hub.contract.telemetry import TELEMETRY_MODELS
from hub.contract.text import unstorable_path
from hub.contract.validation import parse_json_object, validate_model
from hub.contract.ws import parse_frontend_frame, parse_vehicle_frame
from hub.contract.ws_events import contract_error_frame

MAX_ANSWER_BYTES = 64 * 1024
"""The largest error body or frame any input may provoke (the largest seen is in the note)."""

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

hostile_text = st.one_of(
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40),
    st.text(alphabet=st.sampled_from("\x00\x01\x1f\x7f\ud800\udfff\ufffd\u202e a"), max_size=20),
    st.integers(min_value=201, max_value=200_000).map(lambda n: "x" * n),
)
hostile_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([2**63, -(2**63) - 1, 1e308, -0.0]),
)
json_leaf = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_text)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(hostile_text, children, max_size=5),
    ),
    max_leaves=25,
)


def deeply_nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def wire(value: Any) -> bytes:
    """JSON text as a client could send it: surrogates escaped, NaN/Infinity written out."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def now_text() -> str:
    return format_timestamp(utc_now())


def valid_bodies() -> dict[str, dict[str, Any]]:
    """One valid body per edge, to mutate one field at a time."""
    ts = now_text()
    location = {"latitude": 35.6, "longitude": 139.7, "heading": 1, "speed": 1, "accuracy": 0.1}
    return {
        "location": {"timestamp": ts, "location": location},
        "status": {
            "timestamp": ts,
            "state": "idle",
            "current_waypoint": "lobby",
            "passengers_onboard": False,
            "operational_hours": True,
        },
        "battery": {
            "timestamp": ts,
            "battery": {
                "soc_percent": 50,
                "voltage": 50,
                "current": 1,
                "temperature": 20,
                "charging": False,
            },
        },
        "error": {
            "timestamp": ts,
            "error_code": "NAV_OBSTACLE_BLOCKED",
            "severity": "critical",
            "subsystem": "navigation",
            "description": "blocked",
            "recovery_action": "reroute",
        },
        "docking": {"timestamp": ts, "phase": "approaching", "marker_id": 1},
        "command": {"type": "cancel", "mission_id": "mission_1", "reason": "user"},
        "token": {"grant_type": "password", "username": "admin", "password": "secret-secret"},
        "vehicle": {"vehicle_id": "wheelchair_001", "name": "chair"},
    }


def answer_of(error: ContractError) -> tuple[bytes, bytes]:
    """The REST body and the WebSocket frame a refusal becomes, as sent on the wire."""
    body = json_text(error_body(error, timestamp=now_text(), request_id="r")).encode()
    frame = json_text(contract_error_frame(error)).encode()
    return body, frame


def assert_strict_and_small(text: bytes) -> None:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in an answer")

    json.loads(text, parse_constant=refuse)
    assert len(text) <= MAX_ANSWER_BYTES, len(text)


def assert_answered(parse: Callable[[bytes], Any], raw: bytes) -> None:
    """``parse`` accepts (and keeps no unstorable text) or refuses with a contract error
    whose answers are strict, bounded JSON."""
    try:
        accepted = parse(raw)
    except ContractError as error:
        for text in answer_of(error):
            assert_strict_and_small(text)
        return
    dumped = accepted.model_dump(mode="json") if hasattr(accepted, "model_dump") else accepted
    assert unstorable_path(dumped) is None, dumped


PARSERS: dict[str, Callable[[bytes], Any]] = {
    **{
        kind: (lambda raw, model=model: parse_model(model, raw))
        for kind, model in TELEMETRY_MODELS.items()
    },
    "bulk": lambda raw: parse_bulk(
        raw, path_vehicle_id="wheelchair_001", now=utc_now(), max_age=timedelta(days=30)
    ),
    "bulk_model": lambda raw: parse_model(BulkUpload, raw),
    "command": parse_command,
    "fleet_stop": lambda raw: validate_model(
        FleetEmergencyStop, parse_json_object(raw, clean_text=True)
    ),
    "token": lambda raw: parse_model(TokenRequest, raw),
    "refresh": lambda raw: parse_model(RefreshRequest, raw),
    "vehicle": lambda raw: parse_model(VehicleCreate, raw),
    "user": lambda raw: parse_model(UserCreate, raw),
    "reservation": lambda raw: parse_model(ReservationCreate, raw),
    "reservation_update": lambda raw: parse_model(ReservationUpdate, raw),
    "vehicle_frame": parse_vehicle_frame,
    "frontend_frame": parse_frontend_frame,
    "bound_frontend_frame": lambda raw: parse_frontend_frame(raw, bound_vehicle_id="v1"),
}


@FUZZ
@given(value=json_value, edge=st.sampled_from(sorted(PARSERS)))
def test_any_json_document_is_accepted_or_refused_with_a_small_strict_answer(
    value: Any, edge: str
) -> None:
    assert_answered(PARSERS[edge], wire(value))


@FUZZ
@given(
    body=st.sampled_from(sorted(valid_bodies())),
    path=st.lists(
        st.sampled_from(
            [
                "location",
                "battery",
                "latitude",
                "soc_percent",
                "description",
                "state",
                "reason",
                "name",
                "username",
                "current_waypoint",
                "type",
                "timestamp",
                "extra",
            ]
        ),
        min_size=1,
        max_size=2,
    ),
    replacement=json_value,
)
def test_a_valid_body_with_one_hostile_field_is_still_answered_well(
    body: str, path: list[str], replacement: Any
) -> None:
    document = json.loads(json.dumps(valid_bodies()[body]))
    target = document
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[path[-1]] = replacement
    raw = wire(document)
    edges = {"command": ["command", "frontend_frame"], "token": ["token"], "vehicle": ["vehicle"]}
    for edge in edges.get(body, [body, "vehicle_frame"]):
        if edge == "vehicle_frame":
            raw = wire({"type": body, **document})
        assert_answered(PARSERS[edge], raw)


@FUZZ
@given(text=hostile_text)
def test_an_emergency_stop_is_never_refused_for_its_text(text: str) -> None:
    for raw in (
        wire({"type": "emergency_stop", "reason": text, "message": text}),
        wire({"type": "emergency_stop", "vehicle_id": "v1", "reason": text}),
    ):
        command = parse_command(raw)
        assert command.type == "emergency_stop"
        assert unstorable_path(command.model_dump(mode="json")) is None
    stop = validate_model(
        FleetEmergencyStop, parse_json_object(wire({"reason": text}), clean_text=True)
    )
    assert unstorable_path(stop.model_dump(mode="json")) is None


def test_deep_nesting_and_huge_numbers_are_refused_not_crashed() -> None:
    for raw in (
        deeply_nested(100_000).encode(),
        b'{"timestamp": ' + b"9" * 10_000 + b"}",
        b'{"location": {"latitude": 1e400}}',
        b'{"location": {"latitude": NaN}}',
        b"\xff\xfe not utf-8",
        b'"\\ud800"',
    ):
        for edge in PARSERS:
            assert_answered(PARSERS[edge], raw)


def _string_paths(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _string_paths(item, (*path, key))]
    return []


def test_a_huge_string_in_any_field_is_echoed_in_a_few_hundred_bytes() -> None:
    edges = {"command": "command", "token": "token", "vehicle": "vehicle"}
    for name, body in valid_bodies().items():
        for path in _string_paths(body):
            for huge in ("y" * 100_000, "\x00" * 50_000, "\ud800" * 1_000):
                document = json.loads(json.dumps(body))
                target = document
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = huge
                try:
                    PARSERS[edges.get(name, name)](wire(document))
                except ContractError as error:
                    for text in answer_of(error):
                        assert_strict_and_small(text)
                        assert len(text) < 4_000, (name, path, len(text))
                    if error.has_received_value and isinstance(error.received_value, str):
                        assert len(json.loads(answer_of(error)[0])["received_value"]) <= 201
