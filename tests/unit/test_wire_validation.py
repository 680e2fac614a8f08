"""Single-body validation: every contract error code with its field and received value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from hub.contract import (
    BatteryUpdate,
    DockingUpdate,
    ErrorReport,
    LocationUpdate,
    StatusUpdate,
    UserCreate,
    VehicleCreate,
    check_bulk_timestamp,
    check_live_timestamp,
    parse_json_object,
    parse_model,
    validate_model,
    wire_text,
)
from hub.contract.validation import decode_json
from hub.errors import ContractError
from tests.unit.wire_examples import (
    DELETE,
    assert_bad_request,
    encode,
    example,
    refused,
    with_change,
)

NOW = datetime(2025, 12, 16, 10, 30, 45, 123000, tzinfo=UTC)


# --- field → code mapping (CONTRACT §1.1) ----------------------------------------------------

CODE_CASES = [
    (LocationUpdate, "location.latitude", 95.123, "invalid_location"),
    (LocationUpdate, "location.latitude", -90.5, "invalid_location"),
    (LocationUpdate, "location.longitude", 180.01, "invalid_location"),
    (LocationUpdate, "location.heading", 360.5, "invalid_heading"),
    (LocationUpdate, "location.heading", -1, "invalid_heading"),
    (LocationUpdate, "location.speed", 2.01, "invalid_speed"),
    (LocationUpdate, "location.speed", -0.1, "invalid_speed"),
    (LocationUpdate, "location.accuracy", 1.5, "invalid_accuracy"),
    (LocationUpdate, "timestamp", "2025-12-16T10:30:45Z", "invalid_timestamp"),
    (BatteryUpdate, "battery.soc_percent", 100.5, "invalid_battery"),
    (BatteryUpdate, "battery.voltage", 0, "invalid_battery"),
    (BatteryUpdate, "battery.current", -100.5, "invalid_battery"),
    (BatteryUpdate, "battery.temperature", 81, "invalid_battery"),
    (BatteryUpdate, "battery.charging", "no", "invalid_battery"),
    (BatteryUpdate, "battery.estimated_runtime_minutes", -1, "invalid_battery"),
    (BatteryUpdate, "battery.health_percent", 101, "invalid_battery"),
    (BatteryUpdate, "battery.unknown_cell", 3, "validation_error"),
    (StatusUpdate, "state", "flying", "invalid_enum"),
    (StatusUpdate, "state", 3, "invalid_enum"),
    (StatusUpdate, "mission_id", "mission-12", "validation_error"),
    (StatusUpdate, "passengers_onboard", "yes", "validation_error"),
    (StatusUpdate, "details.progress_percent", 100.1, "validation_error"),
    (StatusUpdate, "details.eta_seconds", -1, "validation_error"),
    (StatusUpdate, "details.distance_remaining_meters", -0.5, "validation_error"),
    (ErrorReport, "error_code", "nav_obstacle", "invalid_error_code"),
    (ErrorReport, "error_code", "NAV-1", "invalid_error_code"),
    (ErrorReport, "severity", "fatal", "invalid_enum"),
    (ErrorReport, "subsystem", "wheels", "invalid_enum"),
    (ErrorReport, "location.latitude", 91, "invalid_location"),
    (ErrorReport, "description", "x" * 501, "validation_error"),
    (ErrorReport, "recovery_action", "x" * 201, "validation_error"),
    (DockingUpdate, "phase", "parking", "invalid_enum"),
    (DockingUpdate, "marker_id", 1000, "validation_error"),
    (DockingUpdate, "distance_to_marker_meters", 10.5, "validation_error"),
    (DockingUpdate, "alignment_error_degrees", 180.5, "validation_error"),
    (DockingUpdate, "details.confidence", 1.01, "validation_error"),
    (DockingUpdate, "docking_success", True, "validation_error"),
    (UserCreate, "role", "root", "invalid_enum"),
    (VehicleCreate, "vehicle_id", "wheel chair", "validation_error"),
    (VehicleCreate, "name", "", "validation_error"),
]


@pytest.mark.parametrize(("model", "path", "value", "code"), CODE_CASES)
def test_a_bad_value_gives_the_fields_code_path_and_received_value(
    model: type[BaseModel], path: str, value: Any, code: str
) -> None:
    error = refused(model, with_change(model, path, value))
    assert (error.error, error.field, error.received_value) == (code, path, value)
    assert error.details is not None
    assert error.details["errors"] == [{"field": path, "error": code, "message": error.message}]


def test_the_message_names_the_field_and_its_bounds() -> None:
    error = refused(LocationUpdate, with_change(LocationUpdate, "location.latitude", 95.123))
    assert error.message == "latitude must be between -90 and 90"
    error = refused(BatteryUpdate, with_change(BatteryUpdate, "battery.voltage", 0))
    assert error.message == "voltage must be greater than 0 and at most 100"


def test_error_report_location_needs_only_latitude_and_longitude() -> None:
    body = with_change(ErrorReport, "location", {"latitude": 35.0, "longitude": 139.0})
    report = parse_model(ErrorReport, encode(body))
    assert report.location is not None
    assert report.location.heading is None
    body = with_change(ErrorReport, "location", {"latitude": 35.0})
    error = refused(ErrorReport, body)
    assert (error.error, error.field, error.has_received_value) == (
        "validation_error",
        "location.longitude",
        False,
    )


def test_docking_success_is_fine_in_the_success_phase() -> None:
    body = with_change(DockingUpdate, "phase", "success")
    body["docking_success"] = True
    assert parse_model(DockingUpdate, encode(body)).docking_success is True


def test_optional_parts_may_be_left_out() -> None:
    status = with_change(StatusUpdate, "details", DELETE)
    del status["mission_id"], status["current_waypoint"]
    assert parse_model(StatusUpdate, encode(status)).mission_id is None
    location = with_change(LocationUpdate, "location.altitude", DELETE)
    assert parse_model(LocationUpdate, encode(location)).location.altitude is None
    docking = {"timestamp": "2025-12-16T10:30:45.123Z", "phase": "approaching"}
    assert parse_model(DockingUpdate, encode(docking)).marker_id is None


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (LocationUpdate, "location.latitude"),
        (LocationUpdate, "location.heading"),
        (LocationUpdate, "timestamp"),
        (StatusUpdate, "state"),
        (StatusUpdate, "passengers_onboard"),
        (ErrorReport, "severity"),
    ],
)
def test_a_missing_required_field_is_a_validation_error_without_received_value(
    model: type[BaseModel], path: str
) -> None:
    error = refused(model, with_change(model, path, DELETE))
    assert (error.error, error.field, error.has_received_value) == ("validation_error", path, False)
    assert error.message.endswith("is required")


def test_a_missing_battery_field_is_invalid_battery() -> None:
    error = refused(BatteryUpdate, with_change(BatteryUpdate, "battery.charging", DELETE))
    assert (error.error, error.field, error.has_received_value) == (
        "invalid_battery",
        "battery.charging",
        False,
    )


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (LocationUpdate, "extra"),
        (LocationUpdate, "location.floor"),
        (StatusUpdate, "details.battery"),
        (DockingUpdate, "details.marker_size"),
    ],
)
def test_an_unknown_field_is_a_validation_error(model: type[BaseModel], path: str) -> None:
    error = refused(model, with_change(model, path, 1))
    assert (error.error, error.field, error.received_value) == ("validation_error", path, 1)


@pytest.mark.parametrize(
    ("model", "path", "value", "code"),
    [
        (LocationUpdate, "location.latitude", True, "invalid_location"),
        (LocationUpdate, "location.speed", False, "invalid_speed"),
        (LocationUpdate, "location.latitude", "35.6", "invalid_location"),
        (LocationUpdate, "location.heading", "90", "invalid_heading"),
        (LocationUpdate, "location.altitude", "45", "validation_error"),
        (BatteryUpdate, "battery.soc_percent", True, "invalid_battery"),
        (BatteryUpdate, "battery.charging", 0, "invalid_battery"),
        (BatteryUpdate, "battery.estimated_runtime_minutes", 180.5, "invalid_battery"),
        (StatusUpdate, "details.eta_seconds", 180.5, "validation_error"),
        (StatusUpdate, "details.eta_seconds", True, "validation_error"),
        (StatusUpdate, "operational_hours", 1, "validation_error"),
        (DockingUpdate, "marker_id", 42.5, "validation_error"),
        (DockingUpdate, "attempts", "1", "validation_error"),
        (DockingUpdate, "details.marker_visible", "true", "validation_error"),
        (StatusUpdate, "details", "none", "validation_error"),
        (LocationUpdate, "location", [1, 2], "validation_error"),
    ],
)
def test_no_type_coercion(model: type[BaseModel], path: str, value: Any, code: str) -> None:
    error = refused(model, with_change(model, path, value))
    assert (error.error, error.field, error.received_value) == (code, path, value)


def test_json_integers_are_fine_for_numbers() -> None:
    body = with_change(LocationUpdate, "location.latitude", 35)
    assert parse_model(LocationUpdate, encode(body)).location.latitude == 35.0


def test_several_errors_report_the_first_in_document_order_and_list_all() -> None:
    body = example(LocationUpdate)
    body["location"].update({"accuracy": 3, "latitude": 95, "heading": "north"})
    body["timestamp"] = "2025-12-16T10:30:45Z"
    body["extra"] = True
    error = refused(LocationUpdate, body)
    assert (error.error, error.field, error.received_value) == (
        "invalid_timestamp",
        "timestamp",
        "2025-12-16T10:30:45Z",
    )
    assert error.details is not None
    assert [(entry["field"], entry["error"]) for entry in error.details["errors"]] == [
        ("timestamp", "invalid_timestamp"),
        ("location.latitude", "invalid_location"),
        ("location.heading", "invalid_heading"),
        ("location.accuracy", "invalid_accuracy"),
        ("extra", "validation_error"),
    ]


def test_path_prefix_is_put_before_every_field() -> None:
    body = with_change(LocationUpdate, "location.latitude", 95)
    with pytest.raises(ContractError) as refusal:
        validate_model(LocationUpdate, body, path_prefix="messages[3].data")
    assert refusal.value.field == "messages[3].data.location.latitude"


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2025-12-16T10:30:45Z",
        "2025-12-16T10:30:45.123+09:00",
        "2025-12-16T10:30:45.123+00:00",
        "2025-02-30T10:30:45.123Z",
        "2025-12-16T10:30:45.1234Z",
        "2025-12-16T10:30:45.12Z",
        "2025-12-16 10:30:45.123Z",
        "2025-12-16T10:30:45.123z",
        "2025-12-16T24:00:00.000Z",
        "2025-12-31T23:59:60.000Z",
        "2025-12-16T10:30:45.123Z\n",
        "٢٠٢٥-12-16T10:30:45.123Z",
        "",
        1765881045123,
        None,
    ],
)
def test_a_timestamp_not_in_the_exact_form_is_invalid_timestamp(text: Any) -> None:
    error = refused(LocationUpdate, with_change(LocationUpdate, "timestamp", text))
    assert (error.error, error.field, error.received_value) == (
        "invalid_timestamp",
        "timestamp",
        text,
    )


def test_a_leap_day_is_a_real_date() -> None:
    body = with_change(LocationUpdate, "timestamp", "2024-02-29T23:59:59.999Z")
    assert parse_model(LocationUpdate, encode(body)).timestamp_text == "2024-02-29T23:59:59.999Z"


@pytest.mark.parametrize(
    "offset",
    [timedelta(seconds=-300), timedelta(seconds=5), timedelta(0), timedelta(seconds=-299.999)],
)
def test_the_live_window_accepts_its_edges(offset: timedelta) -> None:
    check_live_timestamp(NOW + offset, NOW)


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(seconds=-300.001), "in the past"),
        (timedelta(seconds=5.001), "ahead of server time"),
        (timedelta(days=-1), "in the past"),
    ],
)
def test_the_live_window_refuses_beyond_its_edges(offset: timedelta, words: str) -> None:
    moment = NOW + offset
    with pytest.raises(ContractError) as refusal:
        check_live_timestamp(moment, NOW, raw=wire_text(moment))
    error = refusal.value
    assert_bad_request(error)
    assert (error.error, error.field) == ("invalid_timestamp", "timestamp")
    assert error.received_value == wire_text(moment)
    assert words in error.message
    assert error.details == {"server_time": "2025-12-16T10:30:45.123Z"}


def test_the_live_window_echoes_the_wire_form_without_raw() -> None:
    with pytest.raises(ContractError) as refusal:
        check_live_timestamp(NOW + timedelta(minutes=1), NOW, field="messages[0].timestamp")
    assert refusal.value.field == "messages[0].timestamp"
    assert refusal.value.received_value == "2025-12-16T10:31:45.123Z"


def test_the_bulk_window_uses_the_given_age() -> None:
    thirty_days = timedelta(days=30)
    check_bulk_timestamp(NOW - thirty_days, NOW, max_age=thirty_days)
    check_bulk_timestamp(NOW + timedelta(seconds=5), NOW, max_age=thirty_days)
    for moment in (
        NOW - thirty_days - timedelta(milliseconds=1),
        NOW + timedelta(seconds=5.001),
    ):
        with pytest.raises(ContractError) as refusal:
            check_bulk_timestamp(moment, NOW, max_age=thirty_days, raw="as sent")
        assert (refusal.value.error, refusal.value.received_value) == (
            "invalid_timestamp",
            "as sent",
        )


# --- JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"timestamp": }',
        b"\xff\xfe{}",
        b'{"a": "\xff"}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b"{} trailing",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_malformed_json_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(ContractError) as refusal:
        parse_json_object(raw)
    assert_bad_request(refusal.value)
    assert refusal.value.error == "invalid_json"
    with pytest.raises(ContractError) as refusal:
        parse_model(LocationUpdate, raw)
    assert_bad_request(refusal.value)
    assert refusal.value.error == "invalid_json"


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"text"', b"null", b"true"])
def test_a_body_that_is_not_an_object_is_a_validation_error(raw: bytes) -> None:
    for parse in (parse_json_object, lambda body: parse_model(LocationUpdate, body)):
        with pytest.raises(ContractError) as refusal:
            parse(raw)
        assert (refusal.value.error, refusal.value.field) == ("validation_error", None)


def test_nan_inside_a_string_is_just_text() -> None:
    body = with_change(ErrorReport, "description", "sensor read NaN and Infinity")
    assert parse_model(ErrorReport, encode(body)).description == "sensor read NaN and Infinity"


def test_parse_json_object_returns_the_object() -> None:
    assert parse_json_object(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1e400, "b": [1, 2.5, -0.0, null, true], "c": "\\u00e9\\n\\"", "a2": 1}',
        b'{"a": 1, "a": 2}',
        b'{"big": 123456789012345678901234567890}',
        '{"text": "caf\u00e9 \u2603"}'.encode(),
    ],
)
def test_json_decodes_to_the_same_values_on_either_parser(raw: bytes) -> None:
    """Plain bodies are decoded by pydantic-core's parser, the rest by the stdlib's: the
    values are the same either way."""
    assert decode_json(raw) == json.loads(raw)
    assert repr(decode_json(raw)) == repr(json.loads(raw))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": -Infinity}', "invalid_json"),
        (b'{"a": 1', "invalid_json"),
        (b'\xef\xbb\xbf{"a": 1}', "invalid_json"),
        (b'{"a": "\\ud800"}', "validation_error"),
        (b'{"a": "\\u0000"}', "validation_error"),
    ],
)
def test_what_json_or_postgresql_cannot_hold_is_refused_on_either_parser(
    raw: bytes, code: str
) -> None:
    with pytest.raises(ContractError) as refusal:
        decode_json(raw)
    assert refusal.value.error == code
