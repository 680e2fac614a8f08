"""Two readings of the contract that clients rely on: a whole number written ``12.0`` is
that integer (JSON Schema's rule), and a bare ``{"vehicle_ids": [...]}`` subscribes."""

from __future__ import annotations

import json

import pytest

from hub.clock import format_timestamp, utc_now
from hub.contract.commands import ConfigureCommand, parse_command
from hub.contract.errors import InvalidInputError
from hub.contract.telemetry import BatteryUpdate, DockingUpdate
from hub.contract.validation import parse_model
from hub.contract.ws import SubscribeFrame, parse_frontend_frame


def docking(**fields: object) -> bytes:
    body = {"timestamp": format_timestamp(utc_now()), "phase": "approaching", **fields}
    return json.dumps(body).encode()


def test_a_whole_number_written_with_a_point_is_that_integer() -> None:
    record = parse_model(DockingUpdate, docking(marker_id=916.0, attempts=2.0))
    assert (record.marker_id, record.attempts) == (916, 2)
    assert isinstance(record.marker_id, int)
    battery = {
        "timestamp": format_timestamp(utc_now()),
        "battery": {
            "soc_percent": 50,
            "voltage": 50,
            "current": 1,
            "temperature": 20,
            "charging": False,
            "estimated_runtime_minutes": 39779.0,
        },
    }
    assert (
        parse_model(BatteryUpdate, json.dumps(battery).encode()).battery.estimated_runtime_minutes
        == 39779
    )
    command = parse_command({"type": "configure", "config_updates": {"audio_volume": 12.0}})
    assert isinstance(command, ConfigureCommand)
    assert command.config_updates.audio_volume == 12


@pytest.mark.parametrize("value", [916.5, "916", True, 1e300])
def test_a_fraction_a_string_a_boolean_or_an_out_of_range_number_is_still_refused(
    value: object,
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_model(DockingUpdate, docking(marker_id=value))
    assert refused.value.field == "marker_id"


def test_a_bare_vehicle_ids_frame_subscribes() -> None:
    frame = parse_frontend_frame(json.dumps({"vehicle_ids": ["*"]}))
    assert isinstance(frame, SubscribeFrame)
    assert frame.vehicle_ids == ["*"]
    with pytest.raises(InvalidInputError) as refused:
        parse_frontend_frame(json.dumps({"something": 1}))
    assert refused.value.error == "invalid_message"
