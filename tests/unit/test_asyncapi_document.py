"""The AsyncAPI document describes both sockets completely (CONTRACT §6), checked without a hub.

Structure (every reference resolves, every frame model is there, every close code), and
the frames themselves: each example and each frame the hub's builders make validates against
the message the document gives it.
"""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import MagicMock

import pytest

from actors.sockets.connection import SocketPolicy
from api.app import create_app
from api.asyncapi import build_document, with_server
from hub.clock import utc_now
from hub.contract import ws_events
from hub.contract.command_acks import CommandAck
from hub.contract.commands import COMMAND_MODELS, DispatchCommand, vehicle_payload, with_defaults
from hub.contract.ws import SubscribeFrame, UnsubscribeFrame
from hub.contract.ws_frames import FRAME_MODELS
from hub.contract.ws_inbound import TELEMETRY_FRAME_MODELS
from hub.errors import InvalidInputError
from tests.published_schemas import resolve, schema_errors
from tests.unit.wire_examples import example

CLOSE_CODES = {1000, 1001, 1009, 1011, 1013, 4001, 4002, 4003, 4004, 4005, 4008, 4009}
PATHS = {
    "vehicleSocket": "/ws/v1/vehicle/{vehicle_id}",
    "vehicleSocketAlias": "/ws/vehicle/{vehicle_id}",
    "fleetSocket": "/ws/v1/fleet",
}
NOW = "2025-12-16T10:30:45.123Z"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return with_server(build_document(SocketPolicy()), "hub.example:8080", secure=False)


