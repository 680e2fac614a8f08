"""Auth, admin and response models: contract examples, grants, secrets, answer shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from actors.vehicle.rows import battery_row, location_row
from hub.contract import (
    BatteryAccepted,
    BatteryUpdate,
    BulkAccepted,
    BulkUpload,
    DockingUpdate,
    ErrorBody,
    ErrorReport,
    ErrorReportAccepted,
    Health,
    HistoryPage,
    LocationUpdate,
    OAuthErrorBody,
    RefreshRequest,
    StatusUpdate,
    TelemetryAccepted,
    TokenRequest,
    TokenResponse,
    UserCreate,
    UserCreated,
    VehicleCreate,
    VehicleCredentials,
    VehicleList,
    VehicleSummary,
    parse_model,
    wire_text,
)
from tests.unit.wire_examples import encode, example, refused, with_change

NOW = datetime(2025, 12, 16, 10, 30, 45, 123000, tzinfo=UTC)
ALL_MODELS: list[type[BaseModel]] = [
    LocationUpdate,
    StatusUpdate,
    BatteryUpdate,
    ErrorReport,
    DockingUpdate,
    BulkUpload,
    TokenRequest,
    RefreshRequest,
    TokenResponse,
    OAuthErrorBody,
    VehicleCreate,
    VehicleCredentials,
    UserCreate,
    UserCreated,
    ErrorBody,
    TelemetryAccepted,
    BatteryAccepted,
    ErrorReportAccepted,
    BulkAccepted,
    VehicleSummary,
    VehicleList,
    HistoryPage,
    Health,
]


# --- the contract's examples are valid -------------------------------------------------------


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda model: model.__name__)
def test_every_example_validates_and_round_trips(model: type[BaseModel]) -> None:
    body = example(model)
    parsed = model.model_validate_json(encode(body))
    assert json.loads(parsed.model_dump_json(exclude_unset=True)) == body
    assert model.model_json_schema()["examples"]


def test_timestamp_is_an_aware_utc_datetime_and_the_wire_string_comes_back() -> None:
    update = parse_model(LocationUpdate, encode(example(LocationUpdate)))
    assert update.timestamp == NOW
    assert update.timestamp.tzinfo is not None
    assert wire_text(update.timestamp) == "2025-12-16T10:30:45.123Z"
    assert update.timestamp_text == "2025-12-16T10:30:45.123Z"
    assert update.model_dump()["timestamp"] == NOW
    assert update.model_dump(mode="json")["timestamp"] == "2025-12-16T10:30:45.123Z"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (NOW, NOW),  # already UTC, whole milliseconds: kept as it is
        (datetime(2025, 12, 16, 10, 30, 45, 123999, tzinfo=UTC), NOW),  # cut to milliseconds
        (NOW.astimezone(timezone(timedelta(hours=9))), NOW),  # another zone: moved to UTC
    ],
)
def test_a_timestamp_given_as_a_datetime_is_kept_as_utc_whole_milliseconds(
    given: datetime, kept: datetime
) -> None:
    update = LocationUpdate.model_validate({**example(LocationUpdate), "timestamp": given})
    assert update.timestamp == kept
    assert update.timestamp.tzinfo is UTC
    assert update.timestamp.microsecond == 123000


def test_a_naive_datetime_is_refused_as_a_timestamp() -> None:
    with pytest.raises(ValidationError, match="must be timezone-aware"):
        LocationUpdate.model_validate(
            {**example(LocationUpdate), "timestamp": NOW.replace(tzinfo=None)}
        )


@pytest.mark.parametrize(
    ("model", "field"), [(LocationUpdate, "location"), (BatteryUpdate, "battery")]
)
def test_storage_rows_hold_exactly_what_the_model_dump_gives(
    model: type[LocationUpdate | BatteryUpdate], field: str
) -> None:
    """The rows copy these flat models' fields instead of dumping them; a nested model or
    an extra field would make the two differ, and this fails."""
    record = parse_model(model, encode(example(model)))
    inner = getattr(record, field)
    row = (
        location_row("v1", record)
        if isinstance(record, LocationUpdate)
        else battery_row("v1", record)
    )
    assert row.values == inner.model_dump()
    assert row.values is not inner.__dict__  # a copy: the row does not alias the model
    for info in type(inner).model_fields.values():
        assert not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel))


# --- auth and admin --------------------------------------------------------------------------


def test_vehicles_may_omit_grant_type() -> None:
    request = parse_model(TokenRequest, b'{"client_id": "veh_1", "client_secret": "s"}')
    assert request.grant == "client_credentials"


def test_people_log_in_with_the_password_grant() -> None:
    raw = b'{"grant_type": "password", "username": "op", "password": "pw"}'
    assert parse_model(TokenRequest, raw).grant == "password"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"client_id": "veh_1"}, "client_secret"),
        ({"grant_type": "client_credentials", "client_secret": "s"}, "client_id"),
        ({"grant_type": "password", "username": "op"}, "password"),
        ({"username": "op", "password": "pw"}, "client_id"),
        (
            {"grant_type": "password", "username": "op", "password": "p", "client_id": "c"},
            "client_id",
        ),
    ],
)
def test_a_grant_needs_exactly_its_own_fields(body: dict[str, Any], field: str) -> None:
    error = refused(TokenRequest, body)
    assert (error.error, error.field) == ("validation_error", field)


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (TokenRequest, {"client_id": "veh_1", "client_secret": 12345}, "client_secret"),
        (TokenRequest, {"grant_type": "password", "username": "op", "password": ""}, "password"),
        (RefreshRequest, {"refresh_token": ["rt_secret"]}, "refresh_token"),
        (UserCreate, {"username": "op.tanaka", "password": "short", "role": "viewer"}, "password"),
    ],
)
def test_secrets_are_never_echoed(model: type[BaseModel], body: dict[str, Any], field: str) -> None:
    error = refused(model, body)
    assert (error.error, error.field, error.has_received_value) == (
        "validation_error",
        field,
        False,
    )


def test_an_unknown_grant_type_is_invalid_enum() -> None:
    error = refused(TokenRequest, {"grant_type": "implicit", "client_id": "c"})
    assert (error.error, error.field, error.received_value) == (
        "invalid_enum",
        "grant_type",
        "implicit",
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("username", "ab"),
        ("username", "has space"),
        ("username", "x" * 65),
        ("password", "x" * 11),
        ("password", "x" * 257),
        ("email", "not-an-address"),
    ],
)
def test_user_creation_rules(path: str, value: str) -> None:
    error = refused(UserCreate, with_change(UserCreate, path, value))
    assert (error.error, error.field) == ("validation_error", path)


def test_user_creation_accepts_the_limits() -> None:
    body = with_change(UserCreate, "password", "x" * 12)
    body["username"] = "a.b"
    del body["email"]
    created = parse_model(UserCreate, encode(body))
    assert (created.username, created.email) == ("a.b", None)


def test_vehicle_ids_follow_the_contract_pattern() -> None:
    body = with_change(VehicleCreate, "vehicle_id", "A" * 64)
    assert parse_model(VehicleCreate, encode(body)).vehicle_id == "A" * 64
    error = refused(VehicleCreate, with_change(VehicleCreate, "vehicle_id", "A" * 65))
    assert error.field == "vehicle_id"


# --- responses -------------------------------------------------------------------------------


def test_answers_leave_out_optional_keys_but_keep_contract_nulls() -> None:
    assert TelemetryAccepted(received_at=NOW).model_dump(mode="json") == {
        "status": "ok",
        "received_at": "2025-12-16T10:30:45.123Z",
    }
    assert TelemetryAccepted(received_at=NOW, duplicate=True).model_dump(mode="json")["duplicate"]
    assert BatteryAccepted(received_at=NOW).model_dump(mode="json") == {
        "status": "ok",
        "received_at": "2025-12-16T10:30:45.123Z",
        "warning": None,
    }
    answer = ErrorReportAccepted(
        received_at=NOW, alert_id=None, action="logged", staff_notified=False
    )
    assert answer.model_dump(mode="json") == {
        "status": "acknowledged",
        "received_at": "2025-12-16T10:30:45.123Z",
        "alert_id": None,
        "action": "logged",
        "staff_notified": False,
    }
    token = TokenResponse(
        access_token="a",
        expires_in=86400,
        refresh_token="r",
        refresh_expires_in=2592000,
        username="op",
        role="operator",
    )
    assert set(token.model_dump(mode="json")) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "username",
        "role",
    }
