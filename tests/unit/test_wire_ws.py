"""WebSocket frames (CONTRACT §6.1, §6.2): parsing every inbound type, building every outbound."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import BaseModel

from hub.contract.command_acks import CommandAck
from hub.contract.commands import COMMAND_MODELS, DispatchCommand, ResumeCommand
from hub.contract.telemetry import TELEMETRY_MODELS, TelemetryKind
from hub.contract.timestamps import EXAMPLE_TIMESTAMP
from hub.contract.validation import parse_model
from hub.contract.ws import (
    FRAME_MODELS,
    FRONTEND_FRAME_TYPES,
    VEHICLE_FRAME_TYPES,
    PingFrame,
    PongFrame,
    SubscribeFrame,
    TelemetryFrame,
    UnsubscribeFrame,
    alert,
    battery_update,
    command_status,
    contract_error_frame,
    docking_update,
    error_frame,
    error_report,
    location_update,
    parse_frontend_frame,
    parse_vehicle_frame,
    ping,
    pong,
    status_update,
    subscribed,
    telemetry_ack,
    telemetry_event,
    vehicle_connection,
    welcome,
)
from hub.errors import ContractError, InvalidInputError, RateLimitedError
from tests.unit.wire_examples import assert_bad_request

TS = EXAMPLE_TIMESTAMP
KINDS: list[TelemetryKind] = ["location", "status", "battery", "error", "docking"]


def first_example(model: type[BaseModel]) -> dict[str, Any]:
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    found = extra["examples"]
    assert isinstance(found, list)
    first = found[0]
    assert isinstance(first, dict)
    return copy.deepcopy(first)


def rest_body(kind: str) -> dict[str, Any]:
    return first_example(TELEMETRY_MODELS[kind])  # type: ignore[index]


def frame_text(body: dict[str, Any]) -> str:
    return json.dumps(body)


def vehicle_refusal(raw: str | bytes) -> ContractError:
    with pytest.raises(ContractError) as refusal:
        parse_vehicle_frame(raw)
    assert_bad_request(refusal.value)
    return refusal.value


def frontend_refusal(raw: str | bytes, **options: Any) -> ContractError:
    with pytest.raises(ContractError) as refusal:
        parse_frontend_frame(raw, **options)
    assert_bad_request(refusal.value)
    return refusal.value


# --- vehicle frames --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_telemetry_frame_is_the_rest_body_plus_type(kind: TelemetryKind) -> None:
    body = rest_body(kind)
    for raw in (frame_text({"type": kind, **body}), frame_text({**body, "type": kind}).encode()):
        frame = parse_vehicle_frame(raw)
        assert isinstance(frame, TelemetryFrame)
        assert frame.kind == kind
        assert frame.record == parse_model(TELEMETRY_MODELS[kind], json.dumps(body).encode())
        assert frame.body == body


TELEMETRY_ERRORS = [
    ("location", ("location", "latitude"), 95.123),
    ("location", ("location", "speed"), 2.5),
    ("location", ("timestamp",), "2025-12-16T10:30:45Z"),
    ("status", ("state",), "flying"),
    ("battery", ("battery", "soc_percent"), 101),
    ("error", ("error_code",), "nav_blocked"),
    ("docking", ("phase",), "parking"),
    ("docking", ("marker_id",), 1000),
    ("status", ("unknown_field",), 1),
]


@pytest.mark.parametrize(("kind", "path", "value"), TELEMETRY_ERRORS)
def test_a_bad_telemetry_frame_gets_the_same_error_as_rest(
    kind: str, path: tuple[str, ...], value: Any
) -> None:
    body = rest_body(kind)
    target = body
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    with pytest.raises(ContractError) as rest_refusal:
        parse_model(TELEMETRY_MODELS[kind], json.dumps(body).encode())  # type: ignore[index]
    rest = rest_refusal.value
    frame = vehicle_refusal(frame_text({"type": kind, **body}))
    assert (frame.error, frame.field, frame.received_value, frame.message, frame.details) == (
        rest.error,
        rest.field,
        rest.received_value,
        rest.message,
        rest.details,
    )
    assert frame.field == ".".join(path)


@pytest.mark.parametrize("frame_type", ["ping", "pong"])
def test_heartbeats_parse_with_or_without_timestamp_and_ignore_extras(frame_type: str) -> None:
    model = PingFrame if frame_type == "ping" else PongFrame
    for parse in (parse_vehicle_frame, parse_frontend_frame):
        with_time = parse(frame_text({"type": frame_type, "timestamp": TS}))
        assert isinstance(with_time, model)
        assert with_time.timestamp is not None
        bare = parse(frame_text({"type": frame_type, "seq": 4}))
        assert isinstance(bare, model)
        assert bare.timestamp is None


def test_a_heartbeat_with_a_malformed_timestamp_is_refused() -> None:
    error = vehicle_refusal(frame_text({"type": "ping", "timestamp": "2025-12-16T10:30:45Z"}))
    assert (error.error, error.field) == ("invalid_timestamp", "timestamp")


def test_a_command_ack_frame_parses_known_and_ignores_unknown_fields() -> None:
    raw = frame_text(
        {
            "type": "command_ack",
            "command_id": "cmd_ESTOP_34567",
            "status": "executed",
            "stopped_at": TS,
            "location": {"latitude": 35.6, "longitude": 139.7},
            "firmware": "2.4.1",
        }
    )
    frame = parse_vehicle_frame(raw)
    assert isinstance(frame, CommandAck)
    assert frame.as_dict() == {
        "type": "command_ack",
        "command_id": "cmd_ESTOP_34567",
        "status": "executed",
        "stopped_at": TS,
        "location": {"latitude": 35.6, "longitude": 139.7},
    }


def test_a_command_ack_frame_with_a_bad_status_is_invalid_enum() -> None:
    error = vehicle_refusal(
        frame_text({"type": "command_ack", "command_id": "cmd_1", "status": "ok"})
    )
    assert (error.error, error.field, error.received_value) == ("invalid_enum", "status", "ok")


@pytest.mark.parametrize(
    "frame_type", ["subscribe", "unsubscribe", "dispatch", "emergency_stop", "welcome", "Ping", 7]
)
def test_an_unknown_vehicle_frame_type_is_invalid_message(frame_type: Any) -> None:
    error = vehicle_refusal(frame_text({"type": frame_type}))
    assert (error.error, error.field, error.received_value) == (
        "invalid_message",
        "type",
        frame_type,
    )


@pytest.mark.parametrize("frame_type", ["location", "command_ack", "telemetry_ack", None])
def test_an_unknown_frontend_frame_type_is_invalid_message(frame_type: Any) -> None:
    error = frontend_refusal(frame_text({"type": frame_type, "vehicle_ids": ["*"]}))
    assert (error.error, error.field, error.received_value) == (
        "invalid_message",
        "type",
        frame_type,
    )


def test_a_frame_without_type_is_invalid_message() -> None:
    for refusal in (
        vehicle_refusal(frame_text({"timestamp": TS})),
        frontend_refusal(frame_text({"command_id": "cmd_1"})),
    ):
        assert (refusal.error, refusal.field, refusal.has_received_value) == (
            "invalid_message",
            "type",
            False,
        )


@pytest.mark.parametrize("raw", ["[]", "3", '"ping"', "null", b"[1, 2]"])
def test_json_that_is_not_an_object_is_invalid_message(raw: str | bytes) -> None:
    assert vehicle_refusal(raw).error == "invalid_message"
    assert frontend_refusal(raw).error == "invalid_message"


@pytest.mark.parametrize(
    "raw", ["", "ping", "{", '{"type": "ping",}', b"\xff\xfe", '{"type": "location", "x": NaN}']
)
def test_non_json_is_invalid_json(raw: str | bytes) -> None:
    assert vehicle_refusal(raw).error == "invalid_json"
    assert frontend_refusal(raw).error == "invalid_json"


def test_the_frame_type_lists_cover_every_kind() -> None:
    assert set(VEHICLE_FRAME_TYPES) == {"ping", "pong", "command_ack", *TELEMETRY_MODELS}
    assert set(FRONTEND_FRAME_TYPES) == {
        "ping",
        "pong",
        "subscribe",
        "unsubscribe",
        *COMMAND_MODELS,
    }


# --- frontend frames -------------------------------------------------------------------------


def test_subscribe_to_everything() -> None:
    frame = parse_frontend_frame(frame_text({"type": "subscribe", "vehicle_ids": ["*"]}))
    assert isinstance(frame, SubscribeFrame)
    assert frame.all_vehicles
    assert (frame.vehicle_ids, frame.since) == (["*"], None)


def test_subscribe_with_since() -> None:
    raw = frame_text(
        {
            "type": "subscribe",
            "vehicle_ids": ["wheelchair_001", "wheelchair_002", "wheelchair_001"],
            "since": {"wheelchair_001": 1842, "wheelchair_002": 0},
        }
    )
    frame = parse_frontend_frame(raw)
    assert isinstance(frame, SubscribeFrame)
    assert not frame.all_vehicles
    assert frame.vehicle_ids == ["wheelchair_001", "wheelchair_002"]
    assert frame.since == {"wheelchair_001": 1842, "wheelchair_002": 0}


def test_subscribe_accepts_a_thousand_ids() -> None:
    ids = [f"wheelchair_{index:04d}" for index in range(1000)]
    frame = parse_frontend_frame(frame_text({"type": "subscribe", "vehicle_ids": ids}))
    assert isinstance(frame, SubscribeFrame)
    assert frame.vehicle_ids == ids


SUBSCRIBE_ERRORS = [
    ({"vehicle_ids": []}, "vehicle_ids"),
    ({"vehicle_ids": [f"v{index}" for index in range(1001)]}, "vehicle_ids"),
    ({"vehicle_ids": "*"}, "vehicle_ids"),
    ({"vehicle_ids": ["wheel chair"]}, "vehicle_ids[0]"),
    ({"vehicle_ids": ["ok", "**"]}, "vehicle_ids[1]"),
    ({"vehicle_ids": ["x" * 65]}, "vehicle_ids[0]"),
    ({"vehicle_ids": ["*"], "since": {"wheelchair_001": -1}}, "since.wheelchair_001"),
    ({"vehicle_ids": ["*"], "since": {"wheelchair_001": 1.5}}, "since.wheelchair_001"),
    ({"vehicle_ids": ["*"], "since": {"wheelchair_001": "12"}}, "since.wheelchair_001"),
    ({"vehicle_ids": ["*"], "since": {"wheel chair": 1}}, "since"),
    ({"vehicle_ids": ["*"], "since": [1]}, "since"),
    ({"vehicle_ids": ["*"], "replay": True}, "replay"),
    ({}, "vehicle_ids"),
]


@pytest.mark.parametrize(("body", "field"), SUBSCRIBE_ERRORS)
def test_a_bad_subscribe_is_a_validation_error_naming_the_field(
    body: dict[str, Any], field: str
) -> None:
    error = frontend_refusal(frame_text({"type": "subscribe", **body}))
    assert (error.error, error.field) == ("validation_error", field)


def test_unsubscribe() -> None:
    frame = parse_frontend_frame(
        frame_text({"type": "unsubscribe", "vehicle_ids": ["wheelchair_002", "*"]})
    )
    assert isinstance(frame, UnsubscribeFrame)
    assert frame.vehicle_ids == ["wheelchair_002", "*"]
    assert frontend_refusal(frame_text({"type": "unsubscribe", "vehicle_ids": []})).field == (
        "vehicle_ids"
    )


@pytest.mark.parametrize("kind", list(COMMAND_MODELS))
def test_a_command_on_the_fleet_socket_names_its_vehicle(kind: str) -> None:
    body = first_example(COMMAND_MODELS[kind])
    frame = parse_frontend_frame(frame_text({**body, "vehicle_id": "wheelchair_001"}))
    assert type(frame) is COMMAND_MODELS[kind]
    assert frame.vehicle_id == "wheelchair_001"
    error = frontend_refusal(frame_text(body))
    assert (error.error, error.field) == ("invalid_command", "vehicle_id")


def test_command_errors_on_the_socket_use_the_command_codes() -> None:
    body = first_example(DispatchCommand)
    body["vehicle_id"] = "wheelchair_001"
    body["mission"]["pickup"]["latitude"] = 91
    error = frontend_refusal(frame_text(body))
    assert (error.error, error.field, error.received_value) == (
        "invalid_location",
        "mission.pickup.latitude",
        91,
    )
    bad_key = {"type": "configure", "vehicle_id": "v1", "config_updates": {"volume": 3}}
    error = frontend_refusal(frame_text(bad_key))
    assert (error.error, error.field) == ("invalid_command", "config_updates.volume")


def test_a_connection_bound_to_a_vehicle_fills_and_checks_vehicle_id() -> None:
    frame = parse_frontend_frame(frame_text({"type": "resume"}), bound_vehicle_id="wheelchair_001")
    assert isinstance(frame, ResumeCommand)
    assert frame.vehicle_id == "wheelchair_001"
    same = frame_text({"type": "resume", "vehicle_id": "wheelchair_001"})
    assert parse_frontend_frame(same, bound_vehicle_id="wheelchair_001") == frame
    error = frontend_refusal(
        frame_text({"type": "resume", "vehicle_id": "wheelchair_002"}),
        bound_vehicle_id="wheelchair_001",
    )
    assert (error.error, error.field, error.received_value) == (
        "vehicle_id_mismatch",
        "vehicle_id",
        "wheelchair_002",
    )


# --- outbound builders -----------------------------------------------------------------------


def conforms(frame: dict[str, Any]) -> None:
    """The frame validates against its documented model, and survives a JSON round trip."""
    assert json.loads(json.dumps(frame)) == frame
    model = FRAME_MODELS[frame["type"]]
    model.model_validate(frame)


def test_welcome() -> None:
    frame = welcome("wheelchair_001", TS, 30)
    assert frame == {
        "type": "welcome",
        "vehicle_id": "wheelchair_001",
        "server_time": TS,
        "protocol_version": "1.0",
        "ping_interval_seconds": 30,
    }
    assert welcome("wheelchair_001", TS, 30.0)["ping_interval_seconds"] == 30
    assert welcome("wheelchair_001", TS, 7.5)["ping_interval_seconds"] == 7.5
    conforms(frame)


def test_heartbeats() -> None:
    assert ping(TS) == {"type": "ping", "timestamp": TS}
    assert pong(TS) == {"type": "pong", "timestamp": TS}
    conforms(ping(TS))
    conforms(pong(TS))


def test_error_frames() -> None:
    assert error_frame("auth_failed", "Invalid or expired token") == {
        "type": "error",
        "code": "auth_failed",
        "message": "Invalid or expired token",
    }
    assert error_frame("invalid_message", "m", field="type") == {
        "type": "error",
        "code": "invalid_message",
        "message": "m",
        "field": "type",
    }
    refusal = InvalidInputError(
        "invalid_location", "latitude bad", field="location.latitude", received_value=None
    )
    frame = contract_error_frame(refusal)
    assert frame == {
        "type": "error",
        "code": "invalid_location",
        "message": "latitude bad",
        "field": "location.latitude",
        "received_value": None,
    }
    conforms(frame)
    assert contract_error_frame(InvalidInputError("invalid_json", "Malformed JSON: x")) == {
        "type": "error",
        "code": "invalid_json",
        "message": "Malformed JSON: x",
    }
    limited = contract_error_frame(RateLimitedError(2, limit=5, remaining=0, reset_epoch=0))
    assert (limited["code"], limited["retry_after"]) == ("rate_limit_exceeded", 2)
    conforms(limited)


def test_telemetry_ack() -> None:
    frame = telemetry_ack("battery", TS, "duplicate")
    assert frame == {
        "type": "telemetry_ack",
        "kind": "battery",
        "timestamp": TS,
        "status": "duplicate",
    }
    conforms(frame)


def test_subscribed() -> None:
    snapshot = [{"vehicle_id": "wheelchair_001", "state": "idle", "seq": 4}]
    frame = subscribed(("wheelchair_001",), iter(snapshot), {"wheelchair_001": False})
    assert frame == {
        "type": "subscribed",
        "vehicle_ids": ["wheelchair_001"],
        "snapshot": snapshot,
        "replayed": {"wheelchair_001": False},
    }
    conforms(frame)
    assert "replayed" not in subscribed(["*"], [])
    conforms(subscribed(["*"], []))


def test_command_status() -> None:
    ack = {"type": "command_ack", "command_id": "cmd_1", "status": "accepted"}
    frame = command_status("cmd_1", "wheelchair_001", "accepted", ack)
    assert frame == {
        "type": "command_status",
        "command_id": "cmd_1",
        "vehicle_id": "wheelchair_001",
        "status": "accepted",
        "ack": ack,
    }
    conforms(frame)
    queued = command_status("cmd_1", "wheelchair_001", "queued", None)
    assert queued["ack"] is None
    conforms(queued)


def test_vehicle_connection() -> None:
    frame = vehicle_connection("wheelchair_001", False, TS, 12)
    assert frame == {
        "type": "vehicle_connection",
        "vehicle_id": "wheelchair_001",
        "connected": False,
        "timestamp": TS,
        "seq": 12,
    }
    conforms(frame)


def test_location_and_battery_events_nest_their_object() -> None:
    location = rest_body("location")["location"]
    assert location_update("wheelchair_001", TS, location, 7) == {
        "type": "location_update",
        "vehicle_id": "wheelchair_001",
        "seq": 7,
        "timestamp": TS,
        "location": location,
    }
    battery = rest_body("battery")["battery"]
    assert battery_update("wheelchair_001", TS, battery, 8) == {
        "type": "battery_update",
        "vehicle_id": "wheelchair_001",
        "seq": 8,
        "timestamp": TS,
        "battery": battery,
    }
    conforms(location_update("wheelchair_001", TS, location, 7))
    conforms(battery_update("wheelchair_001", TS, battery, 8))


def test_status_docking_and_error_events_put_their_fields_at_the_top() -> None:
    for build, kind, event_type in (
        (status_update, "status", "status_update"),
        (docking_update, "docking", "docking_update"),
        (error_report, "error", "error_report"),
    ):
        body = rest_body(kind)
        fields = {key: value for key, value in body.items() if key != "timestamp"}
        frame = build("wheelchair_001", TS, fields, 9)
        assert frame == {
            "type": event_type,
            "vehicle_id": "wheelchair_001",
            "seq": 9,
            "timestamp": TS,
            **fields,
        }
        conforms(frame)


@pytest.mark.parametrize("kind", KINDS)
def test_telemetry_event_from_a_frame_body(kind: TelemetryKind) -> None:
    body = rest_body(kind)
    frame = parse_vehicle_frame(frame_text({"type": kind, **body}))
    assert isinstance(frame, TelemetryFrame)
    event = telemetry_event(frame.kind, "wheelchair_001", TS, frame.body, 3)
    assert (
        event["type"]
        == {
            "location": "location_update",
            "status": "status_update",
            "battery": "battery_update",
            "error": "error_report",
            "docking": "docking_update",
        }[kind]
    )
    assert {
        key: value for key, value in event.items() if key not in ("type", "vehicle_id", "seq")
    } == body
    conforms(event)


def test_an_event_payload_never_overrides_the_envelope() -> None:
    payload = {"type": "status", "vehicle_id": "other", "seq": 0, "timestamp": "x", "state": "idle"}
    frame = status_update("wheelchair_001", TS, payload, 5)
    assert frame == {
        "type": "status_update",
        "vehicle_id": "wheelchair_001",
        "seq": 5,
        "timestamp": TS,
        "state": "idle",
    }


def test_alert() -> None:
    frame = alert(
        "alert_1",
        "wheelchair_001",
        severity="critical",
        kind="emergency_stop",
        message="Vehicle entered emergency stop",
        timestamp=TS,
    )
    assert frame == {
        "type": "alert",
        "alert_id": "alert_1",
        "vehicle_id": "wheelchair_001",
        "severity": "critical",
        "kind": "emergency_stop",
        "error_code": None,
        "message": "Vehicle entered emergency stop",
        "timestamp": TS,
        "escalated": False,
        "backfilled": False,
    }
    conforms(frame)
    escalated = alert(
        "alert_2",
        "wheelchair_001",
        severity="error",
        kind="error_report",
        message="m",
        timestamp=TS,
        error_code="NAV_PATH_NOT_FOUND",
        escalated=True,
        backfilled=True,
        seq=40,
    )
    assert (escalated["seq"], escalated["error_code"], escalated["escalated"]) == (
        40,
        "NAV_PATH_NOT_FOUND",
        True,
    )
    conforms(escalated)


def test_every_outbound_frame_type_has_a_documented_model_with_examples() -> None:
    assert set(FRAME_MODELS) == {
        "welcome",
        "ping",
        "pong",
        "error",
        "telemetry_ack",
        "subscribed",
        "command_status",
        "vehicle_connection",
        "location_update",
        "status_update",
        "battery_update",
        "docking_update",
        "error_report",
        "alert",
    }
    for frame_type, model in FRAME_MODELS.items():
        schema = model.model_json_schema()
        assert schema["examples"], frame_type
        for example in schema["examples"]:
            assert example["type"] == frame_type
            parsed = model.model_validate(example)
            assert parsed.model_dump(mode="json", exclude_unset=True) == example