def sent_by_hub(document: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    """The messages of every ``send`` operation on ``channel``."""
    return _messages(document, channel, "send")


def received_by_hub(document: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    """The messages of every ``receive`` operation on ``channel``."""
    return _messages(document, channel, "receive")


def _messages(document: dict[str, Any], channel: str, action: str) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for operation in document["operations"].values():
        if (
            operation["action"] == action
            and operation["channel"]["$ref"] == f"#/channels/{channel}"
        ):
            for reference in operation["messages"]:
                message = resolve(document, resolve(document, reference))
                found[message["name"]] = message
    return list(found.values())


def frame_types(messages: list[dict[str, Any]]) -> set[str]:
    return {message["title"] for message in messages}


def matching(document: dict[str, Any], messages: list[dict[str, Any]], frame: Any) -> list[str]:
    """Names of the messages ``frame`` is valid for."""
    return [
        message["name"]
        for message in messages
        if not schema_errors(document, message["payload"]["schema"], frame)
    ]


def test_it_is_asyncapi_3_with_the_three_socket_paths(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert {name: channel["address"] for name, channel in document["channels"].items()} == PATHS
    assert document["servers"]["hub"]["host"] == "hub.example:8080"
    assert document["servers"]["hub"]["protocol"] == "ws"


def test_every_reference_resolves_to_a_message_with_a_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, channel in document["channels"].items():
        assert channel["messages"], name
        for key, reference in channel["messages"].items():
            message = resolve(document, reference)
            payload = message["payload"]
            assert payload["schemaFormat"].startswith("application/schema+json")
            target = payload["schema"]["$ref"].removeprefix("#/components/schemas/")
            assert target in schemas, (name, key)
            assert message["name"] == key
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel = resolve(document, operation["channel"])
        prefix = operation["channel"]["$ref"] + "/messages/"
        for reference in operation["messages"]:
            assert reference["$ref"].startswith(prefix), name
            assert reference["$ref"].removeprefix(prefix) in channel["messages"]


def test_every_frame_model_is_a_message(document: dict[str, Any]) -> None:
    models = {
        *FRAME_MODELS.values(),
        *TELEMETRY_FRAME_MODELS.values(),
        *COMMAND_MODELS.values(),
        CommandAck,
        SubscribeFrame,
        UnsubscribeFrame,
    }
    schemas = document["components"]["schemas"]
    messages = document["components"]["messages"]
    for model in models:
        assert model.__name__ in schemas, model
        assert model.__name__ in messages, model


def test_each_direction_of_each_socket_carries_its_frames(document: dict[str, Any]) -> None:
    to_vehicle = frame_types(sent_by_hub(document, "vehicleSocket"))
    assert {"welcome", "ping", "pong", "error", "telemetry_ack", *COMMAND_MODELS} <= to_vehicle
    from_vehicle = frame_types(received_by_hub(document, "vehicleSocket"))
    assert {"ping", "pong", "command_ack", *TELEMETRY_FRAME_MODELS} <= from_vehicle
    to_frontend = frame_types(sent_by_hub(document, "fleetSocket"))
    assert set(FRAME_MODELS) - {"welcome", "telemetry_ack"} <= to_frontend
    assert "welcome" not in to_frontend
    from_frontend = frame_types(received_by_hub(document, "fleetSocket"))
    assert {"subscribe", "unsubscribe", "ping", *COMMAND_MODELS} <= from_frontend
    assert sent_by_hub(document, "vehicleSocketAlias") == sent_by_hub(document, "vehicleSocket")


def test_the_token_goes_in_the_query_and_every_close_code_is_explained(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["queryToken"] == {**schemes["queryToken"], "in": "query", "name": "token"}
    for channel in document["channels"].values():
        assert "token" in channel["bindings"]["ws"]["query"]["properties"]
        codes = {close["code"]: close for close in channel["x-close-codes"]}
        assert set(codes) == CLOSE_CODES
        assert all(close["meaning"] for close in codes.values())
    for code in CLOSE_CODES:
        assert f"| {code} |" in document["info"]["description"]


def test_every_message_example_is_valid_for_its_message(document: dict[str, Any]) -> None:
    for name, message in document["components"]["messages"].items():
        assert message["examples"], name
        for sample in message["examples"]:
            assert schema_errors(document, message["payload"]["schema"], sample["payload"]) == []


def test_the_frames_the_hub_builds_are_valid_for_what_it_sends(document: dict[str, Any]) -> None:
    location = example(TELEMETRY_FRAME_MODELS["location"])
    status = example(TELEMETRY_FRAME_MODELS["status"])
    to_frontend = sent_by_hub(document, "fleetSocket")
    to_vehicle = sent_by_hub(document, "vehicleSocket")
    frontend_frames = [
        ws_events.subscribed(["*"], [{"vehicle_id": "wheelchair_001", "connected": True}]),
        ws_events.subscribed(["wheelchair_001"], [], {"wheelchair_001": False}),
        ws_events.telemetry_event("location", "wheelchair_001", NOW, location, 7),
        ws_events.telemetry_event("status", "wheelchair_001", NOW, status, 8),
        ws_events.vehicle_connection("wheelchair_001", True, NOW, 9),
        ws_events.command_status("cmd_1", "wheelchair_001", "queued", None),
        ws_events.alert(
            "alert_3f9a1c2b4d5e6f70",
            "wheelchair_001",
            severity="critical",
            kind="emergency_stop",
            message="Stopped",
            timestamp=NOW,
        ),
        {
            **ws_events.contract_error_frame(InvalidInputError("invalid_command", "bad")),
            "command_id": "cmd_1",
        },
        ws_events.ping(NOW),
    ]
    for frame in frontend_frames:
        assert matching(document, to_frontend, frame), frame
    command = with_defaults(DispatchCommand.model_validate(example(DispatchCommand)), utc_now())
    vehicle_frames = [
        ws_events.welcome("wheelchair_001", NOW, 30.0),
        ws_events.telemetry_ack("location", NOW, "duplicate"),
        ws_events.pong(NOW),
        vehicle_payload(command),
    ]
    for frame in vehicle_frames:
        assert matching(document, to_vehicle, frame), frame
    # The hub never sends a vehicle the routing field; the schema says so.
    assert not matching(document, to_vehicle, {**vehicle_payload(command), "vehicle_id": "x"})


@pytest.mark.parametrize("internal", ["CONTRACT", "§", "../shared", "ARCHITECTURE.md"])
def test_the_published_documents_point_to_nothing_a_user_cannot_read(internal: str) -> None:
    app = create_app(MagicMock())
    rest = app.extensions["QUART_SCHEMA"].openapi_provider.schema()
    sockets = build_document(SocketPolicy())
    for published in (rest, sockets):
        assert internal not in json.dumps(published, ensure_ascii=False)
