"""``/asyncapi.json`` is served without a token and every frame a live hub sends matches it.

The scenario plays a vehicle and an operator's fleet socket against one hub until the hub has
sent every kind of frame it has; the recorder of ``conftest.py`` keeps each frame and the test
validates them all against the document the hub serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from trio_websocket import WebSocketConnection, open_websocket_url

from tests.frame_log import FrameLog
from tests.integration.harness import (
    RunningHub,
    battery_body,
    docking_body,
    error_body,
    guarded_hub,
    location_body,
    status_body,
    timestamp,
)
from tests.integration.test_vehicle_socket import open_socket, receive, send, socket_url

VEHICLE_ID = "wheelchair_001"
EVERY_HUB_FRAME = {
    "welcome",
    "ping",
    "pong",
    "error",
    "telemetry_ack",
    "dispatch",
    "subscribed",
    "location_update",
    "status_update",
    "battery_update",
    "docking_update",
    "error_report",
    "alert",
    "vehicle_connection",
    "command_status",
}


async def test_the_document_needs_no_token_and_names_the_host_reached(database_url: str) -> None:
    async with guarded_hub(database_url) as hub:
        answer = await hub.client.get("/asyncapi.json")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        document = answer.json()
        assert document["asyncapi"] == "3.0.0"
        assert document["servers"]["hub"]["host"] == urlsplit(hub.base_url).netloc
        assert document["servers"]["hub"]["protocol"] == "ws"
        openapi = (await hub.client.get("/openapi.json")).json()
        assert "(/asyncapi.json)" in openapi["info"]["description"]


async def until_frame(
    ws: WebSocketConnection, wanted: Callable[[dict[str, Any]], bool], *, answer_pings: bool = True
) -> dict[str, Any]:
    """Read frames until one is ``wanted``; answer the hub's pings on the way."""
    while True:
        frame = await receive(ws)
        if wanted(frame):
            return frame
        if answer_pings and frame.get("type") == "ping":
            await send(ws, {"type": "pong", "timestamp": timestamp()})


def of_type(*types: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("type") in types


async def test_every_frame_the_hub_sends_is_as_documented(
    database_url: str, hub_frames: FrameLog
) -> None:
    async with guarded_hub(database_url, ping_interval=0.5, guard=90) as hub:
        served = (await hub.client.get("/asyncapi.json")).json()
        # The recorder checks against the same document the hub serves.
        assert served["operations"] == hub_frames.document["operations"]
        assert set(served["components"]["schemas"]) == set(
            hub_frames.document["components"]["schemas"]
        )
        vehicle = await hub.register_vehicle(VEHICLE_ID)
        operator = await hub.create_user("op.tanaka", "operator", "operator-password-1")
        fleet_url = socket_url(hub.base_url, "/ws/v1/fleet", operator)
        async with open_websocket_url(fleet_url) as fleet:
            await send(fleet, {"type": "subscribe", "vehicle_ids": ["*"]})
            await until_frame(fleet, of_type("subscribed"))
            async with open_socket(hub.base_url, VEHICLE_ID, vehicle.token) as ws:
                await until_frame(ws, of_type("welcome"))
                await vehicle_side(ws)
                await until_frame(fleet, of_type("vehicle_connection"))
                await reports(hub, vehicle.headers, fleet)
                await command_round_trip(fleet, ws)
            await until_frame(
                fleet, lambda f: f == {**f, "type": "vehicle_connection", "connected": False}
            )
        await refused_sockets(hub)
    assert hub_frames.types() >= EVERY_HUB_FRAME, EVERY_HUB_FRAME - hub_frames.types()
    assert hub_frames.problems() == []


async def vehicle_side(ws: WebSocketConnection) -> None:
    """Heartbeat both ways, a telemetry frame acknowledged, a bad one refused."""
    await until_frame(ws, of_type("ping"), answer_pings=False)
    await send(ws, {"type": "pong", "timestamp": timestamp()})
    await send(ws, {"type": "ping", "timestamp": timestamp()})
    await until_frame(ws, of_type("pong"))
    await send(ws, {"type": "location", **location_body(timestamp(-1))})
    await until_frame(ws, of_type("telemetry_ack"))
    await send(ws, {"type": "location", **location_body(timestamp(), latitude=95.0)})
    refused = await until_frame(ws, of_type("error"))
    assert refused["code"] == "invalid_location"


async def reports(hub: RunningHub, headers: dict[str, str], fleet: WebSocketConnection) -> None:
    """Every telemetry kind over REST; the fleet socket sees each event and the alert."""
    base = f"/api/v1/vehicle/{VEHICLE_ID}"
    for kind, body in (
        ("status", status_body("navigating")),
        ("battery", battery_body()),
        ("docking", docking_body("approaching")),
        ("error", error_body("critical", "SAFE_COLLISION_DETECTED")),
    ):
        answer = await hub.client.post(f"{base}/{kind}", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
    wanted = {
        "location_update",
        "status_update",
        "battery_update",
        "docking_update",
        "error_report",
        "alert",
    }
    while wanted:
        wanted.discard(str((await until_frame(fleet, lambda f: True))["type"]))


async def command_round_trip(fleet: WebSocketConnection, ws: WebSocketConnection) -> None:
    """A command from the fleet socket reaches the vehicle; its statuses come back."""
    await send(fleet, {"type": "resume", "vehicle_id": VEHICLE_ID, "command_id": "cmd_bad!"})
    refused = await until_frame(fleet, of_type("error"))
    assert refused["code"] == "invalid_command"
    await send(
        fleet,
        {
            "type": "dispatch",
            "vehicle_id": VEHICLE_ID,
            "command_id": "cmd_frames_1",
            "mission": {
                "mission_id": "mission_frames1",
                "pickup": {
                    "waypoint_id": "a",
                    "latitude": 35.6,
                    "longitude": 139.7,
                    "action": "dock_wheelchair",
                },
                "destination": {
                    "waypoint_id": "b",
                    "latitude": 35.7,
                    "longitude": 139.8,
                    "action": "park",
                },
            },
        },
    )
    command = await until_frame(ws, of_type("dispatch"))
    await send(
        ws, {"type": "command_ack", "command_id": command["command_id"], "status": "accepted"}
    )
    await until_frame(
        fleet, lambda f: f.get("type") == "command_status" and f.get("status") == "accepted"
    )


async def refused_sockets(hub: RunningHub) -> None:
    """A bad token gets its error frame and 4001, on both paths."""
    for path in (f"/ws/v1/vehicle/{VEHICLE_ID}", "/ws/v1/fleet"):
        async with open_websocket_url(socket_url(hub.base_url, path, "not-a-token")) as ws:
            frame = json.loads(await ws.get_message())
            assert frame["code"] == "auth_failed"
