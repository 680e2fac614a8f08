"""Bulk upload parsing (CONTRACT §4): limits, vehicle id, per-message errors and their index."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from hub.contract import (
    TELEMETRY_MODELS,
    BatteryUpdate,
    BulkItem,
    LocationUpdate,
    ParsedBulk,
    StatusUpdate,
    parse_bulk,
    parse_model,
    wire_text,
)
from hub.errors import ContractError
from tests.unit.wire_examples import assert_bad_request

NOW = datetime(2025, 12, 16, 10, 30, 45, 123000, tzinfo=UTC)
MAX_AGE = timedelta(days=30)
VEHICLE = "wheelchair_001"
KINDS = ["location", "status", "battery", "error", "docking"]


def body_of(kind: str) -> dict[str, Any]:
    """The single-endpoint contract example of ``kind``, without its timestamp."""
    model: type[BaseModel] = TELEMETRY_MODELS[kind]  # type: ignore[index]
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list)
    body: Any = copy.deepcopy(examples[0])
    del body["timestamp"]
    return dict(body)


def message(kind: str, seconds_ago: float = 60, data: Any = None) -> dict[str, Any]:
    return {
        "type": kind,
        "timestamp": wire_text(NOW - timedelta(seconds=seconds_ago)),
        "data": body_of(kind) if data is None else data,
    }


def mixed(count: int) -> list[dict[str, Any]]:
    """``count`` messages cycling through every kind, a second apart, oldest first."""
    return [message(KINDS[index % 5], seconds_ago=count - index) for index in range(count)]


def upload(messages: list[Any], **fields: Any) -> bytes:
    return json.dumps({"vehicle_id": VEHICLE, **fields, "messages": messages}).encode()


def parse(raw: bytes, **options: Any) -> ParsedBulk:
    return parse_bulk(raw, path_vehicle_id=VEHICLE, now=NOW, max_age=MAX_AGE, **options)


def refused(raw: bytes, **options: Any) -> ContractError:
    with pytest.raises(ContractError) as refusal:
        parse(raw, **options)
    assert_bad_request(refusal.value)
    return refusal.value


def test_a_thousand_mixed_messages_parse_in_order() -> None:
    parsed = parse(upload(mixed(1000)))
    assert [item.index for item in parsed.messages] == list(range(1000))
    assert [item.kind for item in parsed.messages[:5]] == KINDS
    for item in parsed.messages:
        assert isinstance(item, BulkItem)
        assert isinstance(item.record, TELEMETRY_MODELS[item.kind])
    assert parsed.messages[-1].record.timestamp == NOW - timedelta(seconds=1)
    assert parsed.offline_duration_seconds is None


def test_a_thousand_and_one_is_bulk_too_large() -> None:
    error = refused(upload(mixed(1001)))
    assert (error.error, error.field) == ("bulk_too_large", "messages")
    assert error.details == {"max_messages": 1000, "messages_received": 1001}


def test_the_message_limit_is_configurable() -> None:
    assert len(parse(upload(mixed(3)), max_messages=3).messages) == 3
    assert refused(upload(mixed(4)), max_messages=3).error == "bulk_too_large"


def test_no_messages_is_a_validation_error() -> None:
    error = refused(upload([]))
    assert (error.error, error.field) == ("validation_error", "messages")


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({"vehicle_id": VEHICLE}).encode(),
        json.dumps({"messages": {"type": "location"}}).encode(),
        b"[]",
    ],
)
def test_messages_must_be_a_list(raw: bytes) -> None:
    assert refused(raw).error == "validation_error"


def test_malformed_json_is_invalid_json() -> None:
    assert refused(b'{"messages": [').error == "invalid_json"


def test_vehicle_id_must_match_the_path() -> None:
    error = refused(upload(mixed(2), vehicle_id="wheelchair_002"))
    assert (error.error, error.field, error.received_value) == (
        "vehicle_id_mismatch",
        "vehicle_id",
        "wheelchair_002",
    )


def test_vehicle_id_may_be_left_out() -> None:
    raw = json.dumps({"messages": mixed(2)}).encode()
    assert len(parse(raw).messages) == 2


def test_a_bad_message_in_the_middle_is_reported_with_its_index() -> None:
    messages = mixed(1000)
    messages[500] = message("location")
    messages[500]["data"]["location"]["latitude"] = 95.123
    error = refused(upload(messages))
    assert (error.error, error.field, error.received_value) == (
        "invalid_location",
        "messages[500].data.location.latitude",
        95.123,
    )
    assert error.details is not None
    assert error.details["index"] == 500


@pytest.mark.parametrize("kind", ["location", "battery"])
def test_location_and_battery_data_may_be_the_inner_object(kind: str) -> None:
    inner = body_of(kind)[kind]
    parsed = parse(upload([message(kind, data=inner), message(kind)]))
    first, second = (item.record for item in parsed.messages)
    assert first == second


def test_errors_in_the_inner_form_point_into_what_was_sent() -> None:
    inner = body_of("location")["location"]
    inner["heading"] = 400
    battery = body_of("battery")["battery"]
    battery["soc_percent"] = -1
    error = refused(upload([message("location", data=inner), message("battery", data=battery)]))
    assert (error.error, error.field, error.received_value) == (
        "invalid_heading",
        "messages[0].data.heading",
        400,
    )
    assert error.details is not None
    assert error.details["errors"][1] == {
        "field": "messages[1].data.soc_percent",
        "error": "invalid_battery",
        "message": "soc_percent must be between 0 and 100",
    }


def test_other_kinds_have_no_inner_form() -> None:
    status = body_of("status")
    error = refused(upload([message("status", data={"status": status})]))
    assert (error.error, error.field) == ("validation_error", "messages[0].data.state")


def test_an_unknown_type_is_invalid_enum() -> None:
    error = refused(upload([message("location"), {**message("location"), "type": "weather"}]))
    assert (error.error, error.field, error.received_value) == (
        "invalid_enum",
        "messages[1].type",
        "weather",
    )
    assert error.details is not None
    assert error.details["index"] == 1


@pytest.mark.parametrize(
    ("bad", "field", "code"),
    [
        ("not an object", "messages[0]", "validation_error"),
        ({"type": "location", "data": {}}, "messages[0].timestamp", "validation_error"),
        ({**message("location"), "data": [1]}, "messages[0].data", "validation_error"),
        ({**message("location"), "extra": 1}, "messages[0].extra", "validation_error"),
        (
            {**message("location"), "timestamp": "2025-12-16T10:30:45Z"},
            "messages[0].timestamp",
            "invalid_timestamp",
        ),
    ],
)
def test_a_malformed_message_envelope(bad: Any, field: str, code: str) -> None:
    error = refused(upload([bad]))
    assert (error.error, error.field) == (code, field)


def test_a_timestamp_inside_data_is_refused() -> None:
    data = {**body_of("status"), "timestamp": "2025-12-16T10:30:45.123Z"}
    error = refused(upload([message("status", data=data)]))
    assert (error.error, error.field) == ("validation_error", "messages[0].data.timestamp")


def test_timestamps_use_the_bulk_window() -> None:
    old = message("location", seconds_ago=MAX_AGE.total_seconds() - 1)
    assert len(parse(upload([old, message("location", seconds_ago=-5)])).messages) == 2
    too_old = message("location", seconds_ago=MAX_AGE.total_seconds() + 0.001)
    future = message("battery", seconds_ago=-5.001)
    error = refused(upload([message("status"), too_old, future]))
    assert (error.error, error.field, error.received_value) == (
        "invalid_timestamp",
        "messages[1].timestamp",
        too_old["timestamp"],
    )
    assert error.details is not None
    assert error.details["index"] == 1
    assert [entry["field"] for entry in error.details["errors"]] == [
        "messages[1].timestamp",
        "messages[2].timestamp",
    ]


def test_all_bad_messages_are_listed_and_the_first_is_reported() -> None:
    messages = mixed(10)
    messages[3] = message("status", data={**body_of("status"), "state": "flying"})
    messages[7] = message("docking", data={**body_of("docking"), "marker_id": 1000})
    messages[7]["data"]["details"]["confidence"] = 2
    error = refused(upload(messages))
    assert (error.error, error.field, error.received_value) == (
        "invalid_enum",
        "messages[3].data.state",
        "flying",
    )
    assert error.details is not None
    assert error.details["index"] == 3
    assert [(entry["field"], entry["error"]) for entry in error.details["errors"]] == [
        ("messages[3].data.state", "invalid_enum"),
        ("messages[7].data.marker_id", "validation_error"),
        ("messages[7].data.details.confidence", "validation_error"),
    ]


def test_the_listed_errors_are_capped() -> None:
    messages = [message("location", data={"latitude": 100}) for _ in range(200)]
    error = refused(upload(messages))
    assert error.details is not None
    assert len(error.details["errors"]) == 100


def test_offline_period_gives_the_duration() -> None:
    period = {"start": "2025-12-16T10:25:45.123Z", "end": "2025-12-16T10:30:45.123Z"}
    assert parse(upload(mixed(1), offline_period=period)).offline_duration_seconds == 300


@pytest.mark.parametrize(
    ("period", "field", "code"),
    [
        (
            {"start": "2025-12-16T10:30:45.123Z", "end": "2025-12-16T10:25:45.123Z"},
            "offline_period.end",
            "validation_error",
        ),
        (
            {"start": "2025-12-16T10:30:45Z", "end": "2025-12-16T10:31:45.123Z"},
            "offline_period.start",
            "invalid_timestamp",
        ),
        ({"start": "2025-12-16T10:30:45.123Z"}, "offline_period.end", "validation_error"),
    ],
)
def test_a_bad_offline_period(period: dict[str, str], field: str, code: str) -> None:
    error = refused(upload(mixed(1), offline_period=period))
    assert (error.error, error.field) == (code, field)


@pytest.mark.parametrize(
    ("model", "kind", "path", "value"),
    [
        (LocationUpdate, "location", "location.speed", 3),
        (BatteryUpdate, "battery", "battery.voltage", 0),
        (StatusUpdate, "status", "mission_id", "m"),
    ],
)
def test_bulk_and_single_endpoints_give_the_same_answer(
    model: type[BaseModel], kind: str, path: str, value: Any
) -> None:
    data = body_of(kind)
    outer, _, inner = path.rpartition(".")
    (data[outer] if outer else data)[inner] = value
    single = {"timestamp": "2025-12-16T10:30:44.123Z", **data}
    with pytest.raises(ContractError) as single_refusal:
        parse_model(model, json.dumps(single).encode())
    bulk_error = refused(upload([message(kind, seconds_ago=1, data=data)]))
    single_error = single_refusal.value
    assert bulk_error.field == f"messages[0].data.{single_error.field}"
    assert (bulk_error.error, bulk_error.message, bulk_error.received_value) == (
        single_error.error,
        single_error.message,
        single_error.received_value,
    )


def test_a_plain_message_gives_the_record_its_kind_s_model_gives() -> None:
    """Well-formed messages skip the envelope model (the cost of a 1,000-message upload);
    the records are still the per-kind model's, value for value."""
    for kind in KINDS:
        sent = message(kind)
        (item,) = parse(upload([sent])).messages
        expected = TELEMETRY_MODELS[kind].model_validate(  # type: ignore[attr-defined]
            {**sent["data"], "timestamp": sent["timestamp"]}
        )
        assert item.record == expected


def test_a_timestamp_of_the_right_form_but_no_real_date_still_names_its_field() -> None:
    sent = {**message("location"), "timestamp": "2025-02-30T10:30:45.123Z"}
    error = refused(upload([message("location"), sent]))
    assert error.field == "messages[1].timestamp"
    assert error.error == "invalid_timestamp"
    assert error.message == "timestamp must be a real calendar date and time"
    assert error.details is not None and error.details["index"] == 1
