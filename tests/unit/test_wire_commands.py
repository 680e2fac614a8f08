"""Commands (CONTRACT §6.3): every type, every configure bound, every error code, the helpers."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from hub.contract.command_acks import KNOWN_REJECTION_REASONS, CommandAck
from hub.contract.command_parts import COMMAND_ID_PATTERN
from hub.contract.commands import (
    COMMAND_MODELS,
    CancelCommand,
    Command,
    ConfigureCommand,
    DispatchCommand,
    EmergencyStopCommand,
    ResumeCommand,
    merge_configure,
    new_command_id,
    parse_command,
    vehicle_payload,
    with_defaults,
)
from hub.contract.validation import validate_model
from hub.errors import ContractError
from tests.unit.wire_examples import DELETE, assert_bad_request, examples, set_path

NOW = datetime(2025, 12, 16, 10, 30, 45, 123456, tzinfo=UTC)


def example(kind: str) -> dict[str, Any]:
    return examples(COMMAND_MODELS[kind])[0]


def changed(kind: str, path: str, value: Any) -> dict[str, Any]:
    """The contract example of ``kind`` with dotted ``path`` set to ``value`` (or DELETE)."""
    return set_path(example(kind), path, value)


def refused(body: Any, **options: Any) -> ContractError:
    """Parse ``body`` as decoded data and as JSON bytes; both must refuse it alike."""
    with pytest.raises(ContractError) as data_refusal:
        parse_command(body, **options)
    with pytest.raises(ContractError) as raw_refusal:
        parse_command(json.dumps(body).encode(), **options)
    data_error, raw_error = data_refusal.value, raw_refusal.value
    assert_bad_request(data_error)
    assert_bad_request(raw_error)
    assert (data_error.error, data_error.field, data_error.message) == (
        raw_error.error,
        raw_error.field,
        raw_error.message,
    )
    return data_error


def configure(key: str, value: Any) -> dict[str, Any]:
    return {"type": "configure", "config_updates": {key: value}}


# --- every command type ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(COMMAND_MODELS))
def test_each_contract_example_is_accepted_and_forwarded_unchanged(kind: str) -> None:
    body = example(kind)
    for raw in (body, json.dumps(body), json.dumps(body).encode()):
        command = parse_command(raw)
        assert type(command) is COMMAND_MODELS[kind]
        assert command.type == kind
        assert vehicle_payload(command) == body


@pytest.mark.parametrize("kind", list(COMMAND_MODELS))
def test_the_discriminated_union_picks_the_model_by_type(kind: str) -> None:
    adapter: TypeAdapter[Command] = TypeAdapter(Command)
    assert type(adapter.validate_python(example(kind))) is COMMAND_MODELS[kind]
    assert adapter.json_schema()["discriminator"]["propertyName"] == "type"


def test_the_smallest_commands_and_their_defaults() -> None:
    body = example("dispatch")
    for key in ("priority", "command_id", "timestamp"):
        del body[key]
    dispatch = parse_command(body)
    assert isinstance(dispatch, DispatchCommand)
    assert dispatch.priority == "normal"
    assert dispatch.command_id is None and dispatch.timestamp is None
    cancel = parse_command({"type": "cancel", "mission_id": "mission_1"})
    assert isinstance(cancel, CancelCommand)
    assert (cancel.safe_stop, cancel.reason) == (True, None)
    stop = parse_command({"type": "emergency_stop"})
    assert isinstance(stop, EmergencyStopCommand)
    assert (stop.reason, stop.message) == ("staff_initiated", None)
    assert isinstance(parse_command({"type": "resume"}), ResumeCommand)
    assert parse_command(changed("dispatch", "mission.scheduled_time", DELETE)) is not None


@pytest.mark.parametrize("priority", ["low", "normal", "high", "urgent"])
def test_every_priority_is_accepted(priority: str) -> None:
    command = parse_command(changed("dispatch", "priority", priority))
    assert isinstance(command, DispatchCommand)
    assert command.priority == priority


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("mission.pickup.action", "dock_wheelchair"),
        ("mission.pickup.action", "wait"),
        ("mission.destination.action", "undock_wheelchair"),
        ("mission.destination.action", "park"),
    ],
)
def test_every_waypoint_action_is_accepted(path: str, action: str) -> None:
    parse_command(changed("dispatch", path, action))


# --- configure bounds ------------------------------------------------------------------------

CONFIG_ACCEPTED = [
    ("max_speed", 0.1),
    ("max_speed", 1.5),
    ("max_speed", 1),
    ("audio_volume", 0),
    ("audio_volume", 100),
    ("telemetry_frequency", 0.1),
    ("telemetry_frequency", 2.0),
    ("telemetry_frequency", 2),
    ("ehmi_language", "en"),
    ("ehmi_language", "ja"),
    ("ehmi_language", "zh"),
    ("operational_hours_start", "00:00"),
    ("operational_hours_start", "23:59"),
    ("operational_hours_end", "00:00"),
    ("operational_hours_end", "23:59"),
]

CONFIG_REFUSED = [
    ("max_speed", math.nextafter(0.1, -math.inf)),
    ("max_speed", math.nextafter(1.5, math.inf)),
    ("max_speed", 0),
    ("max_speed", "0.8"),
    ("max_speed", True),
    ("max_speed", None),
    ("audio_volume", -1),
    ("audio_volume", 101),
    ("audio_volume", 75.5),
    ("audio_volume", 75.5),
    ("audio_volume", True),
    ("telemetry_frequency", math.nextafter(0.1, -math.inf)),
    ("telemetry_frequency", math.nextafter(2.0, math.inf)),
    ("telemetry_frequency", -1),
    ("ehmi_language", "fr"),
    ("ehmi_language", "EN"),
    ("ehmi_language", 1),
    ("operational_hours_start", "24:00"),
    ("operational_hours_start", "23:60"),
    ("operational_hours_start", "7:30"),
    ("operational_hours_start", "07:30:00"),
    ("operational_hours_start", "07:30\n"),
    ("operational_hours_start", "٠٧:30"),
    ("operational_hours_end", "-1:00"),
    ("operational_hours_end", 730),
    ("operational_hours_end", ""),
]


@pytest.mark.parametrize(("key", "value"), CONFIG_ACCEPTED)
def test_configure_values_at_the_edges_are_accepted(key: str, value: Any) -> None:
    command = parse_command(configure(key, value))
    assert isinstance(command, ConfigureCommand)
    assert getattr(command.config_updates, key) == value
    assert command.config_updates.as_dict() == {key: value}


@pytest.mark.parametrize(("key", "value"), CONFIG_REFUSED)
def test_configure_values_past_the_edges_are_invalid_command(key: str, value: Any) -> None:
    error = refused(configure(key, value))
    assert (error.error, error.field, error.received_value) == (
        "invalid_command",
        f"config_updates.{key}",
        value,
    )
    assert error.message.startswith(key)


@settings(max_examples=80)
@given(
    speed=st.floats(min_value=0.1, max_value=1.5),
    frequency=st.floats(min_value=0.1, max_value=2.0),
    volume=st.integers(min_value=0, max_value=100),
)
def test_any_value_inside_the_configure_ranges_is_accepted(
    speed: float, frequency: float, volume: int
) -> None:
    updates = {"max_speed": speed, "telemetry_frequency": frequency, "audio_volume": volume}
    command = parse_command({"type": "configure", "config_updates": updates})
    assert isinstance(command, ConfigureCommand)
    assert command.config_updates.as_dict() == updates


@settings(max_examples=80)
@given(
    data=st.data(),
    key=st.sampled_from(["max_speed", "telemetry_frequency", "audio_volume"]),
)
def test_any_value_outside_the_configure_ranges_is_refused(key: str, data: st.DataObject) -> None:
    value: float
    if key == "audio_volume":
        value = data.draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=101)))
    else:
        high = 1.5 if key == "max_speed" else 2.0
        value = data.draw(
            st.one_of(
                st.floats(max_value=0.1, exclude_max=True, allow_nan=False, allow_infinity=False),
                st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False),
            )
        )
    error = refused(configure(key, value))
    assert (error.error, error.field, error.received_value) == (
        "invalid_command",
        f"config_updates.{key}",
        value,
    )


def test_an_unknown_configure_key_is_invalid_command_naming_the_key() -> None:
    error = refused({"type": "configure", "config_updates": {"max_speed": 1, "turbo": True}})
    assert (error.error, error.field, error.received_value) == (
        "invalid_command",
        "config_updates.turbo",
        True,
    )


def test_configure_needs_at_least_one_key() -> None:
    error = refused({"type": "configure", "config_updates": {}})
    assert (error.error, error.field) == ("invalid_command", "config_updates")
    assert "max_speed" in error.message
    assert refused({"type": "configure"}).field == "config_updates"
    assert refused({"type": "configure", "config_updates": [1]}).error == "invalid_command"


def test_every_bad_configure_key_is_listed() -> None:
    error = refused(
        {"type": "configure", "config_updates": {"max_speed": 9, "audio_volume": 101, "x": 1}}
    )
    assert error.details is not None
    assert [entry["field"] for entry in error.details["errors"]] == [
        "config_updates.max_speed",
        "config_updates.audio_volume",
        "config_updates.x",
    ]
    assert {entry["error"] for entry in error.details["errors"]} == {"invalid_command"}


# --- error codes -----------------------------------------------------------------------------

CODE_CASES = [
    ("dispatch", "priority", "asap", "invalid_enum"),
    ("dispatch", "priority", 1, "invalid_enum"),
    ("dispatch", "mission.pickup.latitude", 91, "invalid_location"),
    ("dispatch", "mission.pickup.longitude", -180.5, "invalid_location"),
    ("dispatch", "mission.destination.latitude", -90.01, "invalid_location"),
    ("dispatch", "mission.destination.longitude", "139.7", "invalid_location"),
    ("dispatch", "mission.pickup.action", "undock_wheelchair", "invalid_enum"),
    ("dispatch", "mission.destination.action", "dock_wheelchair", "invalid_enum"),
    ("dispatch", "mission.mission_id", "mission-1", "invalid_command"),
    ("dispatch", "mission.pickup.waypoint_id", "", "invalid_command"),
    ("dispatch", "mission.pickup.extra", 1, "invalid_command"),
    ("dispatch", "mission.scheduled_time", "2025-12-16T11:00:00Z", "invalid_timestamp"),
    ("dispatch", "timestamp", "2025-12-16T10:30:45+09:00", "invalid_timestamp"),
    ("dispatch", "command_id", "cmd-12345", "invalid_command"),
    ("dispatch", "command_id", "CMD_12345", "invalid_command"),
    ("dispatch", "command_id", "cmd_", "invalid_command"),
    ("dispatch", "command_id", "cmd_" + "a" * 61, "invalid_command"),
    ("dispatch", "command_id", 12345, "invalid_command"),
    ("dispatch", "vehicle_id", "wheel chair", "invalid_command"),
    ("dispatch", "mission", "mission_67890", "invalid_command"),
    ("cancel", "mission_id", "67890", "invalid_command"),
    ("cancel", "reason", "x" * 201, "invalid_command"),
    ("cancel", "safe_stop", "yes", "invalid_command"),
    ("cancel", "force", True, "invalid_command"),
    ("resume", "mission_id", "mission_1", "invalid_command"),
    ("resume", "command_id", "cmd_45678!", "invalid_command"),
    ("emergency_stop", "command_id", "ESTOP_1", "invalid_command"),
    ("emergency_stop", "reason", 5, "invalid_command"),
    ("emergency_stop", "timestamp", "now", "invalid_timestamp"),
]


@pytest.mark.parametrize(("kind", "path", "value", "code"), CODE_CASES)
def test_a_bad_value_gives_its_code_field_and_received_value(
    kind: str, path: str, value: Any, code: str
) -> None:
    error = refused(changed(kind, path, value))
    assert (error.error, error.field, error.received_value) == (code, path, value)
    assert error.details is not None
    assert error.details["errors"][0] == {"field": path, "error": code, "message": error.message}


def test_the_message_names_the_field_and_its_bounds() -> None:
    error = refused(changed("dispatch", "mission.pickup.latitude", 91))
    assert error.message == "latitude must be between -90 and 90"


def test_a_command_id_of_64_characters_is_accepted() -> None:
    command_id = "cmd_" + "a" * 60
    assert parse_command(changed("resume", "command_id", command_id)).command_id == command_id


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("mission", "invalid_command"),
        ("mission.pickup", "invalid_command"),
        ("mission.pickup.action", "invalid_command"),
        ("mission.destination.latitude", "invalid_command"),
    ],
)
def test_a_missing_field_is_invalid_command(path: str, code: str) -> None:
    error = refused(changed("dispatch", path, DELETE))
    assert (error.error, error.field, error.has_received_value) == (code, path, False)


@pytest.mark.parametrize("kind", ["fly", "command_ack", "DISPATCH", "", 3, None, ["dispatch"]])
def test_an_unknown_type_is_invalid_command(kind: Any) -> None:
    error = refused({"type": kind})
    assert (error.error, error.field, error.received_value) == ("invalid_command", "type", kind)


def test_a_missing_type_is_invalid_command() -> None:
    error = refused({"mission_id": "mission_1"})
    assert (error.error, error.field, error.has_received_value) == (
        "invalid_command",
        "type",
        False,
    )


def test_a_command_must_be_a_json_object() -> None:
    bodies: list[Any] = [[], 3, None]
    for body in bodies:
        assert refused(body).error == "invalid_command"
    assert parse_command_error(b'"dispatch"').error == "invalid_command"
    for raw in (b"{", b"\xff", b"", b'{"type": "configure", "config_updates": {"max_speed": NaN}}'):
        assert parse_command_error(raw).error == "invalid_json"
    assert parse_command_error("dispatch").error == "invalid_json"


def parse_command_error(raw: bytes | str) -> ContractError:
    with pytest.raises(ContractError) as refusal:
        parse_command(raw)
    return refusal.value


def test_vehicle_id_may_be_required() -> None:
    body = example("resume")
    error = refused(body, vehicle_id_required=True)
    assert (error.error, error.field) == ("invalid_command", "vehicle_id")
    command = parse_command({**body, "vehicle_id": "wheelchair_001"}, vehicle_id_required=True)
    assert command.vehicle_id == "wheelchair_001"
    assert "vehicle_id" not in vehicle_payload(command)
    assert refused({"type": "fly"}, vehicle_id_required=True).field == "type"


# --- emergency stops are never refused for their text ----------------------------------------


def test_an_emergency_stop_without_reason_gets_the_default() -> None:
    for reason in (DELETE, None, ""):
        command = parse_command(changed("emergency_stop", "reason", reason))
        assert isinstance(command, EmergencyStopCommand)
        assert command.reason == "staff_initiated"
        assert vehicle_payload(command)["reason"] == "staff_initiated"


def test_an_emergency_stop_with_over_long_text_is_cut_not_refused() -> None:
    body = {"type": "emergency_stop", "reason": "r" * 300, "message": "m" * 900}
    command = parse_command(body)
    assert isinstance(command, EmergencyStopCommand)
    assert (command.reason, command.message) == ("r" * 200, "m" * 500)


def test_an_emergency_stop_ignores_unknown_fields() -> None:
    command = parse_command({"type": "emergency_stop", "reasn": "typo", "urgent": True})
    assert vehicle_payload(command) == {"type": "emergency_stop", "reason": "staff_initiated"}


# --- helpers ---------------------------------------------------------------------------------


def test_with_defaults_fills_the_id_and_the_time() -> None:
    command = with_defaults(parse_command({"type": "resume"}), NOW)
    assert isinstance(command, ResumeCommand)
    assert command.command_id is not None
    assert re.fullmatch(COMMAND_ID_PATTERN, command.command_id)
    assert not command.command_id.startswith("cmd_ESTOP_")
    assert command.timestamp == NOW.replace(microsecond=123000)
    assert vehicle_payload(command)["timestamp"] == "2025-12-16T10:30:45.123Z"


def test_with_defaults_gives_emergency_stops_an_estop_id() -> None:
    command = with_defaults(parse_command({"type": "emergency_stop"}), NOW)
    assert command.command_id is not None
    assert command.command_id.startswith("cmd_ESTOP_")
    assert re.fullmatch(COMMAND_ID_PATTERN, command.command_id)


def test_with_defaults_keeps_what_the_sender_gave() -> None:
    command = parse_command(example("configure"))
    assert with_defaults(command, NOW) is command
    partial = parse_command({"type": "resume", "command_id": "cmd_mine"})
    filled = with_defaults(partial, NOW)
    assert (filled.command_id, filled.timestamp) == ("cmd_mine", NOW.replace(microsecond=123000))


def test_with_defaults_converts_to_utc_and_refuses_a_naive_now() -> None:
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert with_defaults(ResumeCommand(), tokyo).timestamp == NOW.replace(microsecond=123000)
    with pytest.raises(ValueError, match="timezone-aware"):
        with_defaults(ResumeCommand(), NOW.replace(tzinfo=None))


@pytest.mark.parametrize("kind", list(COMMAND_MODELS))
def test_generated_ids_are_unique_and_valid(kind: Any) -> None:
    ids = {new_command_id(kind) for _ in range(10_000)}
    assert len(ids) == 10_000
    prefix = "cmd_ESTOP_" if kind == "emergency_stop" else "cmd_"
    for command_id in ids:
        assert command_id.startswith(prefix)
        assert len(command_id) <= 64
        assert re.fullmatch(COMMAND_ID_PATTERN, command_id)


def test_generated_ids_through_with_defaults_are_unique() -> None:
    stop = EmergencyStopCommand()
    ids = {with_defaults(stop, NOW).command_id for _ in range(10_000)}
    assert len(ids) == 10_000


def test_merge_configure_lets_the_newer_keys_win() -> None:
    older = parse_command(example("configure"))
    newer = parse_command(
        {
            "type": "configure",
            "command_id": "cmd_newer",
            "config_updates": {"max_speed": 1.2, "telemetry_frequency": 0.5},
        }
    )
    assert isinstance(older, ConfigureCommand) and isinstance(newer, ConfigureCommand)
    merged = merge_configure(older, newer)
    assert merged.command_id == "cmd_newer"
    assert merged.config_updates.as_dict() == {
        "max_speed": 1.2,
        "audio_volume": 75,
        "ehmi_language": "ja",
        "telemetry_frequency": 0.5,
    }


def test_every_command_model_has_a_json_schema_with_its_example() -> None:
    for model in COMMAND_MODELS.values():
        schema = model.model_json_schema()
        assert schema["examples"] == examples(model)


# --- acks ------------------------------------------------------------------------------------


def ack(**fields: Any) -> dict[str, Any]:
    return {"type": "command_ack", "command_id": "cmd_12345", "status": "accepted", **fields}


def test_every_ack_example_is_accepted() -> None:
    for body in examples(CommandAck):
        parsed = validate_model(CommandAck, body)
        assert parsed.as_dict() == body


@pytest.mark.parametrize("status", ["accepted", "rejected", "executed", "applied"])
def test_every_ack_status_is_accepted(status: str) -> None:
    assert validate_model(CommandAck, ack(status=status)).status == status


def test_an_ack_with_unknown_fields_is_accepted_and_they_are_dropped() -> None:
    parsed = validate_model(CommandAck, ack(firmware="2.4.1", battery={"soc": 50}))
    assert parsed.as_dict() == ack()


def test_an_ack_reason_may_be_any_short_string() -> None:
    assert "battery_too_low" in KNOWN_REJECTION_REASONS
    parsed = validate_model(CommandAck, ack(status="rejected", reason="door_open"))
    assert parsed.reason == "door_open"


def test_stopped_at_may_be_a_timestamp_or_an_object() -> None:
    for stopped_at in ("2025-12-16T10:30:45.123Z", {"latitude": 35.6, "longitude": 139.7}):
        assert validate_model(CommandAck, ack(stopped_at=stopped_at)).stopped_at == stopped_at


ACK_CASES = [
    ("status", "done", "invalid_enum"),
    ("status", None, "invalid_enum"),
    ("command_id", "12345", "validation_error"),
    ("estimated_arrival", "2025-12-16T10:30:45Z", "invalid_timestamp"),
    ("reason", "x" * 201, "validation_error"),
    ("reason", 3, "validation_error"),
    ("message", "x" * 501, "validation_error"),
    ("location", "lobby", "validation_error"),
    ("updated_config", [1], "validation_error"),
]


@pytest.mark.parametrize(("field", "value", "code"), ACK_CASES)
def test_known_ack_fields_keep_strict_types(field: str, value: Any, code: str) -> None:
    with pytest.raises(ContractError) as refusal:
        validate_model(CommandAck, ack(**{field: value}))
    error = refusal.value
    assert (error.error, error.field, error.received_value) == (code, field, value)


def test_an_ack_needs_its_command_id_and_status() -> None:
    for field in ("command_id", "status"):
        body = ack()
        del body[field]
        with pytest.raises(ContractError) as refusal:
            validate_model(CommandAck, body)
        assert (refusal.value.error, refusal.value.field) == ("validation_error", field)
